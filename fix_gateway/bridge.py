"""The QuickFIX application: the engine threads' side of the gateway.

QuickFIX calls these methods on its thread with borrowed C++ objects. Each callback copies
what it needs into Python strings and hands it to the asyncio loop; no exception may leave a
callback (an uncaught one kills or hangs the process), so each catches, logs and answers with
a reject. ``fromApp`` keeps the message in the inbound log before it returns (QuickFIX counts
a message as received when ``fromApp`` returns) and hands it to the loop in the log's order.
It waits only when the loop is ``MAX_BACKLOG`` messages behind, so a client that floods the
gateway is slowed down instead of filling memory. A TestRequest is let through once every
earlier message of its session is answered, so its Heartbeat stays the barrier clients expect:
whatever they sent before has had its answer.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable

import quickfix as fix
import structlog

from fix_gateway.front_door import Authenticate
from fix_gateway.inbound_log import InboundLog
from fix_gateway.tags import MSG_TYPE, PASSWORD, USERNAME
from fix_gateway.wire import Received

# ``import quickfix`` resets SIGINT to the default action; give Python's handler back.
signal.signal(signal.SIGINT, signal.default_int_handler)

log = structlog.get_logger(__name__)

Handler = Callable[[Received], None]

MAX_BACKLOG = 1000
ROOM_TIMEOUT_S = 10.0


def session_key(session_id: fix.SessionID) -> str:
    return str(session_id.toString())


class Bridge(fix.Application):  # type: ignore[misc]
    def __init__(self, loop: asyncio.AbstractEventLoop, handle: Handler,
                 authenticate: Authenticate, inbound: InboundLog,
                 logged_out: Callable[[str], None]) -> None:
        super().__init__()
        self.loop = loop
        self.handle = handle
        self.logged_out = logged_out
        self.authenticate = authenticate
        self.inbound = inbound
        self._in_order = threading.Lock()
        self._room = threading.Condition()
        self._last_record: dict[str, int] = {}
        self.sessions: dict[str, fix.SessionID] = {}
        self.logged_on: set[str] = set()

    def onCreate(self, session_id: fix.SessionID) -> None:
        try:
            key = session_key(session_id)
            self.sessions[key] = fix.SessionID(
                session_id.getBeginString().getValue(), session_id.getSenderCompID().getValue(),
                session_id.getTargetCompID().getValue())
        except Exception:
            log.exception("fix onCreate failed")

    def onLogon(self, session_id: fix.SessionID) -> None:
        try:
            key = session_key(session_id)
            self.logged_on.add(key)
            log.info("fix logon", session=key)
        except Exception:
            log.exception("fix onLogon failed")

    def onLogout(self, session_id: fix.SessionID) -> None:
        try:
            key = session_key(session_id)
            self.logged_on.discard(key)
            self.loop.call_soon_threadsafe(self.logged_out, key)
            log.info("fix logout", session=key)
        except Exception:
            log.exception("fix onLogout failed")

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        refusal: str | None
        try:
            if _msg_type(message) == "1":
                self._wait_until_answered(session_key(session_id))
            if _msg_type(message) != "A":
                return
            refusal = self.authenticate(
                session_id.getSenderCompID().getValue(), session_id.getTargetCompID().getValue(),
                _optional(message, USERNAME), _optional(message, PASSWORD))
        except Exception:
            log.exception("fix logon check failed")
            refusal = "logon could not be checked; try again"
        if refusal is not None:
            log.warning("fix logon refused", session=session_key(session_id), reason=refusal)
            raise fix.RejectLogon(refusal)

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        try:
            key, text = session_key(session_id), message.toString()
            self._wait_for_room(key)
            with self._in_order:  # the log sets the order the loop sees, whichever thread calls
                number = self._last_record[key] = self.inbound.append(key, text)
                self.loop.call_soon_threadsafe(self.handle, Received.parse(key, text, number))
        except Exception:
            log.exception("fix message not handled", session=session_key(session_id))

    def room_made(self) -> None:
        """The loop has handled messages: wake the callbacks waiting for that."""
        with self._room:
            self._room.notify_all()

    def _wait_for_room(self, session: str) -> None:
        self._wait(lambda: self.inbound.backlog < MAX_BACKLOG, session,
                   "fix backlog still full; message taken anyway")

    def _wait_until_answered(self, session: str) -> None:
        last = self._last_record.get(session, 0)
        self._wait(lambda: self.inbound.mark.record >= last, session,
                   "fix messages still unanswered; TestRequest answered anyway")

    def _wait(self, done: Callable[[], bool], session: str, late: str) -> None:
        if done():
            return
        with self._room:
            if not self._room.wait_for(done, ROOM_TIMEOUT_S):
                log.warning(late, session=session, backlog=self.inbound.backlog)


def _msg_type(message: fix.Message) -> str:
    return str(message.getHeader().getField(MSG_TYPE))


def _optional(message: fix.Message, tag: int) -> str | None:
    return str(message.getField(tag)) if message.isSetField(tag) else None
