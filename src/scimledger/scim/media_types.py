"""The media type of a SCIM response, chosen from the request's ``Accept`` (RFC 7644 §3.8).

RFC 7644 §3.8: a service provider MUST support ``application/scim+json`` and SHOULD support
``application/json``; some clients need the latter (OneLogin documents that every response must be
``application/json``). Both carry the same body. The choice follows RFC 9110 §12.5.1: the higher quality
value wins; at equal quality a type named outright beats one matched by a wildcard (``application/json,
*/*`` is a request for JSON); otherwise, and when nothing is acceptable, ``application/scim+json``.
"""

from __future__ import annotations

SCIM_JSON = "application/scim+json"
JSON = "application/json"

# How well a media range matches a type: named outright, by ``type/*``, by ``*/*``.
_EXACT, _SUBTYPE_WILDCARD, _ANY = 3, 2, 1


def _ranges(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an ``Accept`` value with their quality (RFC 9110 §12.5.1); malformed ones are
    dropped."""
    out = []
    for part in accept.split(","):
        media_range, *params = (p.strip() for p in part.split(";"))
        if "/" not in media_range:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = -1.0
        if 0.0 <= quality <= 1.0:
            out.append((media_range.lower(), quality))
    return out


def _preference(ranges: list[tuple[str, float]], media_type: str) -> tuple[float, int]:
    """(quality, how specifically it was matched) of ``media_type``: the most specific range decides."""
    kind = media_type.split("/")[0]
    best: tuple[int, float] = (0, 0.0)
    for media_range, quality in ranges:
        if media_range == media_type:
            specificity = _EXACT
        elif media_range == f"{kind}/*":
            specificity = _SUBTYPE_WILDCARD
        elif media_range == "*/*":
            specificity = _ANY
        else:
            continue
        if specificity > best[0]:
            best = (specificity, quality)
    return (best[1], best[0]) if best[0] else (0.0, 0)


def negotiate(accept: str | None) -> str:
    """``application/json`` when the client prefers it to ``application/scim+json`` (module docstring),
    else ``application/scim+json``."""
    if not accept or not accept.strip():
        return SCIM_JSON
    ranges = _ranges(accept)
    json_quality, json_specificity = _preference(ranges, JSON)
    scim_quality, scim_specificity = _preference(ranges, SCIM_JSON)
    if json_quality > 0 and (json_quality, json_specificity) > (scim_quality, scim_specificity):
        return JSON
    return SCIM_JSON
