"""The FIX gateway: QuickFIX sessions in front of the solver's runtime.

Inbound, each application message is kept in the inbound log and becomes an engine command (or
a reply) on the asyncio loop; once its command is journaled or its reply sent it is marked
handled, and at start-up what was kept but not handled is handled again (see ``inbound``).
Outbound, every committed transaction becomes reports for the accounts it concerns, sent with
``Session.sendToTarget``: QuickFIX stores each before writing it, so a client that was away
gets them on logon by resend (PossDup), and at start-up the gateway sends whatever the journal
holds beyond what each session's store shows was sent (see ``delivery``).
"""

from __future__ import annotations

import asyncio
import gc
import socket
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

import quickfix as fix
import structlog

from fix_gateway import delivery, queries, reports, requests
from fix_gateway.acceptor import PolledAcceptor
from fix_gateway.account_view import AccountView
from fix_gateway.bridge import Bridge
from fix_gateway.config import FixSettings
from fix_gateway.dictionary import field_name
from fix_gateway.front_door import UNKNOWN_COMP_ID, FrontDoor
from fix_gateway.inbound import InboundLog, Mark
from fix_gateway.passwords import verify
from fix_gateway.sessions import session_settings
from fix_gateway.tags import (
    CL_ORD_ID,
    EVENT_SEQ_NUM,
    POSS_DUP_FLAG,
    POSS_RESEND,
    QUOTE_REQ_ID,
)
from fix_gateway.wire import Outgoing, Received, Replies
from solver.core import events as ev
from solver.core.bus import EventBus, TransactionObserver
from solver.core.commands import (
    CancelIndexOrder,
    Input,
    ReduceIndexOrder,
    RequestQuote,
    SubmitIndexOrder,
)
from solver.core.engine import Engine

log = structlog.get_logger(__name__)
P = TypeVar("P", bound=TransactionObserver)

CHECKPOINT_EVERY_S = 1.0
SWITCH_INTERVAL_S = 0.0005
STOP_WAIT_S = 5.0



class Solver(Protocol):
    """What the gateway needs of the solver's service; the composition root hands it the
    runtime. The gateway reads the engine only for its static configuration and, once at
    start, for where the journal stands."""

    engine: Engine
    bus: EventBus
    clock: Callable[[], int]

    def submit(self, command: Input) -> None:
        """Hand an input to the writer (after the books that moved, if it is priced on
        them)."""
        ...

    def resume(self, name: str, new: Callable[[], P]) -> P:
        """The projection ``name`` as of the journal's last transaction, then following the
        bus (checkpointed with the engine's snapshots)."""
        ...

    def transactions_after(self, number: int) -> Iterator[ev.Transaction]:
        """The journal's transactions after transaction ``number``."""
        ...

    def transactions_since(self, seq: int) -> Iterator[ev.Transaction]:
        """The journal's transactions with events after event ``seq``."""
        ...


