"""What the data dictionary (``spec/FIX44-gw.xml``) says of fields: their names, for texts
people read, and our user-defined fields' numbers (the dictionary is their one source)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from functools import cache
from pathlib import Path

DICTIONARY = Path(__file__).with_name("spec") / "FIX44-gw.xml"
"""The gateway's data dictionary: QuickFIX's FIX44 with our user-defined fields."""


@cache
def _names() -> dict[int, str]:
    fields = ElementTree.parse(DICTIONARY).getroot().find("fields")
    assert fields is not None, f"{DICTIONARY} has no <fields>"
    return {int(f.attrib["number"]): f.attrib["name"] for f in fields}


def dictionary_field(name: str) -> int:
    """The number of the field called ``name`` in the data dictionary."""
    numbers = {n: number for number, n in _names().items()}
    if name not in numbers:
        raise KeyError(f"{DICTIONARY} has no field {name}")
    return numbers[name]


def field_name(tag: int) -> str:
    """``ClOrdID(11)``: the field's name and number, as reject texts name fields."""
    return f"{_names().get(tag, 'Tag')}({tag})"
