"""The FIX gateway: QuickFIX sessions in front of the solver's runtime, in three parts behind
this facade.

- ``inbound``: each application message, kept in the inbound log first, becomes an engine
  command or replies; replayed at start-up if it was kept but not handled.
- ``queries``: OrderStatusRequest, OrderMassStatusRequest and CollateralInquiry, answered from
  the account view.
- ``outbound``: each committed transaction becomes reports; at start-up, what the journal holds
  beyond each session's store goes out first.

The facade opens and closes the sessions (the front door, QuickFIX's acceptor, the bridge
between QuickFIX's thread and the loop) and hands the bus's transactions to both sides.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import sys

import quickfix as fix
import structlog

from fix_gateway import reports
from fix_gateway.acceptor import PolledAcceptor
from fix_gateway.account_view import AccountView
from fix_gateway.bridge import Bridge
from fix_gateway.config import FixSettings
from fix_gateway.front_door import UNKNOWN_COMP_ID, FrontDoor
from fix_gateway.inbound import Inbound
from fix_gateway.inbound_log import InboundLog
from fix_gateway.outbound import Outbound
from fix_gateway.passwords import verify
from fix_gateway.port import Solver
from fix_gateway.sessions import Routes, session_settings
from fix_gateway.wire import Received
from solver.core import events as ev
from solver.core.commands import Input

log = structlog.get_logger(__name__)

CHECKPOINT_EVERY_S = 1.0
SWITCH_INTERVAL_S = 0.0005
STOP_WAIT_S = 5.0


class Gateway:
    def __init__(self, settings: FixSettings, runtime: Solver) -> None:
        self.settings = settings
        self.runtime = runtime
        self.maker = reports.ReportMaker(runtime.engine.indexes, settings.chain_id)
        self._account_by_comp_id = {a.comp_id: a for a in settings.accounts}
        self.inbound: Inbound | None = None
        self.outbound: Outbound | None = None
        self._acceptor: PolledAcceptor | None = None
        self._closed = False
        self._checkpointing: asyncio.Task[None] | None = None
        runtime.bus.observe(self)
        runtime.bus.on_refusal(self._refused)

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Open the sessions, send what the journal has beyond each session's store, handle
        what the inbound log kept but had not handled, and accept connections. Call on the
        loop before the runtime applies new inputs."""
        # QuickFIX's thread and the loop hand each message back and forth; with Python's
        # default 5 ms switch interval a thread back from I/O can wait that long for the GIL.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        view = self.runtime.resume(AccountView.NAME, AccountView)
        self.inbound_log = InboundLog(self.settings.store / "inbound",
                                      self.runtime.engine.transactions_applied)
        self.bridge = Bridge(asyncio.get_running_loop(), self._on_message, self._authenticate,
                             self.inbound_log, self._logged_out)
        inner_port = free_loopback_port()
        quickfix_settings = session_settings(self.settings, inner_port)
        test = self.settings.test_session
        ours = (self.settings.comp_id, *([test.comp_id] if test else []))
        self.door = FrontDoor(self.settings.host, self.settings.port, ours, inner_port,
                              self._authenticate, self.settings.door, self._wake_quickfix)
        self.settings.store.mkdir(parents=True, exist_ok=True)
        logs = fix.FileLogFactory(quickfix_settings) if self.settings.log else None
        self._acceptor = PolledAcceptor(fix.SocketAcceptor(
            self.bridge, fix.FileStoreFactory(quickfix_settings), quickfix_settings,
            *([logs] if logs else [])), inner_port)
        self.routes = Routes.of(self.bridge.sessions, self.settings)
        self.outbound = Outbound(self.settings, self.maker, self.bridge, self.routes)
        self.outbound.sending = True  # QuickFIX stores what it cannot send yet
        self.outbound.catch_up(self.runtime)
        self.inbound = Inbound(self.runtime, view, self.inbound_log, self.routes,
                               self.outbound, self.bridge.room_made, self.settings.signing)
        self.inbound.replay()
        self._acceptor.start()
        self.door.upstream_port = self._acceptor.port  # QuickFIX on loopback alone, now
        self.door.start()
        self._checkpointing = asyncio.create_task(self._checkpoint_periodically())
        log.info("fix gateway listening", port=self.settings.port,
                 accounts=sorted(self.routes.session_of_account))

    async def stop(self) -> None:
        """Stop taking messages and close the inbound log once what was taken is handled.
        Stop the gateway before the runtime, so that the writer journals what was taken;
        reports of later transactions go out at the next start (see ``Outbound.catch_up``)."""
        if self._checkpointing is not None:
            self._checkpointing.cancel()
        if self._acceptor is not None and self.outbound is not None:
            acceptor, self._acceptor = self._acceptor, None
            self.outbound.sending = False  # what is not sent now goes out at the next start
            await asyncio.to_thread(self.door.stop)
            await asyncio.to_thread(acceptor.stop)
            # QuickFIX registers sessions process-wide: the old ones must be gone before an
            # acceptor with the same CompIDs starts in this process, or sends go to them.
            del acceptor
            gc.collect()
            await self._all_handled(STOP_WAIT_S)
            self.inbound_log.close()
            self._closed = True
        if self.outbound is not None:
            self.outbound.checkpoint()

    def close_to_new_orders(self) -> None:
        """Refuse new orders and changes from now on (the service is stopping); cancels,
        status requests and every report still go through."""
        if self.inbound is not None:
            self.inbound.closing = True

    async def log_out(self, text: str, timeout_s: float) -> int:
        """Send a Logout to every session logged on and wait (bounded) for their answers;
        returns how many had not answered."""
        sessions = [s for s in map(fix.Session.lookupSession, self.bridge.sessions.values())
                    if s is not None and s.isLoggedOn()]
        for session in sessions:
            session.logout(text)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (on := sum(bool(s.isLoggedOn()) for s in sessions)) and loop.time() < deadline:
            self._wake_quickfix()
            await asyncio.sleep(0.01)
        return on

    @property
    def logged_on(self) -> set[str]:
        """Accounts with a session logged on now."""
        return {self.routes.account_of_session[s] for s in self.bridge.logged_on
                if s in self.routes.account_of_session}

    async def _all_handled(self, timeout_s: float) -> None:
        """Wait (bounded) for every kept record to be handled; what is left is handled at the
        next start."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.inbound_log.backlog and loop.time() < deadline:
            await asyncio.sleep(0.01)

    async def _checkpoint_periodically(self) -> None:
        while self.outbound is not None:
            await asyncio.sleep(CHECKPOINT_EVERY_S)
            self.outbound.checkpoint()
            self.inbound_log.prune()

    def _wake_quickfix(self) -> None:
        if self._acceptor is not None:
            self._acceptor.wake()

    def _authenticate(self, ours: str, client: str, username: str | None,
                      password: str | None) -> str | None:
        test = self.settings.test_session
        if test is not None and (ours, client) == (test.comp_id, test.target_comp_id):
            return None  # the test profile: acceptance suites send no password
        account = self._account_by_comp_id.get(client)
        if account is None or ours != self.settings.comp_id:
            return UNKNOWN_COMP_ID
        if username != client:
            return "Username(553) must be your SenderCompID"
        if password is None or not verify(password, account.password_hash):
            return "wrong password"
        return None

    # --- QuickFIX's thread and the bus hand these over, on the loop ----------------------------

    def _on_message(self, msg: Received) -> None:
        if self.inbound is not None:
            self.inbound.on_message(msg)

    def _logged_out(self, session: str) -> None:
        if self.inbound is not None:
            self.inbound.logged_out(session)

    def transaction_began(self, transaction: ev.Transaction) -> None:
        pass

    def transaction_ended(self, transaction: ev.Transaction) -> None:
        if self._closed or self.inbound is None or self.outbound is None:
            return
        self.outbound.report(transaction)
        self.inbound.transaction_ended(transaction)

    def _refused(self, command: Input, reason: str) -> None:
        if self.inbound is not None:
            self.inbound.refused(command, reason)


def free_loopback_port() -> int:
    """A port free on 127.0.0.1 now, for QuickFIX's acceptor behind the front door."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

