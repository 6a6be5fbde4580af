"""``fix-client``: run a script of orders against the FIX gateway.

The script (``--script FILE``, or stdin so it can be piped) is read and checked whole before
connecting, so a bad line sends nothing. One command per line, ``#`` starts a comment::

    order <ClOrdID> <symbol> <cash> [limit <price>] [slippage <percent>] [tif <0|1|3|6>]
          [expire <YYYYMMDD-HH:MM:SS>] [fee <bps>]
    cancel <ClOrdID> <OrigClOrdID> <symbol>
    replace <ClOrdID> <OrigClOrdID> <symbol> <cash> [limit <price>]
    quote <QuoteReqID> <symbol> <cash>
    collateral <CollInquiryID>
    wait <ClOrdID> <filled|canceled|expired|rejected|minted|done>

``wait`` also counts reports that arrived before it; ``done`` is any terminal state or the mint.

With ``--wallet-key-env VAR`` and ``--chain FILE`` (the file ``index-solver chain deploy --out``
wrote) every order is signed by the wallet whose key ``$VAR`` holds (docs/fix-gateway.md,
"Signed orders"): ``limit`` is the most per index unit, fees included; ``slippage 0.5%`` signs
the last quote's price for the symbol (``quote`` it and ``wait`` for it first) with the fee
bound and that much more; the deadline is ``expire`` or an hour from now; ``fee`` is the fee
bound signed (default 50 bps).
Without ``--store`` there are no seqnums to resume, so the Logon resets both sides to 1.
Every application message received is printed as one line. Exit status: 0 the script ran and
the logout was answered, 1 a wait timed out or the session was lost, 2 a bad script line or a
refused (or failed) logon.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from pathlib import Path

import simplefix

from mocks.fix_client import messages
from mocks.fix_client.session import FixClient, LogonRefused, SessionConfig
from mocks.fix_client.wallet import Vault, Wallet
from solver.plumbing.logs import configure_json_logs

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_FEE_BPS = 50
SIGNED_FOR = timedelta(hours=1)
WAIT_STATES = ("filled", "canceled", "expired", "rejected", "minted", "done")
TIME_IN_FORCE = ("0", "1", "3", "6")


@dataclass(slots=True)
class Context:
    """What a message is built from besides its line: the wallet that signs orders, and the
    last quote's price per symbol."""
    wallet: Wallet | None = None
    quotes: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Send:
    """A command that sends one message, built when it runs (TransactTime is then)."""
    line: int
    build: Callable[[Context], simplefix.FixMessage]


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
        return Send(n, lambda _: messages.cancel(a[0], a[1], a[2]))
    if verb == "replace":
        return _replace(n, args)
    if verb == "quote":
        a = _arity(n, args, 3, "quote <QuoteReqID> <symbol> <cash>")
        cash = _decimal(n, a[2], "cash")
        return Send(n, lambda _: messages.quote_request(a[0], a[1], cash))
    if verb == "collateral":
        a = _arity(n, args, 1, "collateral <CollInquiryID>")
        return Send(n, lambda _: messages.collateral_inquiry(a[0]))
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
    return Send(n, lambda _: messages.replace(args[0], args[1], args[2], cash,
                                            ord_type="1" if price is None else "2",
                                            price=price))


def _order(n: int, args: list[str]) -> Send:
    usage = ("order <ClOrdID> <symbol> <cash> [limit <price>] [slippage <percent>] "
             "[tif <0|1|3|6>] [expire <YYYYMMDD-HH:MM:SS>] [fee <bps>]")
    if len(args) < 3 or len(args) % 2 == 0:
        raise ScriptError(n, f"expected: {usage}")
    cl_ord_id, symbol, cash = args[0], args[1], _decimal(n, args[2], "cash")
    options = dict(zip(args[3::2], args[4::2], strict=True))
    if unknown := set(options) - {"limit", "slippage", "tif", "expire", "fee"}:
        raise ScriptError(n, f"unknown option {sorted(unknown)[0]!r}; expected: {usage}")
    if len(options) != len(args[3::2]):
        raise ScriptError(n, "an option is given twice")
    price = _decimal(n, options["limit"], "limit price") if "limit" in options else None
    slippage = _percent(n, options["slippage"]) if "slippage" in options else None
    if price is not None and slippage is not None:
        raise ScriptError(n, "give limit or slippage, not both")
    fee = _bps(n, options.get("fee", str(DEFAULT_FEE_BPS)))
    tif = options.get("tif", "6" if "expire" in options else None)
    if tif is not None and tif not in TIME_IN_FORCE:
        raise ScriptError(n, f"tif must be one of {', '.join(TIME_IN_FORCE)}, not {tif!r}")
    expire = options.get("expire")
    deadline = None if expire is None else _moment(n, expire)

    def build(context: Context) -> simplefix.FixMessage:
        if context.wallet is None:
            if slippage is not None:
                raise ScriptError(n, "slippage is for signed orders (--wallet-key-env)")
            return messages.new_order(cl_ord_id, symbol, cash,
                                      ord_type="1" if price is None else "2", price=price,
                                      time_in_force=tif, expire_time=expire)
        limit = price if slippage is None else _slipped(n, context, symbol, slippage, fee)
        if limit is None:
            raise ScriptError(n, "a signed order needs limit <price> or slippage <percent>")
        signed = context.wallet.sign(cl_ord_id, symbol, cash, limit,
                                     deadline or datetime.now(UTC) + SIGNED_FOR, fee)
        return messages.new_order(cl_ord_id, symbol, cash, signed=signed)
    return Send(n, build)


