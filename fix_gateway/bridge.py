"""The QuickFIX application: the engine threads' side of the gateway.

QuickFIX calls these methods on its own threads with borrowed C++ objects. Each callback copies
what it needs into Python strings and hands it to the asyncio loop; no exception may leave a
callback (an uncaught one kills or hangs the process), so each catches, logs and answers with
a reject. ``fromApp`` returns only when the loop has journaled what the message asked for:
QuickFIX counts a message as received when ``fromApp`` returns, so a crash before that makes
the client send it again instead of losing it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
from collections.abc import Callable

import quickfix as fix
import structlog

from fix_gateway.wire import Received

# ``import quickfix`` resets SIGINT to the default action; give Python's handler back.
signal.signal(signal.SIGINT, signal.default_int_handler)

log = structlog.get_logger(__name__)

Handled = concurrent.futures.Future[None]
Handler = Callable[[Received, Handled], None]
Authenticate = Callable[[str, str | None, str | None], str | None]
"""(client CompID, Username, Password) -> None to let in, else the reason for refusing."""

HANDLING_TIMEOUT_S = 10.0


def session_key(session_id: fix.SessionID) -> str:
    return str(session_id.toString())


class Bridge(fix.Application):  # type: ignore[misc]
    def __init__(self, loop: asyncio.AbstractEventLoop, handle: Handler,
                 authenticate: Authenticate) -> None:
        super().__init__()
        self.loop = loop
        self.handle = handle
        self.authenticate = authenticate
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
            if _msg_type(message) != "A":
                return
            client = session_id.getTargetCompID().getValue()
            refusal = self.authenticate(client, _optional(message, 553), _optional(message, 554))
        except Exception:
            log.exception("fix logon check failed")
            refusal = "logon could not be checked; try again"
        if refusal is not None:
            log.warning("fix logon refused", session=session_key(session_id), reason=refusal)
            raise fix.RejectLogon(refusal)

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        try:
            received = Received.parse(session_key(session_id), message.toString())
            handled: Handled = concurrent.futures.Future()
            self.loop.call_soon_threadsafe(self.handle, received, handled)
            handled.result(HANDLING_TIMEOUT_S)
        except Exception:
            log.exception("fix message not handled", session=session_key(session_id))


def _msg_type(message: fix.Message) -> str:
    return str(message.getHeader().getField(35))


def _optional(message: fix.Message, tag: int) -> str | None:
    return str(message.getField(tag)) if message.isSetField(tag) else None
