"""The SCIM schemas this server implements, as data, and the discovery documents built from them.

- Attribute characteristics (RFC 7643 §2.2, §7) as the frozen dataclasses :class:`Attribute` and
  :class:`Schema`.
- The common attributes ``id``, ``externalId`` and ``meta`` (RFC 7643 §3.1), the core User
  (§4.1) and Group (§4.2) schemas and the Enterprise User extension (§4.3), as in RFC 7643 §8.7.1.
- The resource types User and Group (RFC 7643 §6).
- Case-insensitive attribute lookup (RFC 7643 §2.1), including schema-URI-qualified names
  (RFC 7644 §3.10): :func:`find_attribute`, :func:`canonical_path`, :func:`canonical_name`.
- The ``/Schemas`` (RFC 7643 §7) and ``/ResourceTypes`` (RFC 7643 §6) documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .paths import AttrPath

SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@dataclass(frozen=True)
class Attribute:
    """One attribute definition with its characteristics (RFC 7643 §2.2, §7).

    ``type`` is one of string, boolean, decimal, integer, dateTime, reference, complex, binary
    (RFC 7643 §2.3); ``mutability`` one of readOnly, readWrite, immutable, writeOnly; ``returned``
    one of always, never, default, request; ``uniqueness`` one of none, server, global.
    """

    name: str
    type: str
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    sub_attributes: tuple[Attribute, ...] = ()
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    description: str = ""

    def sub_attribute(self, name: str) -> Attribute | None:
        """The sub-attribute called ``name``, matched case-insensitively (RFC 7643 §2.1)."""
        return _named(self.sub_attributes, name)


@dataclass(frozen=True)
class Schema:
    """A schema: its URI ``id``, a name, a description and its top-level attributes (RFC 7643 §7)."""

    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]

    def attribute(self, name: str) -> Attribute | None:
        """The top-level attribute called ``name``, matched case-insensitively (RFC 7643 §2.1)."""
        return _named(self.attributes, name)


@dataclass(frozen=True)
class ResourceType:
    """A resource type (RFC 7643 §6): its core schema and its extensions with their ``required``."""

    id: str
    endpoint: str
    description: str
    schema: Schema
    extensions: tuple[tuple[Schema, bool], ...] = ()

    def schemas(self) -> tuple[Schema, ...]:
        """The core schema followed by the extension schemas."""
        return (self.schema, *(schema for schema, _required in self.extensions))


_BY_NAME: dict[int, tuple[tuple[Attribute, ...], dict[str, Attribute]]] = {}


def _named(attributes: tuple[Attribute, ...], name: str) -> Attribute | None:
    """Case-insensitive lookup (RFC 7643 §2.1), through a lower-cased index built once per tuple. Only the
    schemas' own (long-lived) tuples come here, so the index stays small."""
    entry = _BY_NAME.get(id(attributes))
    if entry is None or entry[0] is not attributes:
        entry = (attributes, {attr.name.lower(): attr for attr in reversed(attributes)})
        _BY_NAME[id(attributes)] = entry
    return entry[1].get(name.lower())


# --------------------------------------------------------------------------------------------------
# Building blocks


def _string(name: str, description: str, **characteristics: Any) -> Attribute:
    return Attribute(name, "string", description=description, **characteristics)


def _display(mutability: str = "readWrite") -> Attribute:
    return _string(
        "display", "A human-readable name, primarily used for display purposes.", mutability=mutability
    )


def _type(canonical_values: tuple[str, ...] = (), mutability: str = "readWrite") -> Attribute:
    return _string(
        "type",
        "A label indicating the attribute's function.",
        canonical_values=canonical_values,
        mutability=mutability,
    )


_PRIMARY = Attribute(
    "primary",
    "boolean",
    description="A Boolean value indicating the 'primary' or preferred value; true at most once.",
)


def _multi(name: str, description: str, value: Attribute, type_values: tuple[str, ...] = ()) -> Attribute:
    """A multi-valued complex attribute with the standard sub-attributes (RFC 7643 §2.4)."""
    return Attribute(
        name,
        "complex",
        multi_valued=True,
        description=description,
        sub_attributes=(value, _display(), _type(type_values), _PRIMARY),
    )


# --------------------------------------------------------------------------------------------------
# Common attributes (RFC 7643 §3.1): part of every resource, defined by no schema URI.

