"""FIX messages as plain data on the asyncio side: the received text split into fields, and
replies as a message type plus ordered fields, turned into QuickFIX messages only to be sent.

Numbers leave as plain decimals (never exponents, never floats); prices are rounded to
``PRICE_DECIMALS`` at this boundary and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from fix_gateway.tags import (
    MSG_SEQ_NUM,
    MSG_TYPE,
)
from solver.core.money import amount_problem, plain

SOH = "\x01"
PRICE_DECIMALS = 10
_PRICE_STEP = Decimal(1).scaleb(-PRICE_DECIMALS)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

# The door's bound (below 1E+24, at most 18 decimals) takes 44 characters at most with a sign;
# the rest leaves room for zeros a client pads with, and none for text the engine never needs.
MAX_NUMBER_LENGTH = 64


MAX_FIELD_LENGTH = 256
"""No field we read needs more; ids have their own, tighter bounds."""


@dataclass(frozen=True, slots=True)
class Received:
    """A received application message: its fields in order, the session it came on, and its
    number in the inbound log."""

    session: str
    fields: tuple[tuple[int, str], ...]
    number: int = 0

    @classmethod
    def parse(cls, session: str, text: str, number: int = 0) -> Received:
        fields = []
        for pair in text.split(SOH):
            tag, sep, value = pair.partition("=")
            if sep and tag.isdigit():
                fields.append((int(tag), value))
        return cls(session, tuple(fields), number)

    def get(self, tag: int) -> str | None:
        """The first value of ``tag`` (in a repeating group: its first entry's)."""
        return next((v for t, v in self.fields if t == tag), None)

    def has(self, tag: int) -> bool:
        return any(t == tag for t, _ in self.fields)

    @property
    def msg_type(self) -> str:
        return self.get(MSG_TYPE) or ""

    def bad_field(self) -> tuple[int, str] | None:
        """The first field we cannot keep, and why: longer than ``MAX_FIELD_LENGTH``, or
        not printable ASCII (FIX's String fields are ASCII; bytes that were not UTF-8 arrive
        as lone surrogates, which nothing downstream could store or send)."""
        for tag, value in self.fields:
            if len(value) > MAX_FIELD_LENGTH:
                return tag, f"is longer than {MAX_FIELD_LENGTH} characters"
            if not (value.isascii() and value.isprintable()):
                return tag, "must be printable ASCII"
        return None

    def clean(self, tag: int) -> str | None:
        """The value of ``tag`` if it is fit to send back, else None."""
        value = self.get(tag)
        ok = value is not None and len(value) <= MAX_FIELD_LENGTH and value.isascii() \
            and value.isprintable()
        return value if ok else None

    @property
    def seq_num(self) -> str:
        return self.get(MSG_SEQ_NUM) or "0"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send: MsgType and body fields, in order; QuickFIX makes the header, but
    for the ``header`` fields given (the test profile's PossResend)."""

    msg_type: str
    fields: tuple[tuple[int, str], ...]
    header: tuple[tuple[int, str], ...] = ()

    def get(self, tag: int) -> str | None:
        return next((v for t, v in self.fields if t == tag), None)


def amount(value: Decimal) -> str:
    return plain(value)


def price(value: Decimal) -> str:
    return plain(value.quantize(_PRICE_STEP, rounding=ROUND_HALF_EVEN))


def decimal_field(text: str | None) -> Decimal | None:
    """A plain decimal number as FIX writes it, or None if it is not one (no exponents) or is
    longer than ``MAX_NUMBER_LENGTH``."""
    if text is None or not text or len(text) > MAX_NUMBER_LENGTH \
            or any(c not in "0123456789.-" for c in text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def amount_field(name: str, text: str) -> Decimal | str:
    """The number in field ``name`` (e.g. ``CashOrderQty(152)``) within the door's bound
    (``money.amount_problem``), or why not, naming the field."""
    if len(text) > MAX_NUMBER_LENGTH:
        return f"{name} is longer than {MAX_NUMBER_LENGTH} characters"
    number = decimal_field(text)
    if number is None:
        return f"{name}={text} is not a plain decimal number"
    problem = amount_problem(number)
    return number if problem is None else f"{name} {problem}"


def utc_timestamp(ms: int) -> str:
    """FIX UTCTimestamp with milliseconds."""
    moment = _EPOCH + ms * _MS
    return moment.strftime("%Y%m%d-%H:%M:%S.") + f"{ms % 1000:03d}"


def parse_utc_timestamp(text: str) -> int | None:
    """Unix milliseconds of a FIX UTCTimestamp (seconds or milliseconds), or None."""
    for layout in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            moment = datetime.strptime(text, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
        return unix_ms(moment)
    return None


def unix_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch, without passing through a float."""
    return (moment - _EPOCH) // _MS


Replies = tuple[Outgoing, ...]
"""What the gateway answers a message with, in order (nothing: an empty tuple)."""
