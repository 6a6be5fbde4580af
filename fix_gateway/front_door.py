"""The front door: the gateway's listening socket. A connection reaches QuickFIX only once its
first message is a Logon whose password checks out.

QuickFIX handles a Logon's ResetSeqNumFlag and MsgSeqNum before its application sees the
password, so an unauthenticated peer could reset an account's session (its stored reports
with it), use up its outbound sequence numbers or learn the MsgSeqNum it expects. So the door
reads the first message itself (framing, BodyLength and CheckSum checked, at most
``MAX_LOGON_BYTES``), checks the CompIDs, Username and Password, and only then opens a
connection to the QuickFIX acceptor (on a loopback port of its own), hands it the Logon as
received and copies bytes both ways until either side closes. A peer refused for its password
gets a Logout of its own numbering (MsgSeqNum 1) saying why, and the connection is closed:
nothing about the session changes and nothing about it is told. A Logon to or from a CompID
the gateway does not know is closed without a word, as QuickFIX does: the answer would name
the service's CompID.

Unauthenticated peers hold nothing for long, and cannot keep others out: at most
``max_unauthenticated`` of them at once and ``max_unauthenticated_per_address`` from one
address, each for at most ``logon_timeout_s``; a connection beyond a bound makes room by
closing the oldest one still without a Logon (of its address, or of all), so a client that
sends its Logon at once gets in while idle connections are held open. Failed logons are counted
per account and source address (one desk's typo does not lock out its neighbours behind the
same address) and per account, and past a limit within the window a logon is refused without
its password being checked. The door runs on a thread and event loop of its own, so neither
the copying nor the password check (scrypt, on a worker thread) waits for the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from fix_gateway.tags import (
    MSG_SEQ_NUM,
    MSG_TYPE,
    PASSWORD,
    SENDER_COMP_ID,
    SENDING_TIME,
    TARGET_COMP_ID,
    TEXT,
    USERNAME,
)
from fix_gateway.wire import SOH, utc_timestamp

log = structlog.get_logger(__name__)

Authenticate = Callable[[str, str, str | None, str | None], str | None]
"""(our CompID, the client's, Username, Password) -> None to let in, else why not
(``UNKNOWN_COMP_ID``: closed without a word)."""

UNKNOWN_COMP_ID = "unknown CompID"

BEGIN_STRING = b"8=FIX.4.4\x01"
MAX_LOGON_BYTES = 4096
_BODY_LENGTH = re.compile(rb"9=(\d{1,5})\x01")
_CHECKSUM = re.compile(rb"10=(\d{3})\x01")
COPY_BYTES = 65536
MAX_KEYS = 4096


@dataclass(frozen=True, slots=True)
class DoorSettings:
    logon_timeout_s: float = 5.0
    """How long a new connection may take to send a Logon."""
    max_unauthenticated: int = 32
    """Connections not yet logged on, at most; a new one closes the oldest of them."""
    max_unauthenticated_per_address: int = 4
    """From one address, at most; a new one closes that address's oldest."""
    failed_logons_per_account_and_address: int = 5
    failed_logons_per_comp_id: int = 10
    failure_window_s: float = 60.0
    """Failed logons counted over this window; past a limit, logons are refused unchecked."""


class Refused(Exception):
    """The first message cannot be a Logon we accept; the text says why."""


class FrontDoor:
    def __init__(self, host: str, port: int, comp_ids: tuple[str, ...], upstream_port: int,
                 authenticate: Authenticate, settings: DoorSettings,
                 passed: Callable[[], None] = lambda: None) -> None:
        """``comp_ids``: ours, the main one first (a session's TargetCompID must be one).
        ``passed`` is called (on the door's thread) whenever the door has written to QuickFIX,
        opened or closed a connection to it: QuickFIX's thread polls then."""
        self.host, self.port, self.comp_ids = host, port, comp_ids
        self.upstream_port = upstream_port
        self.authenticate = authenticate
        self.settings = settings
        self.passed = passed
        self._failures = Failures(settings.failure_window_s)
        self._waiting: dict[asyncio.Task[None], str] = {}
        """The connections without a Logon let in yet, oldest first, with their address."""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._error: BaseException | None = None
        self._connections: set[asyncio.Task[None]] = set()

    # --- life cycle (from the gateway's thread) ----------------------------------------------

    def start(self) -> None:
        """Listen on (host, port) and serve on the door's own thread; raise if it cannot."""
        self._thread = threading.Thread(target=self._run, name="fix-front-door", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        log.info("fix front door listening", host=self.host, port=self.port)

    def stop(self) -> None:
        if self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._thread = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(asyncio.start_server(
                self._serve, self.host, self.port, limit=MAX_LOGON_BYTES))
        except OSError as error:
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    # --- one connection ----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = str((writer.get_extra_info("peername") or ("?",))[0])
        try:
            upstream = await self._admit(reader, writer, peer)
            if upstream is not None:
                await _copy_both_ways(reader, writer, *upstream, self.passed)
        except (OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # only ``_close`` cancels a connection: ending it here, not raising, keeps asyncio's
            # stream callback from logging the cancellation as an error
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    @property
    def unauthenticated(self) -> int:
        return len(self._waiting)

    def _make_room(self, peer: str) -> None:
        """Close the oldest connection without a Logon of ``peer``'s, or of all, if a bound
        is reached."""
        mine = [t for t, p in self._waiting.items() if p == peer]
        oldest = (mine[0] if len(mine) >= self.settings.max_unauthenticated_per_address
                  else next(iter(self._waiting))
                  if len(self._waiting) >= self.settings.max_unauthenticated else None)
        if oldest is not None:
            log.warning("fix connection closed: too many not logged on, the oldest goes",
                        peer=self._waiting.pop(oldest))
            oldest.cancel()

    async def _admit(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     peer: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The connection to QuickFIX, the Logon handed over; None when refused."""
        task = asyncio.current_task()
        assert task is not None
        self._make_room(peer)
        self._waiting[task] = peer
        try:
            logon = await asyncio.wait_for(read_message(reader),
                                           self.settings.logon_timeout_s)
            fields = dict(message_fields(logon))
            await self._check(fields, peer)
        except TimeoutError:
            log.info("fix connection closed: no logon in time", peer=peer)
            return None
        except (Refused, ValueError, asyncio.LimitOverrunError) as error:
            log.info("fix connection closed: not a logon", peer=peer, reason=str(error))
            return None
        except Unknown as unknown:
            log.warning("fix logon from or to an unknown CompID: closed", peer=peer,
                        reason=str(unknown))
            return None
        except LogonRefused as refusal:
            log.warning("fix logon refused", peer=peer, comp_id=refusal.comp_id,
                        reason=refusal.reason)
            writer.write(logout(refusal.ours, refusal.comp_id, refusal.reason))
            with contextlib.suppress(OSError):
                await writer.drain()
            return None
        finally:
            self._waiting.pop(task, None)
        upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        upstream[1].write(logon)
        self.passed()
        log.info("fix logon admitted", peer=peer, comp_id=fields.get(SENDER_COMP_ID))
        return upstream

    async def _check(self, fields: dict[int, str], peer: str) -> None:
        """Raise ``LogonRefused`` unless this Logon may reach QuickFIX."""
        if fields.get(MSG_TYPE) != "A":
            raise Refused("the first message must be a Logon (35=A)")
        client, ours = fields.get(SENDER_COMP_ID, ""), fields.get(TARGET_COMP_ID, "")
        if ours not in self.comp_ids:
            raise Unknown("TargetCompID(56) is not the gateway's")
        now = time.monotonic()
        at_address = ("account at address", f"{client}@{peer}")
        wait = max(self._failures.wait(at_address, now,
                                       self.settings.failed_logons_per_account_and_address),
                   self._failures.wait(("comp_id", client), now,
                                       self.settings.failed_logons_per_comp_id))
        if wait > 0:
            raise LogonRefused(ours, client,
                               f"too many failed logons; try again in {wait:.0f} s")
        reason = await asyncio.to_thread(self.authenticate, ours, client, fields.get(USERNAME),
                                         fields.get(PASSWORD))
        if reason == UNKNOWN_COMP_ID:
            raise Unknown("SenderCompID(49) is no account's")
        if reason is not None:
            self._failures.add(at_address, now)
            self._failures.add(("comp_id", client), now)
            raise LogonRefused(ours, client, reason)


class Unknown(Exception):
    """A Logon to or from a CompID the gateway does not know: closed without an answer."""


class LogonRefused(Exception):
    def __init__(self, ours: str, comp_id: str, reason: str) -> None:
        super().__init__(reason)
        self.ours, self.comp_id, self.reason = ours, comp_id, reason


class Failures:
    """Failed logons per key over a sliding window."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._times: dict[tuple[str, str], deque[float]] = {}

    def add(self, key: tuple[str, str], now: float) -> None:
        if len(self._times) >= MAX_KEYS:  # many addresses or CompIDs: forget the stale ones
            for stale in [k for k, t in self._times.items() if t[-1] <= now - self.window_s]:
                del self._times[stale]
        self._times.setdefault(key, deque()).append(now)

    def wait(self, key: tuple[str, str], now: float, limit: int) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        times = self._times.get(key)
        if times is None:
            return 0.0
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._times[key]
            return 0.0
        return times[-limit] + self.window_s - now if len(times) >= limit else 0.0


# --- framing ------------------------------------------------------------------------------------


async def read_message(reader: asyncio.StreamReader) -> bytes:
    """One whole FIX 4.4 message as sent: BeginString, BodyLength, body and a CheckSum that
    adds up; at most ``MAX_LOGON_BYTES``."""
    begin = await reader.readexactly(len(BEGIN_STRING))
    if begin != BEGIN_STRING:
        raise Refused("not FIX.4.4")
    length_field = await reader.readuntil(b"\x01")
    length = _BODY_LENGTH.fullmatch(length_field)
    if length is None or int(length[1]) > MAX_LOGON_BYTES:
        raise Refused("BodyLength(9) missing or too large")
    body = await reader.readexactly(int(length[1]))
    trailer = await reader.readexactly(7)
    checksum = _CHECKSUM.fullmatch(trailer)
    message = begin + length_field + body
    if checksum is None or int(checksum[1]) != sum(message) % 256:
        raise Refused("CheckSum(10) missing or wrong")
    return message + trailer


def message_fields(message: bytes) -> list[tuple[int, str]]:
    """The fields of a framed message; values that are not ASCII are refused."""
    fields = []
    for pair in message.split(b"\x01")[:-1]:
        tag, sep, value = pair.partition(b"=")
        if not sep or not tag.isdigit():
            raise Refused("a field is not tag=value")
        fields.append((int(tag), value.decode("ascii")))
    return fields


def logout(sender: str, target: str, text: str) -> bytes:
    """A Logout of the door's own numbering: it tells nothing about the session."""
    body = SOH.join(f"{t}={v}" for t, v in (
        (MSG_TYPE, "5"), (MSG_SEQ_NUM, "1"), (SENDER_COMP_ID, sender), (TARGET_COMP_ID, target),
        (SENDING_TIME, utc_timestamp(time.time_ns() // 1_000_000)), (TEXT, text))) + SOH
    head = f"8=FIX.4.4{SOH}9={len(body)}{SOH}".encode()
    message = head + body.encode()
    return message + f"10={sum(message) % 256:03d}{SOH}".encode()


async def _copy_both_ways(client_reader: asyncio.StreamReader,
                          client_writer: asyncio.StreamWriter,
                          upstream_reader: asyncio.StreamReader,
                          upstream_writer: asyncio.StreamWriter,
                          passed: Callable[[], None]) -> None:
    """Until either side closes; then both are closed."""
    copies = [asyncio.create_task(_copy(client_reader, upstream_writer, passed)),
              asyncio.create_task(_copy(upstream_reader, client_writer))]
    try:
        await asyncio.wait(copies, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for copy in copies:
            copy.cancel()
        upstream_writer.close()
        client_writer.close()
        await asyncio.gather(*copies, return_exceptions=True)
        passed()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                passed: Callable[[], None] = lambda: None) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(COPY_BYTES):
            writer.write(data)
            passed()
            await writer.drain()
