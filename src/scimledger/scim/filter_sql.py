"""Compile SCIM filters (RFC 7644 §3.4.2.2) and ``sortBy`` (RFC 7644 §3.4.2.3) to PostgreSQL.

The SQL runs over the read model: ``scim_users u``, ``scim_groups g`` and ``scim_group_members gm``
(current memberships). Every attribute path is first resolved against :mod:`scimledger.scim.schemas`;
an unknown attribute, or an operator the attribute's type does not support, raises
:class:`InvalidFilter`. Values are never written into the SQL text: each one is appended to
``params`` and referenced as ``$n`` (asyncpg style, ``n = len(params)`` after the append), already
converted to the Python type asyncpg expects (``str``, ``bool``, ``datetime``, ``uuid.UUID``,
``Decimal``). Only names from the schemas (never from the request) are written into the SQL.

Mapping:

- Indexed columns: ``id``, ``externalId``, ``userName``, ``displayName``, ``active``,
  ``meta.created``, ``meta.lastModified``; ``meta.resourceType`` is a constant.
  ``userName eq "x"`` is exactly ``u.user_name_key = $n`` with ``$n`` the caller's ``user_name_key(x)``
  (the domain's identity rule, also used by the uniqueness claim), so the index on
  ``(workspace_id, user_name_key)`` applies and "409 on create" agrees with "found by eq"; every other
  userName comparison uses the same key; ``emails[.value] eq "x"`` is
  ``u.email_values @> ARRAY[$n]::text[]`` with ``$n`` lower-cased in Python, as the projection lower-cases
  the stored values (GIN index).
- ``id`` (and member/group ids): ``eq`` a valid UUID is ``= $n::uuid``; ``eq`` anything else is
  ``FALSE`` (a malformed id never reaches a uuid cast).
- Other attributes are read from the ``resource`` jsonb, extension attributes under their schema
  URI key. Multi-valued complex attributes and value paths become ``EXISTS`` over
  ``jsonb_array_elements(...) AS e(v)``; Group ``members`` and User ``groups`` become ``EXISTS``
  over ``scim_group_members``.
- ``schemas eq "<urn>"`` (RFC 7644 §3.4.2.2 example) is true for the core schema and, for an
  extension, when the resource has the extension object.

Semantics (RFC 7644 §3.4.2.2): strings compare case-insensitively unless the attribute is
``caseExact``; ``co``/``sw``/``ew`` are ``LIKE`` with ``%``, ``_`` and ``\\`` escaped; ``pr`` means
not null, not ``""``, and for multi-valued attributes at least one value. Filters have two-valued
logic: an absent attribute makes a comparison false, ``ne`` is ``not eq`` (so an absent attribute
*is* ``ne`` any value) and ``not`` is true whenever its operand is not true, hence the
``NOT COALESCE(x, FALSE)`` form. ``eq null`` is ``not pr``. ``gt``/``ge``/``lt``/``le`` on booleans,
binaries and complex attributes raise :class:`InvalidFilter`, as do filters on ``password``
(``returned: never``) and on ``meta.location``, ``meta.version``, ``groups.type``, ``groups.$ref``,
``members.type`` and ``members.$ref``, which the read model does not hold.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal, TypeAlias

from .errors import InvalidFilter, InvalidPath, InvalidValue
from .filter import And, Compare, CompValue, Expr, Not, Or, Present, ValuePath, parse_datetime
from .paths import AttrPath, parse_attr_path
from .schemas import RESOURCE_TYPES, Attribute, canonical_path, find_attribute

ResourceTypeName: TypeAlias = Literal["User", "Group"]

_SQL_OPS = {"eq": "=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_TEXT_TYPES = frozenset({"string", "reference", "binary"})
_NO_ORDER_TYPES = frozenset({"boolean", "binary", "complex"})  # RFC 7644 §3.4.2.2, gt/ge/lt/le


def compile_filter(
    expr: Expr, resource_type: ResourceTypeName, params: list[object], user_name_key: Callable[[str], str]
) -> str:
    """An SQL boolean expression selecting the resources ``expr`` matches (RFC 7644 §3.4.2.2).

    Appends the values to ``params``; raises :class:`InvalidFilter` for unknown attributes and
    unsupported comparisons. ``user_name_key`` is the identity rule userName values are compared by.
    """
    return _Compiler(params, user_name_key).expr(expr, _RootScope(resource_type))


def compile_sort(sort_by: str, resource_type: ResourceTypeName) -> str:
    """The SQL expression to ``ORDER BY`` for ``sortBy`` (RFC 7644 §3.4.2.3).

    Strings that are not ``caseExact`` sort by ``lower(...)``. A multi-valued attribute sorts by its
    primary value, else its first value (``value`` sub-attribute unless another is named). Unknown or
    unsortable attributes raise :class:`InvalidValue`.
    """
    try:
        target = _RootScope(resource_type).resolve(parse_attr_path(sort_by))
    except (InvalidPath, InvalidFilter) as exc:
        raise InvalidValue(f"cannot sort by {sort_by!r}: {exc.detail}") from exc
    if isinstance(target, _Rows):
        column = target.columns.get("value")
        target = _RowsField(target, column) if column is not None else target
    if isinstance(target, _RowsField) and target.rows.array is not None:
        first = (
            f"(SELECT {target.column.sql} FROM jsonb_array_elements({_array_or_empty(target.rows.array)})"
            " WITH ORDINALITY AS e(v, n)"
            " ORDER BY COALESCE(e.v->'primary' = 'true'::jsonb, FALSE) DESC, e.n LIMIT 1)"
        )
        return _sort_key(_Column(first, target.column.attr))
    if not isinstance(target, _Column):
        raise InvalidValue(f"cannot sort by {sort_by!r}")
    return _sort_key(target)


def _sort_key(column: _Column) -> str:
    if column.attr.type in _TEXT_TYPES and not column.attr.case_exact and not column.is_uuid:
        return f"lower({column.sql})"
    return column.sql


# --------------------------------------------------------------------------------------------------
# What a path resolves to


@dataclass(frozen=True)
class _Column:
    """A single value: an SQL expression of the attribute's type (``is_uuid``: a uuid column)."""

    sql: str
    attr: Attribute
    is_uuid: bool = False


