"""The FIX gateway: QuickFIX sessions in front of the solver's runtime.

Inbound, each application message becomes an engine command (or a reject) on the asyncio loop;
QuickFIX's thread is released once the command's transaction is journaled. Outbound, every
committed transaction becomes reports for the accounts it concerns, sent with
``Session.sendToTarget``: QuickFIX stores each before writing it, so a client that was away
gets them on logon by resend (PossDup), and at start-up the gateway sends whatever the journal
holds beyond what each session's store shows was sent (see ``delivery``).
"""

from __future__ import annotations

import asyncio
import gc
import itertools

import quickfix as fix
import structlog

from fix_gateway import delivery, reports, requests
from fix_gateway.bridge import Bridge, Handled
from fix_gateway.config import FixSettings
from fix_gateway.passwords import verify
from fix_gateway.sessions import session_settings
from fix_gateway.tags import EVENT_SEQ_NUM
from fix_gateway.wire import Outgoing, Received
from solver import events as ev
from solver.commands import Input, RequestQuote
from solver.runtime import Runtime

log = structlog.get_logger(__name__)

CHECKPOINT_EVERY_S = 1.0


class Gateway:
    def __init__(self, settings: FixSettings, runtime: Runtime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.engine = runtime.engine
        self.maker = reports.ReportMaker(runtime.engine, settings.chain_id)
        self._account_by_comp_id = {a.comp_id: a for a in settings.accounts}
        self._session_of_account: dict[str, str] = {}
        self._account_of_session: dict[str, str] = {}
        self._echo_session: str | None = None
        self._waiting: dict[int, tuple[Input, Handled]] = {}
        self._quotes: dict[str, tuple[str, str, bool]] = {}
        self._quote_ids = itertools.count(1)
        self._reported = 0
        self._checkpointed = 0
        self._acceptor: fix.ThreadedSocketAcceptor | None = None
        self._checkpointing: asyncio.Task[None] | None = None
        runtime.bus.observe(self)

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Open the sessions, send what the journal has beyond each session's store, and
        accept connections. Call on the loop before the runtime applies new inputs."""
        self.bridge = Bridge(asyncio.get_running_loop(), self._on_message, self._authenticate)
        quickfix_settings = session_settings(self.settings)
        self.settings.store.mkdir(parents=True, exist_ok=True)
        logs = fix.FileLogFactory(quickfix_settings) if self.settings.log else None
        self._acceptor = fix.ThreadedSocketAcceptor(
            self.bridge, fix.FileStoreFactory(quickfix_settings), quickfix_settings,
            *([logs] if logs else []))
        self._bind_sessions()
        self._catch_up()
        self._acceptor.start()
        self._checkpointing = asyncio.create_task(self._checkpoint_periodically())
        log.info("fix gateway listening", port=self.settings.port,
                 accounts=sorted(self._session_of_account))

    async def stop(self) -> None:
        if self._checkpointing is not None:
            self._checkpointing.cancel()
        if self._acceptor is not None:
            acceptor, self._acceptor = self._acceptor, None
            await asyncio.to_thread(acceptor.stop)
            # QuickFIX registers sessions process-wide: the old ones must be gone before an
            # acceptor with the same CompIDs starts in this process, or sends go to them.
            del acceptor
            gc.collect()
        self._checkpoint()

    @property
    def logged_on(self) -> set[str]:
        """Accounts with a session logged on now."""
        return {self._account_of_session[s] for s in self.bridge.logged_on
                if s in self._account_of_session}

    def _bind_sessions(self) -> None:
        for key, session_id in self.bridge.sessions.items():
            client = session_id.getTargetCompID().getValue()
            account = self._account_by_comp_id.get(client)
            if account is not None:
                self._session_of_account[account.name] = key
                self._account_of_session[key] = account.name
            else:
                self._echo_session = key

    def _authenticate(self, client: str, username: str | None, password: str | None) -> str | None:
        test = self.settings.test_session
        if test is not None and client == test.target_comp_id:
            return None
        account = self._account_by_comp_id.get(client)
        if account is None:
            return "unknown CompID"
        if username != client:
            return "Username(553) must be your SenderCompID"
        if password is None or not verify(password, account.password_hash):
            return "wrong password"
        return None

    # --- inbound ------------------------------------------------------------------------------

    def _on_message(self, msg: Received, handled: Handled) -> None:
        """On the loop: act on one application message; ``handled`` is resolved once what it
        asked for is journaled (or answered)."""
        try:
            if msg.session == self._echo_session:
                self._send(msg.session, Outgoing(msg.msg_type, _body(msg)))
            else:
                self._dispatch(msg, self._account_of_session[msg.session], handled)
                return
        except Exception:
            log.exception("fix message failed", session=msg.session, msg_type=msg.msg_type)
            self._send(msg.session, reports.business_reject(
                msg, "0", "the gateway could not process this message; it changed nothing"))
        handled.set_result(None)

    def _dispatch(self, msg: Received, account: str, handled: Handled) -> None:
        now = self.runtime.clock()
        decision: requests.Decision
        match msg.msg_type:
            case "D":
                decision = self._status_if_resent(msg, account) or requests.new_order(
                    msg, account, now)
            case "F":
                decision = requests.cancel(msg, account, self.engine, now)
            case "G":
                decision = requests.replace(msg, account, self.engine, now)
            case "R":
                decision = requests.quote_request(msg)
            case "BB":
                self._collateral_inquiry(msg, account)
                handled.set_result(None)
                return
            case _:
                decision = reports.business_reject(
                    msg, "3", f"MsgType {msg.msg_type} is not supported by this gateway")
        if isinstance(decision, Outgoing):
            self._send(msg.session, decision)
            handled.set_result(None)
            return
        command: Input
        if isinstance(decision, requests.QuoteAsked):
            quote_id = f"q{next(self._quote_ids)}"
            self._quotes[quote_id] = (msg.session, decision.quote_req_id,
                                      decision.index in self.engine.indexes)
            self.runtime.refresh_books()
            command = RequestQuote(now, quote_id, decision.index, decision.collateral)
        else:
            command = decision
        self._waiting[id(command)] = (command, handled)
        self.runtime.submit(command)

    def _status_if_resent(self, msg: Received, account: str) -> Outgoing | None:
        """A PossResend(97) order already received gets its status, not a duplicate reject."""
        order = self.engine.order(account, msg.get(11) or "")
        if msg.get(97) != "Y" or order is None:
            return None
        return self.maker.status(order, self.runtime.clock())

    def _collateral_inquiry(self, msg: Received, account: str) -> None:
        inquiry = msg.get(909) or ""
        if msg.get(1) not in (None, account):
            self._send(msg.session, Outgoing("BG", (
                (909, inquiry), (945, "4"), (1, msg.get(1) or ""),
                (58, f"Account(1) must be this session's account {account}"))))
            return
        assets = sorted(self.engine.collaterals)
        self._send(msg.session, Outgoing("BG", (
            (909, inquiry), (945, "0"), (911, str(len(assets))), (1, account))))
        for n, asset in enumerate(assets, 1):
            self._send(msg.session, reports.collateral_report(
                self.engine, account, asset, f"{inquiry}-{n}", inquiry, []))

    # --- outbound: the bus calls these after each commit ----------------------------------------

    def transaction_began(self, transaction: ev.Transaction) -> None:
        pass

    def transaction_ended(self, transaction: ev.Transaction) -> None:
        try:
            self._report(transaction)
        except Exception:
            log.exception("fix reports failed", transaction=transaction.number)
        waiting = self._waiting.pop(id(transaction.input), None)
        if waiting is not None and waiting[0] is transaction.input:
            waiting[1].set_result(None)

    def _report(self, transaction: ev.Transaction) -> None:
        for account, report in self.maker.reports(transaction):
            self._send_to(account, report)
        for envelope in transaction.events:
            self._answer_quote(envelope)
        if transaction.events:
            self._reported = transaction.events[-1].seq

    def _answer_quote(self, envelope: ev.Envelope) -> None:
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
        sent = fix.Session.sendToTarget(delivery.to_quickfix(report),
                                        self.bridge.sessions[session])
        if not sent:
            log.error("fix report not stored", session=session, msg_type=report.msg_type)

    # --- catching up after a restart -----------------------------------------------------------

    def _catch_up(self) -> None:
        journal = self.runtime.sequencer.journal
        checkpoint = delivery.read_checkpoint(self.settings.store)
        marks = {account: max(checkpoint, delivery.last_event_seq(self.settings.store,
                                                                  self.bridge.sessions[key]))
                 for account, key in self._session_of_account.items()}
        self._reported = self._checkpointed = self.engine.last_seq
        if journal is None or not marks or min(marks.values()) >= self.engine.last_seq:
            return
        sent = 0
        for transaction in journal.transactions_since(min(marks.values())):
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

    def _checkpoint(self) -> None:
        if self._reported != self._checkpointed:
            delivery.write_checkpoint(self.settings.store, self._reported)
            self._checkpointed = self._reported


def _body(msg: Received) -> tuple[tuple[int, str], ...]:
    return tuple((t, v) for t, v in msg.fields if t not in delivery.HEADER_AND_TRAILER)
