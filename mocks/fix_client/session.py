"""A FIX 4.4 initiator session on simplefix and asyncio (reference fix-gateway.md §7.3).

Logon (Username/Password, optional ResetSeqNumFlag), seqnums persisted atomically after every
change, BodyLength/CheckSum framing, ResendRequest on a gap (the PossDup resends are delivered in
order), GapFill for the peer's ResendRequests (no application message is ever resent), Heartbeat,
TestRequest and Logout handling, heartbeat timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import simplefix
import structlog

from mocks.fix_client.framing import Framer

log = structlog.get_logger(__name__)

READ_SIZE = 65536
_OPTIONAL_HEADER_TAGS = frozenset((50, 57, 97, 115, 116, 128, 129, 142, 143, 144, 145, 369))
_NOT_HELD = frozenset((b"2", b"4"))
_ADMIN = frozenset((b"0", b"1", b"2", b"3", b"4", b"5", b"A"))


@dataclass(frozen=True, slots=True)
class SessionConfig:
    host: str
    port: int
    sender_comp_id: str
    target_comp_id: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    heartbeat_s: int = 30
    store_dir: Path | None = None
    reset_seq_num: bool = False


class LogonRefused(Exception):
    """The peer answered our Logon with a Logout (``text`` is its Text(58)) or went away."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class FixClient:
    """One FIX session; ``connect`` may be called again after a close and the seqnums go on.

    ``received`` keeps every application message in arrival order (PossDup resends included);
    ``next_message`` hands each out once. ``admin_counts`` counts admin messages by MsgType.
    """

    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self.received: list[simplefix.FixMessage] = []
        self.session_rejects: list[simplefix.FixMessage] = []
        self.admin_counts: Counter[str] = Counter()
        self.logged_on = False
        self.close_reason: str | None = None
        self._path = (None if config.store_dir is None else config.store_dir
                      / f"{config.sender_comp_id}-{config.target_comp_id}.seqnums")
        self._next_out, self._next_in = self._load()
        self._queue: asyncio.Queue[simplefix.FixMessage] = asyncio.Queue()
        self._closed = asyncio.Event()
        self._closed.set()
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._logon: asyncio.Future[None] | None = None
        self._echoes: dict[str, asyncio.Future[None]] = {}
        self._held_echoes: list[tuple[int, str]] = []   # Heartbeats answering us, beyond a gap
        self._gap_until = 0                             # highest seqnum seen beyond a gap
        self._held: set[int] = set()  # seqnums sent on this connection that the peer keeps
        self._logout_sent = self._peer_logged_out = self._probed = False
        self._last_sent = self._last_received = 0.0
        self._ids = itertools.count(1)

    @property
    def next_out(self) -> int:
        return self._next_out

    @property
    def next_in(self) -> int:
        return self._next_in

    def _load(self) -> tuple[int, int]:
        if self._path is None or not self._path.exists():
            return 1, 1
        out, _, in_ = self._path.read_text().partition(":")
        return int(out), int(in_)

    def _set_seqnums(self, out: int | None = None, in_: int | None = None) -> None:
        """Change and persist at once: nothing may await between a change and its write."""
        self._next_out = self._next_out if out is None else out
        self._next_in = self._next_in if in_ is None else in_
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(f"{self._next_out} : {self._next_in}\n")
            os.replace(tmp, self._path)     # atomic: a crash leaves the old or the new pair
        if self._held_echoes:               # the gap before them is filled: they count now
            ready = [r for s, r in self._held_echoes if s < self._next_in]
            self._held_echoes = [(s, r) for s, r in self._held_echoes if s >= self._next_in]
            for req_id in ready:
                self._resolve_echo(req_id)

    # -- the public operations ---------------------------------------------------------------

    async def connect(self, timeout: float = 5.0) -> None:
        """TCP connect and Logon; returns once the peer's Logon arrived.

        Raises LogonRefused (the peer's Logout text or "connection closed"), TimeoutError, or
        OSError when the TCP connection fails.
        """
        if not self._closed.is_set():
            raise RuntimeError("already connected")
        cfg, loop = self.config, asyncio.get_running_loop()
        reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(cfg.host, cfg.port), timeout)
        self._closed.clear()
        self.close_reason, self._gap_until = None, 0
        self._logout_sent = self._peer_logged_out = self._probed = False
        self._last_sent = self._last_received = loop.time()
        self._logon = loop.create_future()
        if cfg.reset_seq_num:
            self._set_seqnums(1, 1)
        self._tasks = [asyncio.create_task(self._read(reader))]
        self._held = set()
        logon_seq = self._send_now(_body(b"A", (98, 0), (108, cfg.heartbeat_s),
                                               (141, "Y" if cfg.reset_seq_num else None),
                                               (553, cfg.username), (554, cfg.password)))
        log.info("fix_client.logon_sent", sender=cfg.sender_comp_id, seq=logon_seq)
        try:
            await asyncio.wait_for(asyncio.shield(self._logon), timeout)
        except TimeoutError:
            self._close("logon timeout")
            raise

    async def send(self, body: simplefix.FixMessage, poss_dup: bool = False) -> int:
        """Send an application message (MsgType in ``body``); returns its MsgSeqNum.
        ``poss_dup``: mark it PossDupFlag(43)=Y, a copy of one that may have arrived."""
        seq = self._send_now(body, poss_dup)
        await self._connected().drain()
        return seq

    async def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (garbled-message tests); seqnums are not touched."""
        self._connected().write(data)
        await self._connected().drain()

    async def next_message(self, timeout: float = 5.0) -> simplefix.FixMessage:
        """The next application message in sequence order; TimeoutError if none in time."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def test_request(self, timeout: float = 5.0) -> None:
        """Barrier: when its echo arrives, all the peer sent before has been processed."""
        req_id = f"TR-{next(self._ids)}-{datetime.now(UTC):%H%M%S%f}"
        self._echoes[req_id] = echo = asyncio.get_running_loop().create_future()
        try:
            self._send_now(_body(b"1", (112, req_id)))
            await asyncio.wait_for(echo, timeout)
        finally:
            del self._echoes[req_id]

    async def logout(self, text: str = "", timeout: float = 5.0) -> bool:
        """Logout, wait up to ``timeout`` for the peer's Logout, close; True if it answered."""
        if self._closed.is_set():
            return False
        self._logout_sent = True
        self._send_now(_body(b"5", (58, text or None)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout)
        self._close("logout timeout")
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(ConnectionError, OSError):
            await self._connected(closing_ok=True).wait_closed()
        return self._peer_logged_out

    def drop(self) -> None:
        """Abort the connection without a Logout, as a crash would; seqnums stay stored."""
        if self._writer is not None:
            self._writer.transport.abort()
        self._close("dropped")

    async def closed(self) -> str | None:
        """Wait for the session to end; why it ended (the peer's Logout text, "logout",
        "dropped", "connection closed", ...), or None if it never connected."""
        await self._closed.wait()
        return self.close_reason

    # -- sending -----------------------------------------------------------------------------

    def _connected(self, closing_ok: bool = False) -> asyncio.StreamWriter:
        if self._writer is None or (self._writer.is_closing() and not closing_ok):
            raise ConnectionError(f"not connected ({self.close_reason})")
        return self._writer

    def _send_now(self, body: simplefix.FixMessage, poss_dup: bool = False) -> int:
        """Take the next MsgSeqNum and persist it before writing: a crash burns a number
        (the peer asks, we gap-fill) but never reuses one (fatal "MsgSeqNum too low")."""
        writer, seq = self._connected(), self._next_out
        self._set_seqnums(out=seq + 1)
        if body.get(35) not in _NOT_HELD:
            self._held.add(seq)
        writer.write(self._encode(body, seq, poss_dup))
        self._last_sent = asyncio.get_running_loop().time()
        return seq

    def _encode(self, body: simplefix.FixMessage, seq: int, poss_dup: bool = False) -> bytes:
        """Header 8, 9, 35, 34, [43], 49, 52, 56, [122], the optional header fields the body
        carries (e.g. PossResend), then the body (QuickFIX rejects a header field after a body
        field)."""
        out = simplefix.FixMessage()
        for tag, value in ((8, "FIX.4.4"), (35, body.get(35)), (34, seq),
                           (43, "Y" if poss_dup else None), (49, self.config.sender_comp_id)):
            out.append_pair(tag, value, header=True)
        out.append_utc_timestamp(52, datetime.now(UTC), precision=3, header=True)
        out.append_pair(56, self.config.target_comp_id, header=True)
        out.append_pair(122, out.get(52) if poss_dup else None, header=True)
        for tag, value in body:
            if int(tag) not in (8, 9, 10, 35):
                out.append_pair(tag, value, header=int(tag) in _OPTIONAL_HEADER_TAGS)
        return bytes(out.encode())

    # -- receiving ---------------------------------------------------------------------------

    async def _read(self, reader: asyncio.StreamReader) -> None:
        framer = Framer()
        try:
            while data := await reader.read(READ_SIZE):
                for message in framer.feed(data):
                    self._on_message(message)
                    if self._closed.is_set():
                        return
        except (ConnectionError, OSError) as error:
            log.info("fix_client.read_error", error=str(error))
        self._close("connection closed")

    def _on_message(self, msg: simplefix.FixMessage) -> None:
        self._last_received, self._probed = asyncio.get_running_loop().time(), False
        kind, seq = msg.get(35), int(msg.get(34))
        if kind in _ADMIN:
            self.admin_counts[kind.decode()] += 1
        if kind == b"4" and msg.get(123) != b"Y":       # SequenceReset-Reset: whatever its seq
            self._set_seqnums(in_=int(msg.get(36)))
            return
        if kind == b"5":
            self._on_logout(msg, seq)
            return
        if kind == b"A" and msg.get(141) == b"Y":      # the peer (re)starts at this seqnum
            self._set_seqnums(in_=seq)
        if seq < self._next_in:
            if msg.get(43) != b"Y":
                self._fatal(f"MsgSeqNum too low, expecting {self._next_in} but received {seq}")
            return                                      # a PossDup duplicate: already seen
        # Logon and ResendRequest are acted on even beyond a gap, or both sides could wait
        # for each other's resend forever
        if kind == b"A":
            self._on_logon()
        elif kind == b"2":
            self._answer_resend(msg)
        if seq > self._next_in:
            self._on_gap(msg, seq)
        elif kind == b"4":                              # GapFill
            self._set_seqnums(in_=max(seq + 1, int(msg.get(36))))
        else:
            self._set_seqnums(in_=seq + 1)
            self._dispatch(kind, msg)

    def _dispatch(self, kind: bytes, msg: simplefix.FixMessage) -> None:
        if kind == b"0":
            self._resolve_echo((msg.get(112) or b"").decode())
        elif kind == b"1":
            self._send_now(_body(b"0", (112, msg.get(112))))
        elif kind == b"3":
            self.session_rejects.append(msg)
            log.warning("fix_client.session_reject", ref_seq=msg.get(45), text=msg.get(58))
        elif kind not in _ADMIN:
            self.received.append(msg)
            self._queue.put_nowait(msg)

    def _on_logon(self) -> None:
        if self.logged_on:
            return
        self.logged_on = True
        log.info("fix_client.logged_on", next_out=self._next_out, next_in=self._next_in)
        if self._logon is not None and not self._logon.done():
            self._logon.set_result(None)
        self._tasks.append(asyncio.create_task(self._timers()))

    def _on_logout(self, msg: simplefix.FixMessage, seq: int) -> None:
        if seq == self._next_in:
            self._set_seqnums(in_=seq + 1)
        self._peer_logged_out = True
        if self.logged_on and not self._logout_sent:   # a refused Logon needs no answer
            with contextlib.suppress(ConnectionError):
                self._send_now(_body(b"5"))
        self._close((msg.get(58) or b"logout").decode(errors="replace"))

    def _on_gap(self, msg: simplefix.FixMessage, seq: int) -> None:
        """Drop the message: one ResendRequest(7=next_in, 16=0) brings it back in order."""
        if msg.get(35) == b"0" and msg.get(112) is not None:
            self._held_echoes.append((seq, msg.get(112).decode()))
        if seq <= self._gap_until:
            return
        already_asked = self._gap_until >= self._next_in
        self._gap_until = seq
        if not already_asked:
            log.info("fix_client.resend_request", begin=self._next_in, received=seq)
            self._send_now(_body(b"2", (7, self._next_in), (16, 0)))

    def _answer_resend(self, msg: simplefix.FixMessage) -> None:
        """We keep no outbound messages: GapFills cover the range, each numbered with the
        first seqnum it covers, but none covers a message this connection carried that the
        peer holds (queued as too high): a GapFill over it would make the peer discard it.
        The peer holds all but our ResendRequests and SequenceResets, which it acts on at
        once when they come too early without counting them, and so asks for again."""
        begin, end = int(msg.get(7)), int(msg.get(16))
        stop = self._next_out if end == 0 else min(end + 1, self._next_out)
        runs = _runs_without(range(begin, stop), self._held)
        if not runs:
            log.warning("fix_client.resend_nothing", begin=begin, next_out=self._next_out)
        for first, new_seq in runs:
            log.info("fix_client.gap_fill", begin=first, new_seq_no=new_seq)
            self._connected().write(self._encode(_body(b"4", (123, "Y"), (36, new_seq)), first,
                                                 poss_dup=True))

    def _fatal(self, text: str) -> None:
        log.warning("fix_client.logout", text=text)
        with contextlib.suppress(ConnectionError):
            self._send_now(_body(b"5", (58, text)))
        self._close(text)

    def _resolve_echo(self, req_id: str) -> None:
        echo = self._echoes.get(req_id)
        if echo is not None and not echo.done():
            echo.set_result(None)

    def _close(self, reason: str) -> None:
        if self._closed.is_set():
            return
        log.info("fix_client.closed", reason=reason, next_out=self._next_out,
                 next_in=self._next_in)
        self.close_reason, self.logged_on = reason, False
        if self._writer is not None:
            self._writer.close()       # flushes what was written (e.g. our Logout answer)
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if self._logon is not None and not self._logon.done():
            self._logon.set_exception(LogonRefused(reason))
        for echo in self._echoes.values():
            if not echo.done():
                echo.set_exception(ConnectionError(f"session closed: {reason}"))
        self._closed.set()

    # -- timers ------------------------------------------------------------------------------

    async def _timers(self) -> None:
        """Heartbeat after heartbeat_s without sending; TestRequest after 1.2 x heartbeat_s
        without receiving; close if still silent heartbeat_s later."""
        hb, loop = self.config.heartbeat_s, asyncio.get_running_loop()
        while not self._closed.is_set():
            await asyncio.sleep(min(1.0, hb / 10))
            now = loop.time()
            silent = now - self._last_received
            try:
                if now - self._last_sent >= hb:
                    self._idle_heartbeat()
                if silent >= 2.2 * hb:
                    self._close("heartbeat timeout")
                elif silent >= 1.2 * hb and not self._probed:
                    self._probed = True
                    self._send_now(_body(b"1", (112, f"idle-{next(self._ids)}")))
            except ConnectionError:
                return

    def _idle_heartbeat(self) -> None:
        self._send_now(_body(b"0"))


def _body(kind: bytes, *pairs: tuple[int, object]) -> simplefix.FixMessage:
    msg = simplefix.FixMessage()
    msg.append_pair(35, kind)
    for tag, value in pairs:
        msg.append_pair(tag, value)     # None: the optional field is left out
    return msg


def _runs_without(seqs: range, held: set[int]) -> list[tuple[int, int]]:
    """The runs of ``seqs`` not in ``held``, as (first, one past the last)."""
    runs: list[tuple[int, int]] = []
    for seq in seqs:
        if seq in held:
            continue
        if runs and runs[-1][1] == seq:
            runs[-1] = (runs[-1][0], seq + 1)
        else:
            runs.append((seq, seq + 1))
    return runs
