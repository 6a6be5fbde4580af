"""Outbound: every committed transaction becomes reports for the accounts it concerns.

Each is sent with ``Session.sendToTarget``: QuickFIX stores it before writing it, so a client
that was away gets it on logon by resend (PossDup). At start-up what the journal holds beyond
what each session's store shows was sent goes out first (``catch_up``); a checkpoint file
bounds how far back that looks (see ``delivery``).
"""

from __future__ import annotations

import quickfix as fix
import structlog

from fix_gateway import delivery, reports
from fix_gateway.bridge import Bridge
from fix_gateway.config import FixSettings
from fix_gateway.port import Solver
from fix_gateway.sessions import Routes
from fix_gateway.tags import EVENT_SEQ_NUM
from fix_gateway.wire import Outgoing
from solver.core import events as ev

log = structlog.get_logger(__name__)


class Outbound:
    def __init__(self, settings: FixSettings, maker: reports.ReportMaker, bridge: Bridge,
                 routes: Routes) -> None:
        self.maker = maker
        self.sending = False  # QuickFIX's thread tears sessions down while it stops
        self._store = settings.store
        self._bridge = bridge
        self._routes = routes
        self._quotes: dict[str, tuple[str, str, bool]] = {}
        self._reported = 0
        self._checkpointed = 0

    def report(self, transaction: ev.Transaction) -> None:
        """Send what ``transaction`` tells each account, and answer the quotes it issued."""
        if not self.sending:
            return
        try:
            for account, report in self.maker.reports(transaction):
                self.send_to(account, report)
            for envelope in transaction.events:
                self._answer_quote(envelope)
        except Exception:
            log.exception("fix reports failed", transaction=transaction.number)
            return  # not checkpointed: the next start sends what the store does not show
        if transaction.events:
            self._reported = transaction.events[-1].seq

    def expect_quote(self, quote_id: str, session: str, quote_req_id: str,
                     known: bool) -> None:
        """A QuoteRequest became ``quote_id``: answer ``session`` when it is issued."""
        self._quotes[quote_id] = (session, quote_req_id, known)

    def send_to(self, account: str, report: Outgoing) -> None:
        session = self._routes.session_of_account.get(account)
        if session is not None:
            self.send(session, report)

    def send(self, session: str, report: Outgoing) -> None:
        if not self.sending:
            log.warning("fix message not sent: the gateway is stopping", session=session,
                        msg_type=report.msg_type)
            return
        sent = fix.Session.sendToTarget(delivery.to_quickfix(report),
                                        self._bridge.sessions[session])
        if not sent:
            log.error("fix report not stored", session=session, msg_type=report.msg_type)

    def catch_up(self, solver: Solver) -> None:
        """Send each account what the journal holds beyond what its session's store shows
        was sent."""
        checkpoint = delivery.read_checkpoint(self._store)
        marks = {account: max(checkpoint, delivery.last_event_seq(
                     self._store, self._bridge.sessions[key]))
                 for account, key in self._routes.session_of_account.items()}
        last_seq = solver.engine.last_seq
        self._reported = self._checkpointed = last_seq
        if not marks or min(marks.values()) >= last_seq:
            return
        sent = 0
        for transaction in solver.transactions_since(min(marks.values())):
            for account, report in self.maker.reports(transaction):
                if int(report.get(EVENT_SEQ_NUM) or 0) > marks.get(account, 2**63):
                    self.send_to(account, report)
                    sent += 1
        log.info("fix reports caught up", sent=sent, from_seq=min(marks.values()))
        self.checkpoint()

    def checkpoint(self) -> None:
        """Record the last event reported, if it moved."""
        if self._reported != self._checkpointed:
            delivery.write_checkpoint(self._store, self._reported)
            self._checkpointed = self._reported

    def _answer_quote(self, envelope: ev.Envelope[ev.Event]) -> None:
        event = envelope.event
        if not isinstance(event, ev.QuoteIssued | ev.QuoteRejected):
            return
        asked = self._quotes.pop(event.quote_id, None)
        if asked is None:
            return  # asked before a restart: a quote is not worth resending
        session, quote_req_id, known = asked
        self.send(session, self.maker.quote(event, quote_req_id, envelope.seq, envelope.ts)
                  if isinstance(event, ev.QuoteIssued)
                  else self.maker.quote_rejected(event, quote_req_id, known))
