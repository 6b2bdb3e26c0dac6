"""What both HTTP apps accept as input: strict JSON bodies, text the database can store, integers its columns hold.

Nova's limits (``nova/api/validation/parameter_types.py``): names are 1-255 printable characters without
leading or trailing whitespace; integers stored in an ``INTEGER`` column are at most ``0x7FFFFFFF``.
Beyond Nova, no string may hold NUL or a lone UTF-16 surrogate anywhere: PostgreSQL cannot store the
first, and the second is not text (neither can be encoded as UTF-8).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

import msgspec
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

#: Largest value of a 32-bit signed ``INTEGER`` column (Nova's ``nova.db.constants.MAX_INT``).
MAX_INT = 0x7FFFFFFF
#: Deepest nesting of arrays and objects a request body may have (Nova's bodies need 4).
MAX_DEPTH = 32

_LONE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE_PAIR = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_NOT_A_NUMBER = re.compile(rb"(?<![\"\w])-?(NaN|Infinity)(?![\"\w])")
_decode = msgspec.json.Decoder()


def body_problem(raw: bytes) -> str | None:
    """Why ``raw`` is not a JSON body the services accept, or None when it is one.

    Strict JSON (RFC 8259): no ``NaN``/``Infinity``, no number beyond a double's range, no lone
    surrogate escapes, and at most :data:`MAX_DEPTH` levels of nesting.
    """
    try:
        value = _decode.decode(raw)
    except RecursionError:
        return f"the body is nested too deeply (at most {MAX_DEPTH} levels of arrays and objects)"
    except msgspec.ValidationError as exc:  # msgspec's word for a number out of a double's range
        return f"the body holds a number JSON cannot carry ({exc}): use an integer or a finite decimal"
    except msgspec.DecodeError as exc:
        if _NOT_A_NUMBER.search(raw):
            return "the body holds NaN or Infinity, which are not JSON numbers"
        if _has_lone_surrogate(raw):
            return "a string in the body holds a lone UTF-16 surrogate (\\ud800-\\udfff without its pair): not text"
        return f"the body is not valid JSON ({exc})"
    if _depth_over(value, MAX_DEPTH):
        return f"the body is nested too deeply (at most {MAX_DEPTH} levels of arrays and objects)"
    return None


def _has_lone_surrogate(raw: bytes) -> bool:
    return bool(_LONE_SURROGATE.search(_SURROGATE_PAIR.sub(b"", raw)))


def _depth_over(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


# --- text ------------------------------------------------------------------------------------------------


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def storable(text: str) -> str:
    """``text``, unless it holds NUL or a lone surrogate (ValueError naming the first one and where)."""
    for i, char in enumerate(text):
        if char == "\0" or "\ud800" <= char <= "\udfff":
            raise ValueError(f"character {i + 1} is {_describe(char)}, which cannot be stored")
    return text


def printable(text: str) -> str:
    """``text``, unless it holds a character Nova does not call printable (control, format, surrogate,
    private-use or unassigned characters, line and paragraph separators)."""
    storable(text)
    for i, char in enumerate(text):
        category = unicodedata.category(char)
        if category[0] == "C" or category in ("Zl", "Zp"):
            raise ValueError(f"character {i + 1} is {_describe(char)}, which is not printable")
    return text


def nova_name(text: str) -> str:
    """A name as Nova takes it: printable, and neither starting nor ending with whitespace."""
    printable(text)
    if text != text.strip():
        raise ValueError("a name must not start or end with whitespace")
    return text


def strict_int(value: Any) -> Any:
    """An integer, or a string of digits (as Nova's schemas allow); never a boolean or a fraction."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, float):
        raise ValueError(f"{value!r} is not an integer")
    raise ValueError("must be an integer")


#: A string of at most 255 characters that the database can store.
Text = Annotated[str, StringConstraints(max_length=255), AfterValidator(storable)]
#: At most 255 printable characters (Nova's descriptions).
Printable = Annotated[str, StringConstraints(max_length=255), AfterValidator(printable)]
#: Nova's ``name``: 1-255 printable characters without leading or trailing whitespace.
NovaName = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(nova_name)]
#: A host name (Nova's ``fqdn``): letters, digits, ``-``, ``.`` and ``_``, 1-255 of them.
Fqdn = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9-._]*$")]
#: A metadata key (Nova's pattern) and value.
MetaKey = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9-_:. ]{1,255}$")]
MetaValue = Text
#: An instance tag (Nova's: 1-60 characters, no ``,`` or ``/``).
Tag = Annotated[str, StringConstraints(min_length=1, max_length=60, pattern=r"^[^,/]*$"), AfterValidator(printable)]
#: A project or user id (Nova's pattern).
ProjectId = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9-]*$")]


def count(low: int, high: int = MAX_INT) -> Any:
    """An integer in ``[low, high]``, or a string of its digits; booleans and fractions refused."""
    return Annotated[int, BeforeValidator(strict_int), Field(ge=low, le=high)]