@dataclass(frozen=True)
class _Rows:
    """A multi-valued complex attribute: ``EXISTS (SELECT 1 FROM source WHERE where AND ...)``.

    ``columns`` are its sub-attributes per row; ``array`` is the jsonb array for jsonb-backed ones;
    ``lower_values`` a ``text[]`` column holding the lower-cased ``value`` of every row, if any.
    """

    name: str
    source: str
    where: str
    columns: Mapping[str, _Column]
    array: str | None = None
    lower_values: str | None = None


@dataclass(frozen=True)
class _RowsField:
    """A sub-attribute of a multi-valued attribute (``emails.type``): true if some row matches."""

    rows: _Rows
    column: _Column


@dataclass(frozen=True)
class _Object:
    """A singular complex attribute (``name``): needs a sub-attribute except for ``pr``."""

    path: AttrPath
    present: str


@dataclass(frozen=True)
class _Schemas:
    """The ``schemas`` attribute of the resource (RFC 7643 §3)."""

    core: str
    extensions: Mapping[str, str]  # lower-cased URI -> SQL true when the resource has the extension


_Target: TypeAlias = _Column | _Rows | _RowsField | _Object | _Schemas


def _literal(text: str) -> str:
    """A schema-defined name (never request input) as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _array_or_empty(array: str) -> str:
    return f"CASE WHEN jsonb_typeof({array}) = 'array' THEN {array} ELSE '[]'::jsonb END"


def _json_value(obj: str, attr: Attribute) -> str:
    """``attr`` read from the jsonb object ``obj`` as SQL of its type; a mistyped value gives NULL."""
    key = _literal(attr.name)
    text = f"({obj}->>{key})"
    if attr.type == "boolean":
        return f"(CASE WHEN jsonb_typeof({obj}->{key}) = 'boolean' THEN {text}::boolean END)"
    if attr.type in ("integer", "decimal"):
        return f"(CASE WHEN jsonb_typeof({obj}->{key}) = 'number' THEN {text}::numeric END)"
    if attr.type == "dateTime":
        pattern = "'^[0-9]{4}-[0-9]{2}-[0-9]{2}T'"
        return f"(CASE WHEN {text} ~ {pattern} THEN {text}::timestamptz END)"
    return text


def _element_columns(attr: Attribute) -> dict[str, _Column]:
    return {sub.name: _Column(_json_value("e.v", sub), sub) for sub in attr.sub_attributes}


class _RootScope:
    """Resolves paths of a User (``u``) or Group (``g``) row."""

    def __init__(self, resource_type: ResourceTypeName) -> None:
        self.resource_type = resource_type
        alias = "u" if resource_type == "User" else "g"
        self.alias = alias
        self.columns: dict[str, tuple[str, bool]] = {
            "id": (f"{alias}.id", True),
            "externalId": (f"{alias}.external_id", False),
            "displayName": (f"{alias}.display_name", False),
            "meta.created": (f"{alias}.created", False),
            "meta.lastModified": (f"{alias}.last_modified", False),
            "meta.resourceType": (f"{_literal(resource_type)}::text", False),
        }
        if resource_type == "User":
            self.columns["userName"] = ("u.user_name", False)
            self.columns["active"] = ("u.active", False)

    def resolve(self, path: AttrPath) -> _Target:
        if path.schema is None and path.sub_attr is None and path.attr.lower() == "schemas":
            return self.schemas()
        canonical = canonical_path(self.resource_type, path)
        attr = None if canonical is None else find_attribute(self.resource_type, canonical)
        if canonical is None or attr is None:
            raise InvalidFilter(f"unknown attribute {str(path)!r} for {self.resource_type}")
        if attr.returned == "never":
            raise InvalidFilter(f"attribute {str(canonical)!r} cannot be filtered on")
        name = str(canonical)
        if name in self.columns:
            sql, is_uuid = self.columns[name]
            return _Column(sql, attr, is_uuid)
        if canonical.attr == "meta":
            if canonical.sub_attr is None:
                return _Object(canonical, "TRUE")
            raise InvalidFilter(f"attribute {name!r} is not supported in filters")
        top = AttrPath(canonical.schema, canonical.attr)
        top_attr = find_attribute(self.resource_type, top)
        assert top_attr is not None
        base = f"{self.alias}.resource"
        if canonical.schema is not None:
            base = f"{base}->{_literal(canonical.schema)}"
        if top_attr.multi_valued:
            rows = self.rows(top_attr, f"{base}->{_literal(top_attr.name)}")
            if canonical.sub_attr is None:
                return rows
            column = rows.columns.get(attr.name)
            if column is None:
                raise InvalidFilter(f"attribute {name!r} is not supported in filters")
            return _RowsField(rows, column)
        if top_attr.type == "complex":
            obj = f"{base}->{_literal(top_attr.name)}"
            if canonical.sub_attr is None:
                return _Object(top, f"(jsonb_typeof({obj}) = 'object' AND {obj} <> '{{}}'::jsonb)")
            return _Column(_json_value(obj, attr), attr)
        return _Column(_json_value(base, attr), attr)

    def rows(self, attr: Attribute, array: str) -> _Rows:
        """Rows of a multi-valued complex attribute: memberships, or jsonb array elements."""
        display = attr.sub_attribute("display")
        value = attr.sub_attribute("value")
        if self.resource_type == "Group" and attr.name == "members" and value and display:
            return _Rows(
                "members",
                "scim_group_members gm",
                "gm.workspace_id = g.workspace_id AND gm.group_id = g.id",
                {
                    "value": _Column("gm.member_id", value, is_uuid=True),
                    "display": _Column(
                        "coalesce(gm.display, (SELECT coalesce(mu.display_name, mu.user_name)"
                        " FROM scim_users mu"
                        " WHERE mu.workspace_id = gm.workspace_id AND mu.id = gm.member_id))",
                        display,
                    ),
                },
            )
        if self.resource_type == "User" and attr.name == "groups" and value and display:
            group_name = (
                "(SELECT gg.display_name FROM scim_groups gg "
                "WHERE gg.workspace_id = gm.workspace_id AND gg.id = gm.group_id)"
            )
            return _Rows(
                "groups",
                "scim_group_members gm",
                "gm.workspace_id = u.workspace_id AND gm.member_id = u.id",
                {
                    "value": _Column("gm.group_id", value, is_uuid=True),
                    "display": _Column(group_name, display),
                },
            )
        source = f"jsonb_array_elements({_array_or_empty(array)}) AS e(v)"
        lower_values = "u.email_values" if array == "u.resource->'emails'" else None
        return _Rows(attr.name, source, "TRUE", _element_columns(attr), array, lower_values)

    def schemas(self) -> _Schemas:
        rtype = RESOURCE_TYPES[self.resource_type]
        extensions = {
            schema.id.lower(): f"({self.alias}.resource->{_literal(schema.id)}) IS NOT NULL"
            for schema, _required in rtype.extensions
        }
        return _Schemas(rtype.schema.id, extensions)


class _ElementScope:
    """Resolves the relative paths inside a value filter (``type`` in ``emails[type eq "work"]``)."""

    def __init__(self, rows: _Rows) -> None:
        self.rows = rows

    def resolve(self, path: AttrPath) -> _Target:
        if path.schema is None and path.sub_attr is None:
            lowered = path.attr.lower()
            for name, column in self.rows.columns.items():
                if name.lower() == lowered:
                    return column
        raise InvalidFilter(f"unknown or unsupported attribute {str(path)!r} in a {self.rows.name} filter")


class _QualifiedScope:
    """Resolves the paths inside ``name[givenName eq "x"]`` as ``name.givenName``."""

    def __init__(self, outer: _RootScope, parent: AttrPath) -> None:
        self.outer = outer
        self.parent = parent

    def resolve(self, path: AttrPath) -> _Target:
        if path.schema is not None or path.sub_attr is not None:
            raise InvalidFilter(f"unexpected attribute {str(path)!r} in a {self.parent.attr} filter")
        return self.outer.resolve(AttrPath(self.parent.schema, self.parent.attr, path.attr))


_Scope: TypeAlias = _RootScope | _ElementScope | _QualifiedScope


# --------------------------------------------------------------------------------------------------
# Compilation


def _negate(sql: str) -> str:
    """``not``: true unless the operand is true (an absent attribute's NULL counts as false)."""
    return f"NOT COALESCE({sql}, FALSE)"


def _exists(rows: _Rows, condition: str) -> str:
    where = " AND ".join(part for part in (rows.where, condition) if part != "TRUE")
    return f"EXISTS (SELECT 1 FROM {rows.source}{f' WHERE {where}' if where else ''})"


def _as_bool(value: CompValue) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


USER_NAME = "u.user_name"
USER_NAME_KEY = "u.user_name_key"


class _Compiler:
    def __init__(self, params: list[object], user_name_key: Callable[[str], str]) -> None:
        self.params = params
        self.user_name_key = user_name_key

    def param(self, value: object) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def expr(self, expr: Expr, scope: _Scope) -> str:
        match expr:
            case And():
                return f"({self.expr(expr.left, scope)} AND {self.expr(expr.right, scope)})"
            case Or():
                return f"({self.expr(expr.left, scope)} OR {self.expr(expr.right, scope)})"
            case Not():
                return _negate(self.expr(expr.expr, scope))
            case Present():
                return self.present(scope.resolve(expr.path))
            case ValuePath():
                return self.value_path(expr, scope)
            case Compare():
                if expr.op == "ne":
                    return _negate(self.expr(Compare(expr.path, "eq", expr.value), scope))
                target = scope.resolve(expr.path)
                if expr.value is None:  # "eq null": unassigned and null are one state (RFC 7643 §2.5)
                    return _negate(self.present(target))
                return self.compare(target, expr.op, expr.value, str(expr.path))

    def present(self, target: _Target) -> str:
        """``pr`` (RFC 7644 §3.4.2.2): a non-empty value; for multi-valued, some value."""
        match target:
            case _Column():
                if target.attr.type in _TEXT_TYPES and not target.is_uuid:
                    return f"({target.sql} IS NOT NULL AND {target.sql} <> '')"
                return f"({target.sql} IS NOT NULL)"
            case _Rows():
                return _exists(target, "TRUE")
            case _RowsField():
                return _exists(target.rows, self.present(target.column))
            case _Object():
                return target.present
            case _Schemas():
                return "TRUE"

    def value_path(self, expr: ValuePath, scope: _Scope) -> str:
        """``attr[filter]``: some value of ``attr`` matches ``filter`` (RFC 7644 §3.4.2.2)."""
        target = scope.resolve(expr.path)
        if isinstance(target, _Rows):
            inner = expr.filter
            if (  # emails[value eq "x"] is emails.value eq "x": same index
                target.lower_values
                and isinstance(inner, Compare)
                and inner.op == "eq"
                and isinstance(inner.value, str)
                and inner.path.schema is None
                and inner.path.sub_attr is None
                and inner.path.attr.lower() == "value"
            ):
                return f"{target.lower_values} @> ARRAY[{self.param(inner.value.lower())}]::text[]"
            return _exists(target, self.expr(expr.filter, _ElementScope(target)))
        if isinstance(target, _Object) and isinstance(scope, _RootScope):
            return self.expr(expr.filter, _QualifiedScope(scope, target.path))
        raise InvalidFilter(f"{str(expr.path)!r} is not a complex attribute")

    def compare(self, target: _Target, op: str, value: CompValue, name: str) -> str:
        match target:
            case _Column():
                return self.compare_column(target, op, value, name)
            case _Rows():
                value_column = target.columns.get("value")
                if value_column is None:
                    raise InvalidFilter(f"{name!r} is complex: name a sub-attribute")
                return self.compare(_RowsField(target, value_column), op, value, name)
            case _RowsField():
                indexed = target.rows.lower_values
                if indexed and target.column.attr.name == "value" and op == "eq" and isinstance(value, str):
                    return f"{indexed} @> ARRAY[{self.param(value.lower())}]::text[]"
                return _exists(target.rows, self.compare_column(target.column, op, value, name))
            case _Object():
                raise InvalidFilter(f"{name!r} is complex: name a sub-attribute")
            case _Schemas():
                if op != "eq" or not isinstance(value, str):
                    raise InvalidFilter("'schemas' supports only eq with a schema URI")
                if value.lower() == target.core.lower():
                    return "TRUE"
                return target.extensions.get(value.lower(), "FALSE")

    def compare_column(self, column: _Column, op: str, value: CompValue, name: str) -> str:
        """One comparison by the attribute's type (RFC 7644 §3.4.2.2, Table 3)."""
        kind = column.attr.type
        if op in _SQL_OPS and op != "eq" and kind in _NO_ORDER_TYPES:
            raise InvalidFilter(f"operator {op!r} is not supported for {kind} attribute {name!r}")
        if kind == "boolean":
            flag = _as_bool(value)
            if op != "eq" or flag is None:
                raise InvalidFilter(f"{name!r} is boolean: only eq/ne true or false")
            return f"{column.sql} = {self.param(flag)}"
        if kind == "dateTime":
            when = _in_utc(parse_datetime(value)) if isinstance(value, str) else None
            if op not in _SQL_OPS or when is None:
                raise InvalidFilter(f"{name!r} is a dateTime: compare with an xsd:dateTime string")
            return f"{column.sql} {_SQL_OPS[op]} {self.param(when)}::timestamptz"
        if kind in ("integer", "decimal"):
            if op not in _SQL_OPS or isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidFilter(f"{name!r} is a number: compare with eq/ne/gt/ge/lt/le and a number")
            return f"{column.sql} {_SQL_OPS[op]} {self.param(Decimal(str(value)))}::numeric"
        if kind == "complex":
            raise InvalidFilter(f"{name!r} is complex: name a sub-attribute")
        if not isinstance(value, str):
            raise InvalidFilter(f"{name!r} is a string: compare with a string value")
        sql = column.sql
        if sql == USER_NAME:
            return self.compare_text(USER_NAME_KEY, op, self.user_name_key(value), "{}")
        if column.is_uuid:
            if op == "eq":
                return self.compare_uuid(sql, value)
            sql = f"{sql}::text"
        exact = column.attr.case_exact or kind == "binary"
        left, wrap = (sql, "{}") if exact else (f"lower({sql})", "lower({})")
        return self.compare_text(left, op, value, wrap)

    def compare_text(self, left: str, op: str, value: str, wrap: str) -> str:
        """``left op value`` for strings; ``wrap`` applies the same folding to the value's SQL."""
        if op in ("co", "sw", "ew"):
            escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = {"co": f"%{escaped}%", "sw": f"{escaped}%", "ew": f"%{escaped}"}[op]
            return f"{left} LIKE {wrap.format(self.param(pattern))} ESCAPE '\\'"
        return f"{left} {_SQL_OPS[op]} {wrap.format(self.param(value))}"

    def compare_uuid(self, sql: str, value: str) -> str:
        """``eq`` on a uuid column: a malformed id matches nothing and is never cast in SQL."""
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            return "FALSE"
        return f"{sql} = {self.param(parsed)}::uuid"


def _in_utc(when: datetime | None) -> datetime | None:
    """The instant in UTC, or None when it falls outside what a datetime can hold (year 1..9999)."""
    if when is None:
        return None
    try:
        return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    except (OverflowError, ValueError):
        return None
