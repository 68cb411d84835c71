"""The identity rule for userName (README "Identity rule"; RFC 7643 §4.1.1: userName is unique and not
case-exact). One key, used by the uniqueness claim, every ``userName eq`` filter and the admin API:

1. drop Unicode format characters (category Cf: zero-width space, joiners, BOM) — invisible, never intended;
2. strip leading and trailing whitespace — IdPs send what a person typed into a directory;
3. NFC, full case folding (``str.casefold``: ``ß`` -> ``ss``, Kelvin sign -> ``k``), NFC again.

Inner spaces and compatibility forms (full-width letters) are kept: they are different names.
"""

from __future__ import annotations

import unicodedata


def user_name_key(value: str) -> str:
    """The comparison key of a userName (see the module docstring)."""
    if value.isascii():  # no format characters; NFC is the identity; case folding is lower-casing
        return value.strip().lower()
    visible = "".join(ch for ch in value if unicodedata.category(ch) != "Cf").strip()
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", visible).casefold())
