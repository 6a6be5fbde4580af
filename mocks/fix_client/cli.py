"""``fix-client``: run a script of orders against the FIX gateway.

The script (``--script FILE``, or stdin so it can be piped) is read and checked whole before
connecting, so a bad line sends nothing. One command per line, ``#`` starts a comment::

    order <ClOrdID> <symbol> <cash> [limit <price>] [tif <0|1|3|6>] [expire <YYYYMMDD-HH:MM:SS>]
    cancel <ClOrdID> <OrigClOrdID> <symbol>
    replace <ClOrdID> <OrigClOrdID> <symbol> <cash> [limit <price>]
    quote <QuoteReqID> <symbol> <cash>
    collateral <CollInquiryID>
    wait <ClOrdID> <filled|canceled|expired|rejected|minted|done>

``wait`` also counts reports that arrived before it; ``done`` is any terminal state or the mint.
Without ``--store`` there are no seqnums to resume, so the Logon resets both sides to 1.
Every application message received is printed as one line. Exit status: 0 the script ran and
the logout was answered, 1 a wait timed out or the session was lost, 2 a bad script line or a
refused (or failed) logon.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import simplefix

from mocks.fix_client import messages
from mocks.fix_client.session import FixClient, LogonRefused, SessionConfig
from solver.plumbing.logs import configure_json_logs

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
WAIT_STATES = ("filled", "canceled", "expired", "rejected", "minted", "done")
TIME_IN_FORCE = ("0", "1", "3", "6")


@dataclass(frozen=True, slots=True)
class Send:
    """A command that sends one message, built when it runs (TransactTime is then)."""
    line: int
    build: Callable[[], simplefix.FixMessage]


@dataclass(frozen=True, slots=True)
class Wait:
    line: int
    key: str
    state: str


Command = Send | Wait


class ScriptError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


# -- parsing ---------------------------------------------------------------------------------

def parse_script(lines: Iterable[str]) -> list[Command]:
    commands: list[Command] = []
    for number, text in enumerate(lines, start=1):
        words = text.split("#", 1)[0].split()
        if words:
            commands.append(_parse_line(number, words))
    return commands


def _parse_line(n: int, words: list[str]) -> Command:
    verb, args = words[0], words[1:]
    if verb == "order":
        return _order(n, args)
    if verb == "cancel":
        a = _arity(n, args, 3, "cancel <ClOrdID> <OrigClOrdID> <symbol>")
        return Send(n, lambda: messages.cancel(a[0], a[1], a[2]))
    if verb == "replace":
        return _replace(n, args)
    if verb == "quote":
        a = _arity(n, args, 3, "quote <QuoteReqID> <symbol> <cash>")
        cash = _decimal(n, a[2], "cash")
        return Send(n, lambda: messages.quote_request(a[0], a[1], cash))
    if verb == "collateral":
        a = _arity(n, args, 1, "collateral <CollInquiryID>")
        return Send(n, lambda: messages.collateral_inquiry(a[0]))
    if verb == "wait":
        a = _arity(n, args, 2, f"wait <ClOrdID> <{'|'.join(WAIT_STATES)}>")
        if a[1] not in WAIT_STATES:
            raise ScriptError(n, f"unknown state {a[1]!r}, expected one of {WAIT_STATES}")
        return Wait(n, a[0], a[1])
    raise ScriptError(n, f"unknown command {verb!r}")


def _replace(n: int, args: list[str]) -> Send:
    """A limit order's replace keeps its OrdType(40)=2 and names its Price(44) again."""
    usage = "replace <ClOrdID> <OrigClOrdID> <symbol> <cash> [limit <price>]"
    if len(args) not in (4, 6) or (len(args) == 6 and args[4] != "limit"):
        raise ScriptError(n, f"expected: {usage}")
    cash = _decimal(n, args[3], "cash")
    price = _decimal(n, args[5], "limit price") if len(args) == 6 else None
    return Send(n, lambda: messages.replace(args[0], args[1], args[2], cash,
                                            ord_type="1" if price is None else "2",
                                            price=price))


