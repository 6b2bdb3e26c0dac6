"""What the request bodies of the Nova-compatible API are made of, checked as Nova 34's API schemas check them.

Each resource's module declares its bodies (subclasses of :class:`Body`) from these types. Only the fields
novawatch uses are declared; others are let through and ignored (clients send more than
novawatch honours). Limits follow ``nova/api/validation/parameter_types.py``: names of 1-255 printable
characters, integers up to ``0x7FFFFFFF`` (given as numbers or strings of digits, never booleans), host
names of letters, digits, ``-._``. A refusal names the field, the value and the rule, in Nova's words:
``Invalid input for field/attribute ram. Value: .... Input should be less than or equal to 2147483647``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from novawatch.api.common import clean
from novawatch.api.inputs import (
    MAX_INT,
    MetaKey,
    MetaValue,
    storable,
    strict_int,
)

M = TypeVar("M", bound=BaseModel)

#: A project id as Nova's schemas take it (the ``X-Project-Id`` header novawatch reads it from).
PROJECT_ID = re.compile(r"[a-zA-Z0-9-]{1,255}")


class InvalidInput(ValueError):
    """A request body that Nova's schema refuses (400), with Nova's message."""


def _nova_bool(value: Any) -> Any:
    """Nova's ``boolean``: true/false, or one of the strings oslo takes for them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in ("true", "1", "on", "yes"):
            return True
        if lowered in ("false", "0", "off", "no"):
            return False
    raise ValueError(f"{value!r} is not a boolean")


def _ref(value: Any) -> Any:
    """A reference given as a string or an integer (Nova's ``flavor_ref``), as a string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _boot_index(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit() and value.isascii():
        return int(value)
    raise ValueError(f"{value!r} is not an integer")


def blank(value: Any) -> Any:
    """"" (what older clients send for "none") is none."""
    return None if value == "" else value


Bool = Annotated[bool, BeforeValidator(_nova_bool)]
Ref = Annotated[str, BeforeValidator(_ref), StringConstraints(min_length=1, max_length=255), AfterValidator(storable)]
Positive = Annotated[int, BeforeValidator(strict_int), Field(ge=1, le=MAX_INT)]
NonNegative = Annotated[int, BeforeValidator(strict_int), Field(ge=0, le=MAX_INT)]
BootIndex = Annotated[int, BeforeValidator(_boot_index), Field(ge=-MAX_INT, le=MAX_INT)]
#: Nova's flavor id pattern (letters, digits, ``._-`` and inner spaces).
FlavorId = Annotated[str, BeforeValidator(_ref), StringConstraints(
    min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9._-]([a-zA-Z0-9. _-]*[a-zA-Z0-9._-])?$")]


#: A reason given with an action (lock, disable): 1-255 characters the database can store.
Reason = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(storable)]
#: Metadata as Nova's schemas take it (``metadata_items`` quota: at most 128 items).
Metadata = Annotated[dict[MetaKey, MetaValue], Field(max_length=128)]


class Body(BaseModel):
    """A part of a body: the declared fields are checked, the others ignored."""

    model_config = ConfigDict(extra="allow")


# --- checking ------------------------------------------------------------------------------------------------


def parse(model: type[M], data: Any, where: str = "body") -> M:
    """``data`` (the body, or its part called ``where``) checked as ``model``.

    Raises :class:`InvalidInput` with Nova's message for the first problem.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(nova_message(exc, data, where)) from None


def nova_message(exc: ValidationError, data: Any, where: str = "body") -> str:
    """Nova's wording: ``Invalid input for field/attribute FIELD. Value: VALUE. RULE``.

    FIELD is the path below ``where`` (``tags/0``), where Nova gives only its last element.
    """
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err.get("loc", ())]
    if err.get("type") == "missing" and loc:
        parent = loc[-2] if len(loc) > 1 else where
        return f"Invalid input for field/attribute {parent}. Value: {_shown(_at(data, loc[:-1]))}. " \
               f"'{loc[-1]}' is a required property"
    field = "/".join(loc) if loc else where  # e.g. block_device_mapping_v2/0/volume_size
    rule = str(err.get("msg", "invalid"))
    rule = rule.removeprefix("Value error, ")
    return f"Invalid input for field/attribute {field}. Value: {_shown(err.get('input'))}. {rule}"


def _at(data: Any, path: list[str]) -> Any:
    for key in path:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and key.isdigit() and int(key) < len(data):
            data = data[int(key)]
        else:
            return None
    return data


def _shown(value: Any) -> str:
    text = clean(str(value), 100)
    # control characters spelled out, so that the message shows what was refused
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
