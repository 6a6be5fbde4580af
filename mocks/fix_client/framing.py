"""Framing a FIX byte stream by BodyLength(9), checking CheckSum(10): simplefix does neither."""

from __future__ import annotations

import simplefix
import structlog
from simplefix.errors import ParsingError

log = structlog.get_logger(__name__)

_TRAILER = len(b"10=000\x01")


class Framer:
    """Cuts a byte stream into messages by BodyLength(9) and drops any with a bad CheckSum(10).

    simplefix frames on the ``10=`` tag and checks neither, so a garbled message could swallow
    the next one; here a frame that does not add up is skipped to the next BeginString.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.dropped = 0    # pieces discarded: bad checksums, garbled frames, stray bytes

    def feed(self, data: bytes) -> list[simplefix.FixMessage]:
        self._buf += data
        messages, pos = [], 0
        while (frame := self._next_frame(pos)) is not None:
            pos, raw = frame
            if (message := _parse(raw)) is None:
                self.dropped += 1
            else:
                messages.append(message)
        del self._buf[:pos]
        return messages

    def _next_frame(self, pos: int) -> tuple[int, bytes | None] | None:
        """(where the next frame starts, this one or None if garbled), or None: need more."""
        buf = self._buf
        start = buf.find(b"8=FIX", pos)
        if start != pos:    # stray bytes: skip them, keeping a tail that may begin a message
            skip_to = start if start > 0 else len(buf) - 4
            return (skip_to, None) if skip_to > pos else None
        length_at = buf.find(b"\x019=", start, start + 20) + 3
        length_end = buf.find(b"\x01", length_at, length_at + 12) if length_at > 2 else -1
        if length_end < 0 or not buf[length_at:length_end].isdigit():
            return None if len(buf) - start < 32 else (start + 1, None)
        end = length_end + 1 + int(buf[length_at:length_end])
        # a BeginString inside the body means BodyLength is wrong (only a binary data field
        # could hold one): resynchronise there rather than wait for bytes that never come
        if (inner := buf.find(b"\x018=FIX", length_end, end)) >= 0:
            return inner + 1, None
        if len(buf) < end + _TRAILER:
            return None
        trailer = buf[end:end + _TRAILER]
        if trailer[:3] != b"10=" or trailer[-1:] != b"\x01" or not trailer[3:6].isdigit():
            return start + 1, None                  # BodyLength too short: resynchronise
        if sum(buf[start:end]) % 256 != int(trailer[3:6]):
            log.warning("fix_client.bad_checksum", received=trailer[3:6].decode())
            return end + _TRAILER, None
        return end + _TRAILER, bytes(buf[start:end + _TRAILER])


def _parse(raw: bytes | None) -> simplefix.FixMessage | None:
    if raw is None:
        return None
    parser = simplefix.FixParser()
    parser.append_buffer(raw)
    try:
        message: simplefix.FixMessage | None = parser.get_message()
    except (ParsingError, ValueError):      # e.g. a tag that is not a number, an empty value
        log.warning("fix_client.unparsable", raw=raw[:200])
        return None
    if message is None or message.get(35) is None or not (message.get(34) or b"").isdigit():
        return None
    return message