class Gateway:
    def __init__(self, settings: FixSettings, runtime: Solver) -> None:
        self.settings = settings
        self.runtime = runtime
        self.engine = runtime.engine
        self.maker = reports.ReportMaker(runtime.engine.indexes, settings.chain_id)
        self._account_by_comp_id = {a.comp_id: a for a in settings.accounts}
        self._session_of_account: dict[str, str] = {}
        self._account_of_session: dict[str, str] = {}
        self._echo_session: str | None = None
        self._echoed: set[str] = set()
        self._in_flight: dict[Origin, list[tuple[Input, Received]]] = {}
        """Commands submitted and not yet journaled, by what names them (``_origin``), each
        with the message that asked for it (a duplicate ClOrdID queues behind the first)."""
        self._done: set[int] = set()
        self._last_ended = 0  # until a transaction ends: the mark's, as read at start
        self._quotes: dict[str, tuple[str, str, bool]] = {}
        self._reported = 0
        self._checkpointed = 0
        self._acceptor: PolledAcceptor | None = None
        self._closed = False
        self._closing = False  # shutting down: no new orders, the rest still served
        self._sending = False  # QuickFIX's thread tears sessions down while it stops
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
        self.view = self.runtime.resume(AccountView.NAME, AccountView)
        self.inbound = InboundLog(self.settings.store / "inbound",
                                  self.engine.transactions_applied)
        self.bridge = Bridge(asyncio.get_running_loop(), self._on_message, self._authenticate,
                             self.inbound, self._logged_out)
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
        self._bind_sessions()
        self._sending = True  # QuickFIX stores what it cannot send yet
        self._catch_up()
        # Records matched while replaying must not move the mark's transaction past
        # journaled commands of records still after it.
        self._last_ended = self.inbound.mark.transaction
        self._replay()
        self._acceptor.start()
        self.door.upstream_port = self._acceptor.port  # QuickFIX on loopback alone, now
        self.door.start()
        self._checkpointing = asyncio.create_task(self._checkpoint_periodically())
        log.info("fix gateway listening", port=self.settings.port,
                 accounts=sorted(self._session_of_account))

    async def stop(self) -> None:
        """Stop taking messages and close the inbound log once what was taken is handled.
        Stop the gateway before the runtime, so that the writer journals what was taken;
        reports of later transactions go out at the next start (see ``_catch_up``)."""
        if self._checkpointing is not None:
            self._checkpointing.cancel()
        if self._acceptor is not None:
            acceptor, self._acceptor = self._acceptor, None
            self._sending = False  # what is not sent now goes out at the next start
            await asyncio.to_thread(self.door.stop)
            await asyncio.to_thread(acceptor.stop)
            # QuickFIX registers sessions process-wide: the old ones must be gone before an
            # acceptor with the same CompIDs starts in this process, or sends go to them.
            del acceptor
            gc.collect()
            await self._all_handled(STOP_WAIT_S)
            self.inbound.close()
            self._closed = True
        self._checkpoint()

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

    async def _all_handled(self, timeout_s: float) -> None:
        """Wait (bounded) for every kept record to be handled; what is left is handled at the
        next start."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.inbound.backlog and loop.time() < deadline:
            await asyncio.sleep(0.01)

    @property
    def logged_on(self) -> set[str]:
        """Accounts with a session logged on now."""
        return {self._account_of_session[s] for s in self.bridge.logged_on
                if s in self._account_of_session}

    def _wake_quickfix(self) -> None:
        if self._acceptor is not None:
            self._acceptor.wake()

    def _bind_sessions(self) -> None:
        for key, session_id in self.bridge.sessions.items():
            client = session_id.getTargetCompID().getValue()
            account = self._account_by_comp_id.get(client)
            if account is not None:
                self._session_of_account[account.name] = key
                self._account_of_session[key] = account.name
            else:
                self._echo_session = key

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

    # --- inbound ------------------------------------------------------------------------------

    def _on_message(self, msg: Received) -> None:
        """On the loop: act on one application message, in the inbound log's order."""
        try:
            self._act(msg, self._decide(msg))
        except Exception:
            log.exception("fix message failed", session=msg.session, msg_type=msg.msg_type)
            self._send(msg.session, reports.business_reject(
                msg, "0", "the gateway could not process this message; it changed nothing"))
            self._handled(msg.number)

    def _decide(self, msg: Received, copies: bool = True) -> Input | Replies:
        """The engine command a message asks for, or the replies it gets instead.
        ``copies``: a copy (PossDup, PossResend) of what was already taken is answered as one;
        without, the message is judged as if it came first."""
        if msg.session == self._echo_session:
            return self._echo(msg)
        bad = msg.bad_field()
        if bad is not None:
            tag, problem = bad
            return (reports.business_reject(
                msg, "0", f"{field_name(tag)} {problem}; the message changed nothing"),)
        account, now = self._account_of_session[msg.session], self.runtime.clock()
        if copies and msg.msg_type in ("D", "F", "G"):
            taken = self._already_taken(msg, account)
            if taken is not None:
                return taken
        if self._closing and msg.msg_type in ("D", "G"):
            return (self._closing_refusal(msg, account),)
        decision: Input | Outgoing | Replies
        match msg.msg_type:
            case "D":
                decision = requests.new_order(msg, account, now)
            case "F":
                decision = requests.cancel(msg, account, self.view, now)
            case "G":
                decision = requests.replace(msg, account, self.view, now)
            case "R":
                decision = requests.quote_request(msg, f"q{msg.number}", now)
            case "BB":
                return queries.collateral_inquiry(msg, account, self.view,
                                                  sorted(self.engine.collaterals))
            case "H":
                return queries.order_status(msg, account, self.view, now)
            case "AF":
                return queries.mass_status(msg, account, self.view, now)
            case _:
                decision = reports.business_reject(
                    msg, "3", f"MsgType {msg.msg_type} is not supported by this gateway")
        return (decision,) if isinstance(decision, Outgoing) else decision

    def close_to_new_orders(self) -> None:
        """Refuse new orders and changes from now on (the service is stopping); cancels,
        status requests and every report still go through."""
        self._closing = True

    def _closing_refusal(self, msg: Received, account: str) -> Outgoing:
        text = "the service is shutting down: send it again once it is back"
        if msg.msg_type == "D":
            return reports.order_refused(msg, requests.EXCHANGE_CLOSED, text)
        return reports.cancel_refused(msg, self.view, account, requests.OTHER, text)

    def _act(self, msg: Received, decision: Input | Replies) -> None:
        if isinstance(decision, tuple):
            for reply in decision:
                self._send(msg.session, reply)
            self._handled(msg.number)
            return
        if isinstance(decision, RequestQuote):
            self._quotes[decision.quote_id] = (msg.session, msg.get(QUOTE_REQ_ID) or "",
                                               decision.index in self.engine.indexes)
        origin = _origin(decision)
        assert origin is not None, f"a client message asked for {decision!r}"
        self._in_flight.setdefault(origin, []).append((decision, msg))
        self.runtime.submit(decision)

    def _echo(self, msg: Received) -> Replies:
        """The test profile behaves as QuickFIX's acceptance application (``at``): it echoes
        NewOrderSingle and SecurityDefinition, keeping PossResend; drops a PossResend copy of
        an order it has seen since its logon; answers anything else as unsupported."""
        if msg.msg_type not in ("D", "d"):
            return (reports.business_reject(msg, "3", "Unsupported Message Type"),)
        resend = msg.get(POSS_RESEND) == "Y"
        if msg.msg_type == "D":
            cl_ord_id = msg.get(CL_ORD_ID) or ""
            if resend and cl_ord_id in self._echoed:
                return ()
            self._echoed.add(cl_ord_id)
        return (Outgoing(msg.msg_type, _body(msg), ((POSS_RESEND, "Y"),) if resend else ()),)

    def _logged_out(self, session: str) -> None:
        """On the loop: a session logged out."""
        if session == self._echo_session:
            self._echoed.clear()

    def _already_taken(self, msg: Received, account: str) -> Replies | None:
        """A PossDup(43) or PossResend(97) copy of an order or request already taken gets
        the order's status, or nothing while the original is still on its way to the engine
        (its own reports answer it); anything else is new."""
        if "Y" not in (msg.get(POSS_DUP_FLAG), msg.get(POSS_RESEND)):
            return None
        name = msg.get(CL_ORD_ID) or ""
        order = self.view.order(account, name)
        if order is not None:
            return (reports.status(order, self.runtime.clock()),)
        origin = ("order" if msg.msg_type == "D" else "request", account, name)
        return () if origin in self._in_flight else None

    def _handled(self, number: int) -> None:
        """Record ``number`` is journaled or answered: move the inbound mark past it."""
        mark = self.inbound.mark.record
        if number <= mark:
            return
        self._done.add(number)
        while mark + 1 in self._done:
            mark += 1
            self._done.remove(mark)
        if mark != self.inbound.mark.record:
            self.inbound.set_mark(Mark(mark, self._last_ended))
            self.bridge.room_made()

    def _replay(self) -> None:
        """Handle again the messages the inbound log kept but had not seen handled, except
        those whose commands the journal holds: every client command journaled after the
        mark's transaction came from a record after the mark. Each such command is matched
        with the first record asking for it (judged as if it came first: a copy may have been
        the first to arrive), so a mismatch cannot spread. Numbers missing from the log (a
        failed or torn write) have nothing to redo."""
        records = self.inbound.unhandled()
        kept = {r.number for r in records}
        for number in range(self.inbound.mark.record + 1, self.inbound.next_number):
            if number not in kept:
                self._handled(number)
        if not records:
            return  # the journal's tail since the mark need not be read
        applied = Counter(origin for t in self.runtime.transactions_after(
            self.inbound.mark.transaction) if (origin := _origin(t.input)) is not None)
        replayed = 0
        for record in records:
            msg = Received.parse(record.session, record.text, record.number)
            origin = self._origin_of(msg)
            if origin is not None and applied[origin] > 0:
                applied[origin] -= 1
                self._handled(record.number)
            elif record.session in self._account_of_session:
                self._on_message(msg)
                replayed += 1
            else:  # the echo session, or one no longer configured
                self._handled(record.number)
        log.info("fix inbound replayed", unhandled=len(records), replayed=replayed,
                 mark=self.inbound.mark.record)

    def _origin_of(self, msg: Received) -> tuple[str, str, str] | None:
        """The origin of the command a kept message asked for, if it asked for one."""
        if msg.session not in self._account_of_session:
            return None
        try:
            decision = self._decide(msg, copies=False)
        except Exception:
            return None  # handling it again answers it
        return None if isinstance(decision, tuple) else _origin(decision)

    # --- outbound: the bus calls these after each commit ----------------------------------------

    def transaction_began(self, transaction: ev.Transaction) -> None:
        pass

    def transaction_ended(self, transaction: ev.Transaction) -> None:
        if self._closed:
            return
        self._last_ended = transaction.number
        if self._sending:
            try:
                self._report(transaction)
            except Exception:
                log.exception("fix reports failed", transaction=transaction.number)
        asked = self._taken(transaction.input)
        if asked is not None:
            if transaction.of_type(ev.InputFailed):
                self._answer_refused(asked)
            self._handled(asked.number)

    def _refused(self, command: Input, reason: str) -> None:
        """The writer refused a command before the engine saw it: answer, and move on."""
        asked = self._taken(command)
        if asked is not None:
            self._answer_refused(asked)
            self._handled(asked.number)

    def _taken(self, command: Input) -> Received | None:
        """The message that asked for ``command``, no longer in flight; None if no client
        message asked for it."""
        origin = _origin(command)
        if origin is None:
            return None
        waiting = self._in_flight.get(origin, [])
        for n, (submitted, msg) in enumerate(waiting):
            if submitted is command:
                del waiting[n]
                if not waiting:
                    del self._in_flight[origin]
                return msg
        return None

    def _answer_refused(self, msg: Received) -> None:
        log.error("fix message refused by the writer", session=msg.session,
                  msg_type=msg.msg_type, record=msg.number)
        self._send(msg.session, reports.business_reject(
            msg, "0", "the gateway could not process this message; it changed nothing"))

    def _report(self, transaction: ev.Transaction) -> None:
        for account, report in self.maker.reports(transaction):
            self._send_to(account, report)
        for envelope in transaction.events:
            self._answer_quote(envelope)
        if transaction.events:
            self._reported = transaction.events[-1].seq

    def _answer_quote(self, envelope: ev.Envelope[ev.Event]) -> None:
        event = envelope.event
        if not isinstance(event, ev.QuoteIssued | ev.QuoteRejected):
            return
        asked = self._quotes.pop(event.quote_id, None)
        if asked is None:
            return  # asked before a restart: a quote is not worth resending
        session, quote_req_id, known = asked
        self._send(session, self.maker.quote(event, quote_req_id, envelope.seq, envelope.ts)
                   if isinstance(event, ev.QuoteIssued)
                   else self.maker.quote_rejected(event, quote_req_id, known))

    def _send_to(self, account: str, report: Outgoing) -> None:
        session = self._session_of_account.get(account)
        if session is not None:
            self._send(session, report)

    def _send(self, session: str, report: Outgoing) -> None:
        if not self._sending:
            log.warning("fix message not sent: the gateway is stopping", session=session,
                        msg_type=report.msg_type)
            return
        sent = fix.Session.sendToTarget(delivery.to_quickfix(report),
                                        self.bridge.sessions[session])
        if not sent:
            log.error("fix report not stored", session=session, msg_type=report.msg_type)

    # --- catching up after a restart -----------------------------------------------------------

    def _catch_up(self) -> None:
        checkpoint = delivery.read_checkpoint(self.settings.store)
        marks = {account: max(checkpoint, delivery.last_event_seq(self.settings.store,
                                                                  self.bridge.sessions[key]))
                 for account, key in self._session_of_account.items()}
        self._reported = self._checkpointed = self.engine.last_seq
        if not marks or min(marks.values()) >= self.engine.last_seq:
            return
        sent = 0
        for transaction in self.runtime.transactions_since(min(marks.values())):
            for account, report in self.maker.reports(transaction):
                if int(report.get(EVENT_SEQ_NUM) or 0) > marks.get(account, 2**63):
                    self._send_to(account, report)
                    sent += 1
        log.info("fix reports caught up", sent=sent, from_seq=min(marks.values()))
        self._checkpoint()

    async def _checkpoint_periodically(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_S)
            self._checkpoint()
            self.inbound.prune()

    def _checkpoint(self) -> None:
        if self._reported != self._checkpointed:
            delivery.write_checkpoint(self.settings.store, self._reported)
            self._checkpointed = self._reported


def free_loopback_port() -> int:
    """A port free on 127.0.0.1 now, for QuickFIX's acceptor behind the front door."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _body(msg: Received) -> tuple[tuple[int, str], ...]:
    return tuple((t, v) for t, v in msg.fields if t not in delivery.HEADER_AND_TRAILER)


Origin = tuple[str, str, str]
"""What names a command a client asked for: its kind, account and id."""


def _origin(command: Input) -> Origin | None:
    """What names a command that a client message asked for: its kind, account and id."""
    match command:
        case SubmitIndexOrder():
            return ("order", command.account, command.client_order_id)
        case CancelIndexOrder() | ReduceIndexOrder():
            return ("request", command.account, command.request_id)
        case RequestQuote():
            return ("quote", "", command.quote_id)
    return None
