"""Inputs, events and configuration as plain JSON data, and back, exactly.

Every domain record is a dataclass, so one codec serves them all: a record becomes an object of
its fields, tagged with its type name when it stands for a family (an input or an event);
``Decimal`` becomes its string (never a float), an enum its value, a tuple a list. Decoding is
driven by the dataclasses' own type hints, so a new field needs no codec change.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

from solver.core import commands, events

T = TypeVar("T")
TYPE_KEY = "type"

Plain = dict[str, Any]


class CodecError(ValueError):
    """Data that does not decode to the record it claims to be."""


def _family(base: type[Any], module: types.ModuleType) -> dict[str, type[Any]]:
    return {name: kind for name, kind in vars(module).items()
            if isinstance(kind, type) and issubclass(kind, base) and kind is not base
            and dataclasses.is_dataclass(kind)}


INPUTS = _family(commands.Input, commands)
EVENTS = _family(events.Event, events)


# --- encoding --------------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """Plain JSON-ready data for a record, a Decimal, an enum, a tuple or a scalar."""
    encoder = _ENCODERS.get(type(value))
    if encoder is None:
        encoder = _ENCODERS[type(value)] = _encoder_for(type(value))
    return encoder(value)


Encoder = Callable[[Any], Any]
_ENCODERS: dict[type[Any], Encoder] = {}


def _encoder_for(kind: type[Any]) -> Encoder:
    """One encoder per type, found once: the journal encodes every event it stores."""
    if issubclass(kind, Decimal):
        return str
    if issubclass(kind, Enum):
        return lambda value: value.value
    if dataclasses.is_dataclass(kind):
        names = tuple(f.name for f in _fields(kind))
        return lambda value: {name: encode(getattr(value, name)) for name in names}
    if issubclass(kind, tuple | list):
        return lambda value: [encode(item) for item in value]
    if issubclass(kind, dict):
        return lambda value: {str(k): encode(v) for k, v in value.items()}
    if kind is type(None) or issubclass(kind, bool | int | str):
        return lambda value: value
    raise CodecError(f"cannot encode {kind.__name__}")


def encode_tagged(record: Any) -> Plain:
    """A record with its type name, for a family decoded by ``decode_input``/``decode_event``."""
    return {TYPE_KEY: type(record).__name__, **encode(record)}


def dumps(data: Any) -> str:
    """Compact, key-ordered JSON: equal data gives equal text (the journal checksums it)."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


# --- decoding --------------------------------------------------------------------------------


def check_input(command: commands.Input) -> None:
    """Raise ``CodecError`` unless ``command`` reads back from the journal as itself (the
    journal stores UTF-8: text that is not, such as a lone surrogate, cannot be kept)."""
    text = dumps(encode_tagged(command))
    try:
        text.encode()
    except UnicodeEncodeError:
        raise CodecError(f"{type(command).__name__} holds text that is not UTF-8") from None
    if decode_input(json.loads(text)) != command:
        raise CodecError(f"{type(command).__name__} does not survive the journal exactly")


def decode_input(data: Plain) -> commands.Input:
    return _decode_tagged(data, INPUTS, "input")  # type: ignore[no-any-return]


def decode_event(data: Plain) -> events.Event:
    return _decode_tagged(data, EVENTS, "event")  # type: ignore[no-any-return]


def _decode_tagged(data: Plain, family: dict[str, type[Any]], what: str) -> Any:
    if not isinstance(data, dict) or data.get(TYPE_KEY) not in family:
        raise CodecError(f"not a known {what}: {str(data)[:80]}")
    kind = family[data[TYPE_KEY]]
    return decode(kind, {k: v for k, v in data.items() if k != TYPE_KEY})


def decode(kind: type[T], data: Any) -> T:
    """``data`` (as ``encode`` made it) back into a ``kind``."""
    return _decode(kind, data)  # type: ignore[no-any-return]


def _decode(hint: Any, data: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _decode_union(typing.get_args(hint), data)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in _list(data))
        return tuple(_decode(a, v) for a, v in zip(args, _list(data), strict=True))
    if origin is dict:
        key, value = typing.get_args(hint)
        return {_decode(key, k): _decode(value, v) for k, v in data.items()}
    if hint is Decimal:
        if not isinstance(data, str):
            raise CodecError(f"expected a decimal string, got {data!r}")
        try:
            return Decimal(data)
        except ArithmeticError:
            raise CodecError(f"not a decimal: {data!r}") from None
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(data)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_record(hint, data)
    if isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields"):
        hints = typing.get_type_hints(hint)
        return hint(*(_decode(hints[name], value)
                      for name, value in zip(hint._fields, _list(data), strict=True)))
    if hint in (int, str, bool):
        if type(data) is not hint:
            raise CodecError(f"expected {hint.__name__}, got {data!r}")
        return data
    raise CodecError(f"cannot decode into {hint!r}")


def _decode_union(options: tuple[Any, ...], data: Any) -> Any:
    if data is None and type(None) in options:
        return None
    for option in options:
        if option is not type(None):
            try:
                return _decode(option, data)
            except (CodecError, ValueError, TypeError):
                continue
    raise CodecError(f"{data!r} matches none of {options}")


def _decode_record(kind: type[Any], data: Any) -> Any:
    if not isinstance(data, dict):
        raise CodecError(f"expected an object for {kind.__name__}, got {data!r}")
    hints = _hints(kind)
    unknown = set(data) - set(hints)
    if unknown:
        raise CodecError(f"{kind.__name__}: unknown fields {sorted(unknown)}")
    return kind(**{name: _decode(hints[name], value) for name, value in data.items()})


def _list(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise CodecError(f"expected a list, got {data!r}")
    return data


_FIELDS: dict[type[Any], tuple[dataclasses.Field[Any], ...]] = {}
_HINTS: dict[type[Any], dict[str, Any]] = {}


def _fields(kind: type[Any]) -> tuple[dataclasses.Field[Any], ...]:
    found = _FIELDS.get(kind)
    if found is None:
        found = _FIELDS[kind] = tuple(f for f in dataclasses.fields(kind) if f.init)
    return found


def _hints(kind: type[Any]) -> dict[str, Any]:
    found = _HINTS.get(kind)
    if found is None:
        hints = typing.get_type_hints(kind)
        found = _HINTS[kind] = {f.name: hints[f.name] for f in _fields(kind)}
    return found