def _order(n: int, args: list[str]) -> Send:
    usage = ("order <ClOrdID> <symbol> <cash> [limit <price>] [tif <0|1|3|6>] "
             "[expire <YYYYMMDD-HH:MM:SS>]")
    if len(args) < 3 or len(args) % 2 == 0:
        raise ScriptError(n, f"expected: {usage}")
    cl_ord_id, symbol, cash = args[0], args[1], _decimal(n, args[2], "cash")
    options = dict(zip(args[3::2], args[4::2], strict=True))
    if unknown := set(options) - {"limit", "tif", "expire"}:
        raise ScriptError(n, f"unknown option {sorted(unknown)[0]!r}; expected: {usage}")
    if len(options) != len(args[3::2]):
        raise ScriptError(n, "an option is given twice")
    price = _decimal(n, options["limit"], "limit price") if "limit" in options else None
    tif = options.get("tif", "6" if "expire" in options else None)
    if tif is not None and tif not in TIME_IN_FORCE:
        raise ScriptError(n, f"tif must be one of {', '.join(TIME_IN_FORCE)}, not {tif!r}")
    expire = options.get("expire")
    if expire is not None:
        try:
            datetime.strptime(expire, "%Y%m%d-%H:%M:%S")
        except ValueError:
            raise ScriptError(n, f"expire must be YYYYMMDD-HH:MM:SS (UTC), not {expire!r}") \
                from None
    return Send(n, lambda: messages.new_order(
        cl_ord_id, symbol, cash, ord_type="1" if price is None else "2", price=price,
        time_in_force=tif, expire_time=expire))


def _arity(n: int, args: list[str], count: int, usage: str) -> list[str]:
    if len(args) != count:
        raise ScriptError(n, f"expected: {usage}")
    return args


