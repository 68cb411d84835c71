"""The SCIM filter language (RFC 7644 §3.4.2.2): a parser to a small AST, and an in-memory matcher.

Grammar (RFC 7644 §3.4.2.2, Figure 1), with ``not`` binding tighter than ``and``, and ``and`` tighter
than ``or``::

    FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
    valuePath = attrPath "[" valFilter "]"
    attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
    compValue = false / null / true / number / string        ; JSON (RFC 7159)

Attribute names, operators and ``and``/``or``/``not`` are case-insensitive. The parser is lenient
about whitespace (any run of blanks separates tokens, none is needed around brackets or quotes, and
``not(`` is accepted as well as ``not (``, see erratum 7319) and accepts ``true``/``false``/``null``
in any case. It rejects a ``[...]`` inside a value filter (``valFilter`` has no ``valuePath``).

The parser checks syntax only. Whether attributes exist is checked against the schemas by the
consumer (:mod:`scimledger.scim.filter_sql`). :func:`matches` evaluates a filter against one JSON
object, as PATCH needs for value filters over the elements of a multi-valued attribute.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

from .errors import InvalidFilter, InvalidPath
from .paths import AttrPath, parse_attr_path

CompValue: TypeAlias = str | int | float | bool | None

COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
ORDER_OPS = frozenset({"gt", "ge", "lt", "le"})


@dataclass(frozen=True)
class Compare:
    """``path op value``; ``op`` is lower-cased (RFC 7644 §3.4.2.2, Table 3)."""

    path: AttrPath
    op: str
    value: CompValue


@dataclass(frozen=True)
class Present:
    """``path pr``: the attribute has a non-empty value."""

    path: AttrPath


@dataclass(frozen=True)
class And:
    """``left and right``."""

    left: Expr
    right: Expr


@dataclass(frozen=True)
class Or:
    """``left or right``."""

    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not:
    """``not (expr)``."""

    expr: Expr


@dataclass(frozen=True)
class ValuePath:
    """``path[filter]``: some value of the multi-valued ``path`` matches ``filter``.

    The paths inside ``filter`` are relative to ``path`` (``type`` in ``emails[type eq "work"]``).
    """

    path: AttrPath
    filter: Expr


Expr: TypeAlias = Compare | Present | And | Or | Not | ValuePath

# A token is a bracket, a JSON string, or a run of anything else (names, operators, numbers, literals).
_TOKEN_RE = re.compile(r'([()\[\]])|("(?:[^"\\]|\\.)*")|([^\s()\[\]"]+)', re.DOTALL)
_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_LITERALS: dict[str, CompValue] = {"true": True, "false": False, "null": None}
# xsd:dateTime (RFC 7643 §2.3.5): a full date and time, optional fraction and offset.
_DATETIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|z|[+-]\d{2}:\d{2})?")


@dataclass(frozen=True)
class _Token:
    kind: str  # "(", ")", "[", "]", "string", "word"
    text: str
    at: int


def parse_filter(text: str, *, max_length: int = 2048, max_depth: int = 16) -> Expr:
    """Parse a filter (RFC 7644 §3.4.2.2); raise :class:`InvalidFilter` if it is not one.

    ``max_length`` bounds the text, ``max_depth`` the nesting of ``(...)`` and ``[...]``.
    """
    if len(text) > max_length:
        raise InvalidFilter(f"filter is longer than {max_length} characters")
    return _Parser(text, max_depth).parse()


class _Parser:
    """Recursive descent: ``or`` over ``and`` over ``not``/primary (RFC 7644 §3.4.2.2 precedence)."""

    def __init__(self, text: str, max_depth: int) -> None:
        self.tokens = list(_tokenize(text))
        self.pos = 0
        self.depth = 0
        self.max_depth = max_depth
        self.in_value_filter = False

    def parse(self) -> Expr:
        if not self.tokens:
            raise InvalidFilter("empty filter")
        expr = self.or_expr()
        if self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            raise InvalidFilter(f"unexpected {token.text!r} at position {token.at}")
        return expr

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self, what: str) -> _Token:
        token = self.peek()
        if token is None:
            raise InvalidFilter(f"filter ends where {what} was expected")
        self.pos += 1
        return token

    def expect(self, kind: str) -> None:
        token = self.next(repr(kind))
        if token.kind != kind:
            raise InvalidFilter(f"expected {kind!r} at position {token.at}, found {token.text!r}")

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.lower() == word:
            self.pos += 1
            return True
        return False

    def or_expr(self) -> Expr:
        operands = [self.and_expr()]
        while self.keyword("or"):
            operands.append(self.and_expr())
        return _balanced(Or, operands)

    def and_expr(self) -> Expr:
        operands = [self.unary()]
        while self.keyword("and"):
            operands.append(self.unary())
        return _balanced(And, operands)

    def unary(self) -> Expr:
        token = self.next("an expression")
        if token.kind == "word" and token.text.lower() == "not":
            following = self.peek()
            if following is None or following.kind != "(":
                raise InvalidFilter(f"'not' must be followed by '(' at position {token.at}")
            return Not(self.unary())
        if token.kind == "(":
            return self.group(")", self.or_expr)
        if token.kind != "word":
            raise InvalidFilter(f"expected an attribute at position {token.at}, found {token.text!r}")
        return self.attr_expr(_attr_path(token))

    def group(self, closing: str, inner: Callable[[], Expr]) -> Expr:
        self.depth += 1
        if self.depth > self.max_depth:
            raise InvalidFilter(f"filter is nested deeper than {self.max_depth} levels")
        expr = inner()
        self.expect(closing)
        self.depth -= 1
        return expr

    def attr_expr(self, path: AttrPath) -> Expr:
        token = self.next("an operator")
        if token.kind == "[":
            inner = self.group("]", self.value_filter)
            after = self.peek()
            if after is not None and after.kind == "word" and len(after.text) > 1 and after.text[0] == ".":
                # Microsoft Entra sends emails[type eq "work"].value eq "x", outside RFC 7644's grammar:
                # read it as emails[type eq "work" and value eq "x"].
                self.pos += 1
                inner = And(inner, self.attr_expr(AttrPath(None, after.text[1:])))
            return ValuePath(path, inner)
        op = token.text.lower()
        if token.kind != "word" or (op != "pr" and op not in COMPARE_OPS):
            raise InvalidFilter(f"unknown operator {token.text!r} at position {token.at}")
        if op == "pr":
            return Present(path)
        value = _comp_value(self.next("a comparison value"))
        if (value is None or isinstance(value, bool)) and op not in ("eq", "ne"):
            raise InvalidFilter(f"operator {op!r} cannot compare with {json.dumps(value)}")
        return Compare(path, op, value)

    def value_filter(self) -> Expr:
        if self.in_value_filter:
            raise InvalidFilter("a value filter cannot contain another value filter")
        self.in_value_filter = True
        expr = self.or_expr()
        self.in_value_filter = False
        return expr


def _balanced(operator: type[And] | type[Or], operands: list[Expr]) -> Expr:
    """Join ``a op b op c ...`` pairwise, left to right, so the tree is only log2(n) deep.

    ``and`` and ``or`` are associative, so this is the same filter as the left-nested chain, and
    evaluating or compiling it cannot exhaust the stack however many terms a filter has.
    """
    while len(operands) > 1:
        pairs = [operands[i : i + 2] for i in range(0, len(operands), 2)]
        operands = [operator(*pair) if len(pair) == 2 else pair[0] for pair in pairs]
    return operands[0]


def _tokenize(text: str) -> Iterator[_Token]:
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return
        match = _TOKEN_RE.match(text, pos)
        if match is None:  # only an opening quote without its closing quote gets here
            raise InvalidFilter(f"unterminated string at position {pos}")
        bracket, string, word = match.groups()
        kind = bracket or ("string" if string is not None else "word")
        yield _Token(kind, bracket or string or word, pos)
        pos = match.end()


def _attr_path(token: _Token) -> AttrPath:
    try:
        return parse_attr_path(token.text)
    except InvalidPath as exc:
        raise InvalidFilter(f"invalid attribute path {token.text!r} at position {token.at}") from exc


def _comp_value(token: _Token) -> CompValue:
    """``compValue``: a JSON string, number, ``true``, ``false`` or ``null`` (RFC 7644 §3.4.2.2)."""
    if token.kind == "string":
        try:
            decoded: str = json.loads(token.text)
        except json.JSONDecodeError as exc:
            raise InvalidFilter(f"invalid string at position {token.at}") from exc
        return decoded
    if token.kind == "word":
        if token.text.lower() in _LITERALS:
            return _LITERALS[token.text.lower()]
        number = _NUMBER_RE.fullmatch(token.text)
        if number is not None:
            is_float = number.group(1) is not None or number.group(2) is not None
            return float(token.text) if is_float else int(token.text)
    raise InvalidFilter(f"invalid comparison value {token.text!r} at position {token.at}")


# --------------------------------------------------------------------------------------------------
# In-memory evaluation


def parse_datetime(text: str) -> datetime | None:
    """An xsd:dateTime string (RFC 7643 §2.3.5) as an aware datetime (UTC if no offset), else None."""
    if not _DATETIME_RE.fullmatch(text):
        return None
    try:
        parsed = datetime.fromisoformat(text.upper())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def matches(
    expr: Expr,
    obj: Mapping[str, Any],
    *,
    case_exact: Callable[[AttrPath], bool] | None = None,
) -> bool:
    """Whether the JSON object ``obj`` satisfies ``expr`` (RFC 7644 §3.4.2.2).

    - Names are looked up case-insensitively (RFC 7643 §2.1); a path's schema URI, if ``obj`` has a
      key of that name, selects that extension object, else the path is read from ``obj`` itself.
    - A multi-valued attribute matches if any of its values does; without a sub-attribute the
      ``value`` sub-attribute of complex values is used (``emails co "x"``).
    - Strings compare case-insensitively unless ``case_exact(path)`` says otherwise; ``path`` is
      relative to ``obj`` (in ``emails[value eq "x"]`` it is ``emails.value``). Booleans compare
      as booleans, also against the strings ``"True"``/``"False"`` (as Microsoft Entra sends them).
      Two xsd:dateTime strings compare chronologically, numbers numerically.
    - ``ne`` is ``not eq``, so an absent attribute is ``ne`` anything; ``eq null`` is ``not pr``.
    - ``gt``/``ge``/``lt``/``le`` on a boolean raise :class:`InvalidFilter`.
    """
    exact = case_exact or (lambda _path: False)
    match expr:
        case And():
            return matches(expr.left, obj, case_exact=exact) and matches(expr.right, obj, case_exact=exact)
        case Or():
            return matches(expr.left, obj, case_exact=exact) or matches(expr.right, obj, case_exact=exact)
        case Not():
            return not matches(expr.expr, obj, case_exact=exact)
        case Present():
            return any(_present(value) for value in _values(obj, expr.path))
        case ValuePath():
            return _match_value_path(expr, obj, exact)
        case Compare():
            if expr.op == "ne":
                return not matches(Compare(expr.path, "eq", expr.value), obj, case_exact=exact)
            if expr.value is None:  # "eq null": unassigned and null are the same state (RFC 7643 §2.5)
                return not any(_present(value) for value in _values(obj, expr.path))
            folded = not exact(expr.path)
            return any(_compare(value, expr.op, expr.value, folded) for value in _values(obj, expr.path))


def _match_value_path(expr: ValuePath, obj: Mapping[str, Any], exact: Callable[[AttrPath], bool]) -> bool:
    parent = expr.path

    def inner_exact(path: AttrPath) -> bool:
        return exact(AttrPath(parent.schema, parent.attr, path.attr))

    container = _lookup(_scope(obj, parent.schema), parent.attr)
    if parent.sub_attr is not None and isinstance(container, Mapping):
        container = _lookup(container, parent.sub_attr)
    elements = container if isinstance(container, list) else [container]
    return any(
        isinstance(element, Mapping) and matches(expr.filter, element, case_exact=inner_exact)
        for element in elements
    )


def _lookup(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]`` with the key matched case-insensitively (RFC 7643 §2.1)."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    return next((value for key, value in obj.items() if key.lower() == lowered), None)


def _scope(obj: Mapping[str, Any], schema: str | None) -> Mapping[str, Any]:
    if schema is not None:
        extension = _lookup(obj, schema)
        if isinstance(extension, Mapping):
            return extension
    return obj


def _values(obj: Mapping[str, Any], path: AttrPath) -> list[Any]:
    """The values ``path`` designates in ``obj``, one per element of a multi-valued attribute."""
    value = _lookup(_scope(obj, path.schema), path.attr)
    out: list[Any] = []
    for item in value if isinstance(value, list) else [value]:
        if path.sub_attr is not None:
            out.append(_lookup(item, path.sub_attr) if isinstance(item, Mapping) else None)
        elif isinstance(item, Mapping) and isinstance(value, list):
            out.append(_lookup(item, "value"))
        else:
            out.append(item)
    return out


def _present(value: Any) -> bool:
    """``pr``: not null and not empty (RFC 7644 §3.4.2.2; RFC 7643 §2.5)."""
    return value is not None and value != "" and value != [] and value != {}


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _compare(actual: Any, op: str, expected: CompValue, folded: bool) -> bool:
    """One attribute value against one filter value, by the type of the values."""
    if actual is None:
        return False
    if isinstance(actual, bool) or isinstance(expected, bool):
        if op in ORDER_OPS:
            raise InvalidFilter(f"operator {op!r} is not defined for booleans")
        left, right = _as_bool(actual), _as_bool(expected)
        return op == "eq" and left is not None and left == right
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return _order(actual, op, expected) if op in ORDER_OPS else op == "eq" and actual == expected
    text: str | None = actual.isoformat() if isinstance(actual, datetime) else actual
    if not isinstance(text, str) or not isinstance(expected, str):
        return False
    when, expected_when = parse_datetime(text), parse_datetime(expected)
    if when is not None and expected_when is not None and op not in ("co", "sw", "ew"):
        return _order(when, op, expected_when) if op in ORDER_OPS else when == expected_when
    if folded:
        text, expected = text.lower(), expected.lower()
    if op == "eq":
        return text == expected
    if op == "co":
        return expected in text
    if op == "sw":
        return text.startswith(expected)
    if op == "ew":
        return text.endswith(expected)
    return _order(text, op, expected)


def _order(left: Any, op: str, right: Any) -> bool:
    if op == "gt":
        return bool(left > right)
    if op == "ge":
        return bool(left >= right)
    if op == "lt":
        return bool(left < right)
    return bool(left <= right)