COMMON_ATTRIBUTES: tuple[Attribute, ...] = (
    _string(
        "id",
        "A unique identifier for the resource, assigned by the service provider.",
        case_exact=True,
        mutability="readOnly",
        returned="always",
        uniqueness="server",
    ),
    _string(
        "externalId",
        "An identifier for the resource as defined by the provisioning client.",
        case_exact=True,
    ),
    Attribute(
        "meta",
        "complex",
        mutability="readOnly",
        description="Resource metadata, assigned by the service provider.",
        sub_attributes=(
            _string(
                "resourceType",
                "The name of the resource type of the resource.",
                case_exact=True,
                mutability="readOnly",
            ),
            Attribute(
                "created",
                "dateTime",
                mutability="readOnly",
                description="When the resource was added to the service provider.",
            ),
            Attribute(
                "lastModified",
                "dateTime",
                mutability="readOnly",
                description="When the resource was last updated at the service provider.",
            ),
            Attribute(
                "location",
                "reference",
                case_exact=True,
                mutability="readOnly",
                reference_types=("uri",),
                description="The URI of the resource being returned.",
            ),
            _string(
                "version",
                "The version (entity tag) of the resource being returned.",
                case_exact=True,
                mutability="readOnly",
            ),
        ),
    ),
)

# --------------------------------------------------------------------------------------------------
# User (RFC 7643 §4.1, §8.7.1)