def _decimal(n: int, text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ScriptError(n, f"{what} must be a number, not {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise ScriptError(n, f"{what} must be positive, not {text!r}")
    return value


# -- order states ------------------------------------------------------------------------------

_EXEC_STATES = {"F": None, "4": "canceled", "C": "expired", "8": "rejected", "B": "minted"}


def states_of(msg: simplefix.FixMessage) -> list[tuple[str, str]]:
    """(id, state) pairs a message establishes: ids are ClOrdIDs (and quote/inquiry ids)."""
    def ids(*tags: int) -> list[str]:
        return [v.decode() for t in tags if (v := msg.get(t)) is not None]
    kind = msg.get(35)
    if kind == b"8":
        state = _EXEC_STATES.get((msg.get(150) or b"").decode())
        state = state or messages.TERMINAL_STATUSES.get((msg.get(39) or b"").decode())
        return [(key, state) for key in ids(11, 41)] if state else []
    found = {b"9": (ids(11), "rejected"), b"j": (ids(379), "rejected"),
             b"AG": (ids(131), "rejected"), b"S": (ids(131), "done"),
             b"BA": (ids(909), "done"), b"BG": (ids(909), "done")}.get(kind or b"")
    return [(key, found[1]) for key in found[0]] if found else []


class _Tracker:
    """States reached per id, and a wake-up for whoever waits on them."""

    def __init__(self) -> None:
        self.reached: defaultdict[str, set[str]] = defaultdict(set)
        self.count = 0
        self._changed = asyncio.Event()

    def record(self, msg: simplefix.FixMessage) -> None:
        for key, state in states_of(msg):
            self.reached[key].add(state)
        self.count += 1
        self.poke()

    def poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()   # waiters hold the old one, already set

    def has(self, key: str, state: str) -> bool:
        reached = self.reached.get(key, set())
        return state in reached or (state == "done" and bool(reached))

    async def until(self, done: Callable[[], bool], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            try:
                await asyncio.wait_for(self._changed.wait(), deadline - loop.time())
            except TimeoutError:
                return False
        return True


# -- running ---------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--account", required=True, help="our SenderCompID and Username")
    parser.add_argument("--target", default="SOLVER", help="the gateway's CompID")
    parser.add_argument("--password-env", default="FIX_PASSWORD", metavar="VAR",
                        help="environment variable holding the password (never on argv)")
    parser.add_argument("--store", type=Path, metavar="DIR",
                        help="persist sequence numbers in DIR (default: none; the Logon then "
                             "resets both sides to 1, as --reset does)")
    parser.add_argument("--reset", action="store_true",
                        help="send ResetSeqNumFlag(141)=Y on Logon: both sides start at 1")
    parser.add_argument("--script", type=Path, metavar="FILE",
                        help="commands to run (default: read stdin)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds for logon, each wait and logout")
    parser.add_argument("--heartbeat", type=int, default=30, help="HeartBtInt in seconds")
    parser.add_argument("--verbose", action="store_true", help="session events on stderr")


def main(argv: Sequence[str] | None = None) -> int:
    """``fix-client``: a FIX 4.4 client that sends orders, cancels and quotes from a script
    and prints the reports."""
    parser = argparse.ArgumentParser(prog="fix-client", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    source = str(args.script) if args.script else "<stdin>"
    try:
        text = args.script.read_text() if args.script else sys.stdin.read()
        commands = parse_script(text.splitlines())
    except ScriptError as error:
        print(f"fix-client: {source}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(f"fix-client: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    configure_json_logs(logging.INFO if args.verbose else logging.WARNING)
    config = SessionConfig(args.host, args.port, args.account, args.target,
                           username=args.account, password=os.environ.get(args.password_env),
                           heartbeat_s=args.heartbeat, store_dir=args.store,
                           reset_seq_num=args.reset or args.store is None)
    return asyncio.run(_session(config, commands, args.timeout))


async def _session(config: SessionConfig, commands: list[Command], timeout: float) -> int:
    client = FixClient(config)
    try:
        await client.connect(timeout)
    except LogonRefused as refused:
        return _fail(f"logon refused: {refused.text}", EXIT_BAD_INPUT)
    except (OSError, TimeoutError) as error:
        return _fail(f"cannot log on to {config.host}:{config.port}: {error!r}", EXIT_BAD_INPUT)
    tracker = _Tracker()
    tasks = [asyncio.create_task(_print_messages(client, tracker)),
             asyncio.create_task(_poke_when_closed(client, tracker))]
    try:
        status = await _execute(client, tracker, commands, timeout)
        if client.logged_on:    # barrier: print whatever answers are still on their way
            await client.test_request(timeout)
            await tracker.until(lambda: tracker.count >= len(client.received), timeout)
    except (ConnectionError, TimeoutError) as error:
        status = _fail(f"session lost: {client.close_reason or error!r}", EXIT_FAILED)
    finally:
        for task in tasks:
            task.cancel()
    if client.logged_on and not await client.logout(timeout=timeout) and status == EXIT_OK:
        status = _fail("the gateway did not answer the logout", EXIT_FAILED)
    return status


async def _execute(client: FixClient, tracker: _Tracker, commands: list[Command],
                   timeout: float) -> int:
    for command in commands:
        if not client.logged_on:
            return _fail(f"session lost before line {command.line}: {client.close_reason}",
                         EXIT_FAILED)
        if isinstance(command, Send):
            await client.send(command.build())
            continue
        if not await _wait(client, tracker, command, timeout):
            if not client.logged_on:  # logged out (the service stopping): said at once
                return _fail(f"line {command.line}: the session ended before {command.key} "
                             f"was {command.state}: {client.close_reason}", EXIT_FAILED)
            return _fail(f"line {command.line}: {command.key} not {command.state} within "
                         f"{timeout:g} s", EXIT_FAILED)
    return EXIT_OK


async def _wait(client: FixClient, tracker: _Tracker, wait: Wait, timeout: float) -> bool:
    def settled() -> bool:
        return tracker.has(wait.key, wait.state) or not client.logged_on
    return await tracker.until(settled, timeout) and tracker.has(wait.key, wait.state)


async def _print_messages(client: FixClient, tracker: _Tracker) -> None:
    while True:
        try:
            msg = await client.next_message(timeout=3600)
        except TimeoutError:
            continue
        print(messages.describe(msg), flush=True)
        tracker.record(msg)


async def _poke_when_closed(client: FixClient, tracker: _Tracker) -> None:
    await client.closed()
    tracker.poke()


def _fail(message: str, status: int) -> int:
    print(f"fix-client: {message}", file=sys.stderr)
    return status
