"""What the data dictionary (``spec/FIX44-gw.xml``) says of fields, for texts people read."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from functools import cache

from fix_gateway.config import DICTIONARY


@cache
def _names() -> dict[int, str]:
    fields = ElementTree.parse(DICTIONARY).getroot().find("fields")
    assert fields is not None, f"{DICTIONARY} has no <fields>"
    return {int(f.attrib["number"]): f.attrib["name"] for f in fields}


def field_name(tag: int) -> str:
    """``ClOrdID(11)``: the field's name and number, as reject texts name fields."""
    return f"{_names().get(tag, 'Tag')}({tag})"
