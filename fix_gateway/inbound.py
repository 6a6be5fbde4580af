"""Inbound: each application message becomes an engine command, or replies instead.

Messages arrive on the loop in the inbound log's order (see ``inbound_log``). A command is
submitted and kept in flight under what names it (``Origin``) until the transaction that
applies it ends; then, or once its replies are sent, its record is marked handled. At start-up
what the log kept but had not seen handled is handled again (``replay``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import structlog

from fix_gateway import delivery, queries, reports, requests
from fix_gateway.account_view import AccountView
from fix_gateway.dictionary import field_name
from fix_gateway.inbound_log import InboundLog, Mark
from fix_gateway.outbound import Outbound
from fix_gateway.port import Solver
from fix_gateway.sessions import Routes
from fix_gateway.signing import OrderSigning
from fix_gateway.tags import CL_ORD_ID, POSS_DUP_FLAG, POSS_RESEND, QUOTE_REQ_ID
from fix_gateway.wire import Outgoing, Received, Replies
from solver.core import events as ev
from solver.core.commands import (
    CancelIndexOrder,
    Input,
    ReduceIndexOrder,
    RequestQuote,
    SubmitIndexOrder,
)

log = structlog.get_logger(__name__)

Origin = tuple[str, str, str]
"""What names a command a client asked for: its kind, account and id."""

FAILED_TEXT = "the gateway could not process this message; it changed nothing"


class Inbound:
    def __init__(self, solver: Solver, view: AccountView, inbound_log: InboundLog,
                 routes: Routes, outbound: Outbound, room_made: Callable[[], None],
                 signing: OrderSigning | None = None) -> None:
        self.closing = False  # shutting down: no new orders, the rest still served
        self._signing = signing
        self._solver = solver
        self._view = view
        self._log = inbound_log
        self._routes = routes
        self._outbound = outbound
        self._room_made = room_made
        self._collaterals = sorted(solver.engine.collaterals)
        self._in_flight: dict[Origin, list[tuple[Input, Received]]] = {}
        """Commands submitted and not yet journaled, each with the message that asked for it
        (a duplicate ClOrdID queues behind the first)."""
        self._done: set[int] = set()
        self._echoed: set[str] = set()
        # Records matched while replaying must not move the mark's transaction past
        # journaled commands of records still after it: until a transaction ends, the mark's.
        self._last_ended = inbound_log.mark.transaction

    def on_message(self, msg: Received) -> None:
        """On the loop: act on one application message, in the inbound log's order."""
        try:
            self._act(msg, self._decide(msg))
        except Exception:
            log.exception("fix message failed", session=msg.session, msg_type=msg.msg_type)
            self._outbound.send(msg.session, reports.business_reject(msg, "0", FAILED_TEXT))
            self._handled(msg.number)

    def transaction_ended(self, transaction: ev.Transaction) -> None:
        """The bus: the message that asked for ``transaction``'s input is handled."""
        self._last_ended = transaction.number
        asked = self._taken(transaction.input)
        if asked is not None:
            if transaction.of_type(ev.InputFailed):
                self._answer_failed(asked)
            self._handled(asked.number)

    def refused(self, command: Input, reason: str) -> None:
        """The writer refused a command before the engine saw it: answer, and move on."""
        asked = self._taken(command)
        if asked is not None:
            self._answer_failed(asked)
            self._handled(asked.number)

    def logged_out(self, session: str) -> None:
        """On the loop: a session logged out."""
        if session == self._routes.echo_session:
            self._echoed.clear()

    def replay(self) -> None:
        """Handle again the messages the inbound log kept but had not seen handled, except
        those whose commands the journal holds: every client command journaled after the
        mark's transaction came from a record after the mark. Each such command is matched
        with the first record asking for it (judged as if it came first: a copy may have been
        the first to arrive), so a mismatch cannot spread. Numbers missing from the log (a
        failed or torn write) have nothing to redo."""
        records = self._log.unhandled()
        kept = {r.number for r in records}
        for number in range(self._log.mark.record + 1, self._log.next_number):
            if number not in kept:
                self._handled(number)
        if not records:
            return  # the journal's tail since the mark need not be read
        applied = Counter(origin for t in self._solver.transactions_after(
            self._log.mark.transaction) if (origin := origin_of(t.input)) is not None)
        replayed = 0
        for record in records:
            msg = Received.parse(record.session, record.text, record.number)
            origin = self._asked_origin(msg)
            if origin is not None and applied[origin] > 0:
                applied[origin] -= 1
                self._handled(record.number)
            elif record.session in self._routes.account_of_session:
                self.on_message(msg)
                replayed += 1
            else:  # the echo session, or one no longer configured
                self._handled(record.number)
        log.info("fix inbound replayed", unhandled=len(records), replayed=replayed,
                 mark=self._log.mark.record)

    def _decide(self, msg: Received, copies: bool = True) -> Input | Replies:
        """The engine command a message asks for, or the replies it gets instead.
        ``copies``: a copy (PossDup, PossResend) of what was already taken is answered as one;
        without, the message is judged as if it came first."""
        if msg.session == self._routes.echo_session:
            return self._echo(msg)
        bad = msg.bad_field()
        if bad is not None:
            tag, problem = bad
            return (reports.business_reject(
                msg, "0", f"{field_name(tag)} {problem}; the message changed nothing"),)
        account, now = self._routes.account_of_session[msg.session], self._solver.clock()
        if copies and msg.msg_type in ("D", "F", "G"):
            taken = self._already_taken(msg, account)
            if taken is not None:
                return taken
        if self.closing and msg.msg_type in ("D", "G"):
            return (self._closing_refusal(msg, account),)
        decision: Input | Outgoing | Replies
        match msg.msg_type:
            case "D":
                decision = requests.new_order(msg, account, now, self._signing)
            case "F":
                decision = requests.cancel(msg, account, self._view, now)
            case "G":
                decision = requests.replace(msg, account, self._view, now)
            case "R":
                decision = requests.quote_request(msg, f"q{msg.number}", now)
            case "BB":
                return queries.collateral_inquiry(msg, account, self._view, self._collaterals)
            case "H":
                return queries.order_status(msg, account, self._view, now)
            case "AF":
                return queries.mass_status(msg, account, self._view, now)
            case _:
                decision = reports.business_reject(
                    msg, "3", f"MsgType {msg.msg_type} is not supported by this gateway")
        return (decision,) if isinstance(decision, Outgoing) else decision

    def _closing_refusal(self, msg: Received, account: str) -> Outgoing:
        text = "the service is shutting down: send it again once it is back"
        if msg.msg_type == "D":
            return reports.order_refused(msg, requests.EXCHANGE_CLOSED, text)
        return reports.cancel_refused(msg, self._view, account, requests.OTHER, text)

    def _act(self, msg: Received, decision: Input | Replies) -> None:
        if isinstance(decision, tuple):
            for reply in decision:
                self._outbound.send(msg.session, reply)
            self._handled(msg.number)
            return
        if isinstance(decision, RequestQuote):
            self._outbound.expect_quote(decision.quote_id, msg.session,
                                        msg.get(QUOTE_REQ_ID) or "",
                                        decision.index in self._solver.engine.indexes)
        origin = origin_of(decision)
        assert origin is not None, f"a client message asked for {decision!r}"
        self._in_flight.setdefault(origin, []).append((decision, msg))
        self._solver.submit(decision)

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
        body = tuple((t, v) for t, v in msg.fields if t not in delivery.HEADER_AND_TRAILER)
        return (Outgoing(msg.msg_type, body, ((POSS_RESEND, "Y"),) if resend else ()),)

    def _already_taken(self, msg: Received, account: str) -> Replies | None:
        """A PossDup(43) or PossResend(97) copy of an order or request already taken gets
        the order's status, or nothing while the original is still on its way to the engine
        (its own reports answer it); anything else is new."""
        if "Y" not in (msg.get(POSS_DUP_FLAG), msg.get(POSS_RESEND)):
            return None
        name = msg.get(CL_ORD_ID) or ""
        order = self._view.order(account, name)
        if order is not None:
            return (reports.status(order, self._solver.clock()),)
        origin = ("order" if msg.msg_type == "D" else "request", account, name)
        return () if origin in self._in_flight else None

    def _taken(self, command: Input) -> Received | None:
        """The message that asked for ``command``, no longer in flight; None if no client
        message asked for it."""
        origin = origin_of(command)
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

    def _answer_failed(self, msg: Received) -> None:
        log.error("fix message refused by the writer", session=msg.session,
                  msg_type=msg.msg_type, record=msg.number)
        self._outbound.send(msg.session, reports.business_reject(msg, "0", FAILED_TEXT))

    def _handled(self, number: int) -> None:
        """Record ``number`` is journaled or answered: move the inbound mark past it."""
        mark = self._log.mark.record
        if number <= mark:
            return
        self._done.add(number)
        while mark + 1 in self._done:
            mark += 1
            self._done.remove(mark)
        if mark != self._log.mark.record:
            self._log.set_mark(Mark(mark, self._last_ended))
            self._room_made()

    def _asked_origin(self, msg: Received) -> Origin | None:
        """The origin of the command a kept message asked for, if it asked for one."""
        if msg.session not in self._routes.account_of_session:
            return None
        try:
            decision = self._decide(msg, copies=False)
        except Exception:
            return None  # handling it again answers it
        return None if isinstance(decision, tuple) else origin_of(decision)


def origin_of(command: Input) -> Origin | None:
    """What names a command that a client message asked for: its kind, account and id."""
    match command:
        case SubmitIndexOrder():
            return ("order", command.account, command.client_order_id)
        case CancelIndexOrder() | ReduceIndexOrder():
            return ("request", command.account, command.request_id)
        case RequestQuote():
            return ("quote", "", command.quote_id)
    return None
