"""Reading configuration: JSON, TOML or YAML documents with numbers as exact decimals, and
their fields, each failure a ``ConfigError`` whose message starts with the key at fault
(deployment files, scenarios, the mock exchange's market files)."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from solver.config.index_files import decimal, positive


class ConfigError(ValueError):
    """Configuration that cannot be used; the message names the file or the key at fault."""


def expect_table(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a table of keys")
    return value


def expect_list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{key}: expected a list")
    return value


def reject_unknown(table: Mapping[str, Any], allowed: set[str], key: str) -> None:
    for name in table:
        if name not in allowed:
            raise ConfigError(f"{key}.{name}: unknown key (known: {', '.join(sorted(allowed))})")


def expect_text(value: Any, key: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: required text")
    return value


def failure(key: str) -> Callable[[str], ConfigError]:
    return lambda problem: ConfigError(f"{key}: {problem}")


def expect_number(value: Any, key: str, minimum: Decimal | None = None,
            positive_only: bool = False) -> Decimal:
    """A number within the door's bound (below 1E+24, at most 18 decimals: ``to_decimal``)."""
    if value is None:
        raise ConfigError(f"{key}: required")
    number = positive(value, failure(key)) if positive_only else decimal(value, failure(key))
    if minimum is not None and number < minimum:
        raise ConfigError(f"{key}: must not be below {minimum}")
    return number


def expect_whole(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{key}: must be a whole number from {low} to {high}")
    return value


def read_file(path: Path) -> Mapping[str, Any]:
    """A JSON, TOML or YAML file as a table, numbers as exact decimals."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror}") from None
    return read_document(text, path.suffix.lower(), str(path))


def read_document(text: str, suffix: str, name: str) -> Mapping[str, Any]:
    try:
        if suffix == ".json":
            data = json.loads(text, parse_float=Decimal)
        elif suffix == ".toml":
            data = tomllib.loads(text, parse_float=Decimal)
        elif suffix in (".yaml", ".yml"):
            data = yaml.load(text, Loader=_DecimalLoader)
        else:
            raise ConfigError(f"{name}: expected a .json, .toml or .yaml file")
    except (ValueError, yaml.YAMLError) as error:  # ValueError: the decode errors, and ints
        # longer than Python converts
        raise ConfigError(f"{name}: not valid {suffix[1:]}: {error}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{name}: expected a table of keys at the top")
    return data


class _DecimalLoader(yaml.SafeLoader):
    """YAML's floats as exact decimals, as written."""


_SPECIAL_FLOATS = {".inf": "Infinity", "+.inf": "Infinity", "-.inf": "-Infinity", ".nan": "NaN"}


def _exact_float(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal | str:
    """.inf and .nan become Decimal's own, and what Decimal cannot read (YAML 1.1's 1:30.5)
    stays text: either way the field's reader refuses it, naming the key."""
    assert isinstance(node, yaml.ScalarNode)
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        return Decimal(_SPECIAL_FLOATS.get(text.lower(), text))
    except InvalidOperation:
        return text


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _exact_float)