USER_SCHEMA = Schema(
    USER_URN,
    "User",
    "User Account",
    (
        _string(
            "userName",
            "Unique identifier for the User, used by the user to authenticate. REQUIRED.",
            required=True,
            uniqueness="server",
        ),
        Attribute(
            "name",
            "complex",
            description="The components of the user's real name.",
            sub_attributes=(
                _string("formatted", "The full name, formatted for display."),
                _string("familyName", "The family name of the User, or last name."),
                _string("givenName", "The given name of the User, or first name."),
                _string("middleName", "The middle name(s) of the User."),
                _string("honorificPrefix", "The honorific prefix(es) of the User, e.g. 'Ms.'."),
                _string("honorificSuffix", "The honorific suffix(es) of the User, e.g. 'III'."),
            ),
        ),
        _string("displayName", "The name of the User, suitable for display to end-users."),
        _string("nickName", "The casual way to address the user in real life."),
        Attribute(
            "profileUrl",
            "reference",
            reference_types=("external",),
            description="A URL of a page representing the User's online profile.",
        ),
        _string("title", "The user's title, such as 'Vice President'."),
        _string("userType", "The relationship between the organization and the user, e.g. 'Employee'."),
        _string("preferredLanguage", "The User's preferred written or spoken language, e.g. 'en-US'."),
        _string("locale", "The User's default location for localization, e.g. 'en-US'."),
        _string("timezone", "The User's time zone in IANA format, e.g. 'America/Los_Angeles'."),
        Attribute("active", "boolean", description="The User's administrative status."),
        _string(
            "password",
            "The User's cleartext password, to set an initial or new password.",
            mutability="writeOnly",
            returned="never",
        ),
        _multi(
            "emails",
            "Email addresses for the User.",
            _string("value", "An email address for the User."),
            ("work", "home", "other"),
        ),
        _multi(
            "phoneNumbers",
            "Phone numbers for the User.",
            _string("value", "A phone number for the User."),
            ("work", "home", "mobile", "fax", "pager", "other"),
        ),
        _multi(
            "ims",
            "Instant messaging addresses for the User.",
            _string("value", "An instant messaging address for the User."),
            ("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
        ),
        _multi(
            "photos",
            "URLs of photos of the User.",
            Attribute("value", "reference", reference_types=("external",), description="URL of a photo."),
            ("photo", "thumbnail"),
        ),
        Attribute(
            "addresses",
            "complex",
            multi_valued=True,
            description="Physical mailing addresses for the User.",
            sub_attributes=(
                _string("formatted", "The full mailing address, formatted for display."),
                _string("streetAddress", "The full street address component."),
                _string("locality", "The city or locality component."),
                _string("region", "The state or region component."),
                _string("postalCode", "The zip code or postal code component."),
                _string("country", "The country name component."),
                _type(("work", "home", "other")),
                _PRIMARY,
            ),
        ),
        Attribute(
            "groups",
            "complex",
            multi_valued=True,
            mutability="readOnly",
            description="The groups the User belongs to.",
            sub_attributes=(
                _string("value", "The id of the Group.", mutability="readOnly"),
                Attribute(
                    "$ref",
                    "reference",
                    mutability="readOnly",
                    reference_types=("User", "Group"),
                    description="The URI of the Group.",
                ),
                _display("readOnly"),
                _type(("direct", "indirect"), "readOnly"),
            ),
        ),
        _multi(
            "entitlements",
            "Entitlements for the User: things the User has.",
            _string("value", "The value of an entitlement."),
        ),
        _multi("roles", "Roles for the User: who the User is.", _string("value", "The value of a role.")),
        _multi(
            "x509Certificates",
            "Certificates issued to the User.",
            Attribute("value", "binary", description="The value of an X.509 certificate (base64, DER)."),
        ),
    ),
)

# --------------------------------------------------------------------------------------------------
# Enterprise User extension (RFC 7643 §4.3, §8.7.1)

ENTERPRISE_USER_SCHEMA = Schema(
    ENTERPRISE_USER_URN,
    "EnterpriseUser",
    "Enterprise User",
    (
        _string("employeeNumber", "Identifier assigned to a person by the organization."),
        _string("costCenter", "The name of a cost center."),
        _string("organization", "The name of an organization."),
        _string("division", "The name of a division."),
        _string("department", "The name of a department."),
        Attribute(
            "manager",
            "complex",
            description="The User's manager.",
            sub_attributes=(
                _string("value", "The id of the SCIM resource representing the User's manager."),
                Attribute(
                    "$ref",
                    "reference",
                    reference_types=("User",),
                    description="The URI of the SCIM resource representing the User's manager.",
                ),
                _string("displayName", "The displayName of the User's manager.", mutability="readOnly"),
            ),
        ),
    ),
)

# --------------------------------------------------------------------------------------------------
# Group (RFC 7643 §4.2, §8.7.1). "While values MAY be added or removed, sub-attributes of members
# are immutable" (§4.2), which includes "display".

GROUP_SCHEMA = Schema(
    GROUP_URN,
    "Group",
    "Group",
    (
        _string("displayName", "A human-readable name for the Group. REQUIRED.", required=True),
        Attribute(
            "members",
            "complex",
            multi_valued=True,
            description="A list of members of the Group.",
            sub_attributes=(
                _string("value", "The id of a member of this Group.", mutability="immutable"),
                Attribute(
                    "$ref",
                    "reference",
                    mutability="immutable",
                    reference_types=("User", "Group"),
                    description="The URI of a SCIM resource that is a member of this Group.",
                ),
                _display("immutable"),
                _type(("User", "Group"), "immutable"),
            ),
        ),
    ),
)

SCHEMAS: list[Schema] = [USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA]

RESOURCE_TYPES: dict[str, ResourceType] = {
    "User": ResourceType("User", "/Users", "User Account", USER_SCHEMA, ((ENTERPRISE_USER_SCHEMA, False),)),
    "Group": ResourceType("Group", "/Groups", "Group", GROUP_SCHEMA),
}


# --------------------------------------------------------------------------------------------------
# Legacy schema URNs

# URNs from before RFC 7643 that IdPs still send: OneLogin's SCIM templates carry
# ``urn:scim:schemas:core:2.0`` and ``urn:scim:schemas:extension:enterprise:2.0`` (and SCIM 1.1's ``...:1.0``
# ones). Read as the RFC 7643 schema they stand for; "core" is the resource type's own core schema.
_LEGACY_URNS = {
    "urn:scim:schemas:core:1.0": "core",
    "urn:scim:schemas:core:2.0": "core",
    "urn:scim:schemas:core:2.0:user": USER_URN,
    "urn:scim:schemas:core:2.0:group": GROUP_URN,
    "urn:scim:schemas:extension:enterprise:1.0": ENTERPRISE_USER_URN,
    "urn:scim:schemas:extension:enterprise:2.0": ENTERPRISE_USER_URN,
    "urn:scim:schemas:extension:enterprise:2.0:user": ENTERPRISE_USER_URN,
}


def resolve_urn(resource_type: str, urn: str) -> str:
    """The RFC 7643 schema URI a legacy URN stands for (see ``_LEGACY_URNS``) when ``resource_type`` has
    that schema; any other URN unchanged."""
    target = _LEGACY_URNS.get(urn.lower())
    rtype = RESOURCE_TYPES.get(resource_type)
    if target is None or rtype is None:
        return urn
    if target == "core":
        return rtype.schema.id
    return target if any(s.id == target for s in rtype.schemas()) else urn


# --------------------------------------------------------------------------------------------------
# Lookup


_WITH_COMMON: dict[str, tuple[Attribute, ...]] = {}


def _with_common(schema: Schema) -> tuple[Attribute, ...]:
    """The common attributes (id, externalId, meta) followed by a core schema's: one tuple per schema."""
    found = _WITH_COMMON.get(schema.id)
    if found is None:
        found = _WITH_COMMON[schema.id] = COMMON_ATTRIBUTES + schema.attributes
    return found


def canonical_path(resource_type: str, path: AttrPath) -> AttrPath | None:
    """``path`` spelled as the schema spells it, or None if ``resource_type`` has no such attribute.

    Names match case-insensitively (RFC 7643 §2.1). A path without schema URI names a common or
    core attribute; an extension attribute needs its schema URI (RFC 7644 §3.10). The result keeps
    the schema URI for extension attributes only: ``urn:...:core:2.0:User:Name.GIVENNAME`` gives
    ``name.givenName``. A legacy URN names the schema it stands for (:func:`resolve_urn`).
    """
    rtype = RESOURCE_TYPES.get(resource_type)
    if rtype is None:
        return None
    schema = rtype.schema
    if path.schema is not None:
        lowered = resolve_urn(resource_type, path.schema).lower()
        found = next((s for s in rtype.schemas() if s.id.lower() == lowered), None)
        if found is None:
            return None
        schema = found
    candidates = schema.attributes if schema is not rtype.schema else _with_common(schema)
    attr = _named(candidates, path.attr)
    if attr is None:
        return None
    schema_id = None if schema is rtype.schema else schema.id
    if path.sub_attr is None:
        return AttrPath(schema_id, attr.name)
    sub = attr.sub_attribute(path.sub_attr)
    return None if sub is None else AttrPath(schema_id, attr.name, sub.name)


def find_attribute(resource_type: str, path: AttrPath) -> Attribute | None:
    """The definition of the attribute (or sub-attribute) ``path`` names, or None if unknown."""
    canonical = canonical_path(resource_type, path)
    if canonical is None:
        return None
    rtype = RESOURCE_TYPES[resource_type]
    if canonical.schema is None:
        attr = _named(_with_common(rtype.schema), canonical.attr)
    else:
        extension = next(s for s in rtype.schemas() if s.id == canonical.schema)
        attr = extension.attribute(canonical.attr)
    if attr is None or canonical.sub_attr is None:
        return attr
    return attr.sub_attribute(canonical.sub_attr)


def canonical_name(resource_type: str, path: AttrPath) -> str | None:
    """The canonical spelling of ``path`` (see :func:`canonical_path`) as text, or None if unknown."""
    canonical = canonical_path(resource_type, path)
    return None if canonical is None else str(canonical)


# --------------------------------------------------------------------------------------------------
# Discovery documents


def attribute_document(attr: Attribute) -> dict[str, Any]:
    """One attribute definition rendered as in RFC 7643 §7.

    ``canonicalValues`` appears when there are some, ``referenceTypes`` for references only and
    ``subAttributes`` for complex attributes only.
    """
    out: dict[str, Any] = {
        "name": attr.name,
        "type": attr.type,
        "multiValued": attr.multi_valued,
        "description": attr.description,
        "required": attr.required,
        "caseExact": attr.case_exact,
        "mutability": attr.mutability,
        "returned": attr.returned,
        "uniqueness": attr.uniqueness,
    }
    if attr.canonical_values:
        out["canonicalValues"] = list(attr.canonical_values)
    if attr.type == "reference":
        out["referenceTypes"] = list(attr.reference_types)
    if attr.type == "complex":
        out["subAttributes"] = [attribute_document(sub) for sub in attr.sub_attributes]
    return out


def schema_document(schema: Schema, *, base_url: str | None = None) -> dict[str, Any]:
    """The ``/Schemas`` resource for ``schema`` (RFC 7643 §7, §8.7.1).

    ``meta.location`` is ``{base_url}/Schemas/{id}`` when ``base_url`` is given.
    """
    meta: dict[str, Any] = {"resourceType": "Schema"}
    if base_url is not None:
        meta["location"] = f"{base_url.rstrip('/')}/Schemas/{schema.id}"
    return {
        "schemas": [SCHEMA_SCHEMA],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": [attribute_document(attr) for attr in schema.attributes],
        "meta": meta,
    }


def resource_type_documents(base_url: str) -> list[dict[str, Any]]:
    """The ``/ResourceTypes`` resources, User then Group (RFC 7643 §6, §8.6)."""
    base = base_url.rstrip("/")
    return [
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": rtype.id,
            "name": rtype.id,
            "endpoint": rtype.endpoint,
            "description": rtype.description,
            "schema": rtype.schema.id,
            "schemaExtensions": [
                {"schema": schema.id, "required": required} for schema, required in rtype.extensions
            ],
            "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{rtype.id}"},
        }
        for rtype in RESOURCE_TYPES.values()
    ]