def _slipped(n: int, context: Context, symbol: str, slippage: Decimal, fee: int) -> Decimal:
    """The last quote's price with the fee bound and ``slippage`` on top, rounded down to
    the collateral's decimals."""
    quoted = context.quotes.get(symbol)
    if quoted is None:
        raise ScriptError(n, f"slippage needs a quote of {symbol} answered first (quote it, "
                             "then wait for the quote's id to be done)")
    assert context.wallet is not None
    limit = quoted * (1 + Decimal(fee) / 10_000) * (1 + slippage / 100)
    return limit.quantize(Decimal(1).scaleb(-context.wallet.vault.decimals), ROUND_DOWN)


def _percent(n: int, text: str) -> Decimal:
    value = _decimal(n, text.removesuffix("%"), "slippage")
    if value >= 100:
        raise ScriptError(n, f"slippage is a percentage below 100, not {text!r}")
    return value


def _bps(n: int, text: str) -> int:
    if not text.isdigit() or int(text) > 10_000:
        raise ScriptError(n, f"fee is a whole number of basis points, 0 to 10000, not {text!r}")
    return int(text)


def _moment(n: int, text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise ScriptError(n, f"expire must be YYYYMMDD-HH:MM:SS (UTC), not {text!r}") from None


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

    def __init__(self, context: Context) -> None:
        self.reached: defaultdict[str, set[str]] = defaultdict(set)
        self.count = 0
        self.context = context
        self._changed = asyncio.Event()

    def record(self, msg: simplefix.FixMessage) -> None:
        for key, state in states_of(msg):
            self.reached[key].add(state)
        if msg.get(35) == b"S" and msg.get(133) is not None:
            self.context.quotes[(msg.get(55) or b"").decode()] = Decimal(msg.get(133).decode())
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
    parser.add_argument("--wallet-key-env", metavar="VAR",
                        help="environment variable holding the wallet's private key: every "
                             "order is signed (with --chain)")
    parser.add_argument("--chain", type=Path, metavar="FILE",
                        help="the chain deployment file (index-solver chain deploy --out): "
                             "the vault and the index tokens orders are signed for")
    parser.add_argument("--collateral-decimals", type=int, default=6,
                        help="the collateral's decimals (USDC: 6)")


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
    try:
        wallet = _wallet(args)
    except (OSError, ValueError, KeyError) as error:
        print(f"fix-client: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    configure_json_logs(logging.INFO if args.verbose else logging.WARNING)
    config = SessionConfig(args.host, args.port, args.account, args.target,
                           username=args.account, password=os.environ.get(args.password_env),
                           heartbeat_s=args.heartbeat, store_dir=args.store,
                           reset_seq_num=args.reset or args.store is None)
    return asyncio.run(_session(config, commands, args.timeout, Context(wallet)))


def _wallet(args: argparse.Namespace) -> Wallet | None:
    """The wallet that signs every order, if one is named."""
    if args.wallet_key_env is None and args.chain is None:
        return None
    if args.wallet_key_env is None or args.chain is None:
        raise ValueError("signing orders takes both --wallet-key-env and --chain")
    key = os.environ.get(args.wallet_key_env)
    if not key:
        raise ValueError(f"--wallet-key-env: ${args.wallet_key_env} is not set")
    chain = json.loads(args.chain.read_text())
    vault = Vault(int(chain["chain_id"]), chain["vault"], dict(chain["index_tokens"]),
                  args.collateral_decimals)
    return Wallet(key, vault)


async def _session(config: SessionConfig, commands: list[Command], timeout: float,
                   context: Context) -> int:
    client = FixClient(config)
    try:
        await client.connect(timeout)
    except LogonRefused as refused:
        return _fail(f"logon refused: {refused.text}", EXIT_BAD_INPUT)
    except (OSError, TimeoutError) as error:
        return _fail(f"cannot log on to {config.host}:{config.port}: {error!r}", EXIT_BAD_INPUT)
    tracker = _Tracker(context)
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
            try:
                message = command.build(tracker.context)
            except ScriptError as error:
                return _fail(str(error), EXIT_BAD_INPUT)
            await client.send(message)
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
