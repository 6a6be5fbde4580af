"""The simplefix FIX client: its framing alone, and its session against a QuickFIX 1.16 acceptor."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import re
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import simplefix

from mocks.fix_client import (
    FixClient,
    Framer,
    LogonRefused,
    SessionConfig,
    cancel,
    collateral_inquiry,
    describe,
    new_order,
    quote_request,
    replace,
)
from mocks.fix_client import cli as fix_cli
from mocks.fix_client.messages import LEAVES_CASH_QTY, MINT_QTY, MINT_TX_HASH
from mocks.fix_client.wallet import Vault, Wallet
from solver.signed_orders import Domain, SignedOrder, signer
from tests.support.exchange import run, until

GATEWAY, CLIENT, PASSWORD = "SOLVER", "CLIENT1", "secret"
Pairs = tuple[tuple[int, str], ...]


def wire(seq: int, kind: str = "8", *pairs: tuple[int, str]) -> bytes:
    msg = simplefix.FixMessage()
    for tag, value in ((8, "FIX.4.4"), (35, kind), (34, str(seq)), *pairs):
        msg.append_pair(tag, value)
    return bytes(msg.encode())


def seqs(messages: list[simplefix.FixMessage]) -> list[int]:
    return [int(m.get(34)) for m in messages]


# -- framing, without a server -------------------------------------------------------------------

def test_two_messages_in_one_read_are_both_delivered() -> None:
    assert seqs(Framer().feed(wire(1) + wire(2))) == [1, 2]


def test_a_message_split_across_reads_is_joined() -> None:
    framer, data = Framer(), wire(1, "8", (58, "split")) + wire(2)
    got = [m for i in range(len(data)) for m in framer.feed(data[i:i + 1])]
    assert seqs(got) == [1, 2]
    assert got[0].get(58) == b"split"


def test_a_bad_checksum_is_dropped_and_the_next_message_kept() -> None:
    good = wire(1)
    bad = good[:-4] + b"%03d\x01" % ((int(good[-4:-1]) + 1) % 256)
    framer = Framer()
    assert seqs(framer.feed(bad + wire(2))) == [2]
    assert framer.dropped == 1


@pytest.mark.parametrize("length", [b"900", b"5"])     # far too long, far too short
def test_a_wrong_body_length_does_not_swallow_the_next_message(length: bytes) -> None:
    garbled = re.sub(rb"\x019=\d+", b"\x019=" + length, wire(1), count=1)
    assert garbled != wire(1)
    framer = Framer()
    assert seqs(framer.feed(b"noise" + garbled + wire(2) + wire(3))) == [2, 3]
    assert framer.dropped >= 2


# -- messages ------------------------------------------------------------------------------------

def test_builders_write_decimals_plainly_and_refuse_floats() -> None:
    order = new_order("o1", "SY10", Decimal("1E+3"), ord_type="2", price=Decimal("0.00001"),
                      currency="USDC", time_in_force="6", expire_time="20300101-00:00:00")
    assert (order.get(152), order.get(44), order.get(40), order.get(38)) == (
        b"1000", b"0.00001", b"2", None)
    with pytest.raises(TypeError):
        new_order("o2", "SY10", 1000.0)  # type: ignore[arg-type]
    group = quote_request("q1", "SY10", Decimal("250.5"))
    assert [tag for tag, _ in group][:6] == [35, 131, 146, 55, 54, 152]


def er(exec_type: str, status: str, *pairs: tuple[int, str]) -> simplefix.FixMessage:
    msg = simplefix.FixMessage()
    for tag, value in ((8, "FIX.4.4"), (35, "8"), (34, "5"), (11, "o1"), (150, exec_type),
                       (39, status), *pairs):
        msg.append_pair(tag, value)
    return msg


def test_describe_gives_one_readable_line() -> None:
    assert describe(er("0", "0", (14, "0"), (LEAVES_CASH_QTY, "1000"))) == (
        "ExecutionReport new ClOrdID=o1 CumQty=0 LeavesCashQty=1000")
    assert describe(er("F", "1", (32, "1.5"), (31, "100"))) == (
        "ExecutionReport partial-fill ClOrdID=o1 LastQty=1.5 LastPx=100")
    minted = er("B", "B", (MINT_QTY, "9.9"), (MINT_TX_HASH, "0xab"), (43, "Y"))
    assert describe(minted) == (
        "ExecutionReport minted ClOrdID=o1 MintQty=9.9 MintTxHash=0xab (PossDup)")
    reject = simplefix.FixMessage()
    for tag, value in ((35, "3"), (45, "7"), (373, "5"), (58, "Value is incorrect")):
        reject.append_pair(tag, value)
    assert describe(reject) == 'Reject RefSeqNum=7 SessionRejectReason=5 Text="Value is incorrect"'
    assert describe(collateral_inquiry("c1")) == "CollateralInquiry CollInquiryID=c1"


# -- the CLI script ------------------------------------------------------------------------------

def test_script_commands_parse() -> None:
    script = """# a comment
    order o1 SY10 1000 limit 101.5 tif 6 expire 20300101-12:00:00
    order o2 SY10 1000   # trailing comment
    cancel c1 o1 SY10
    replace r1 o2 SY10 500
    quote q1 SY10 250
    collateral k1
    wait o1 done
    replace r2 o1 SY10 800 limit 101.5
    """
    commands = fix_cli.parse_script(script.splitlines())
    assert [c.line for c in commands] == [2, 3, 4, 5, 6, 7, 8, 9]
    first = commands[0]
    assert isinstance(first, fix_cli.Send)
    order = first.build(fix_cli.Context())
    assert (order.get(40), order.get(44), order.get(59), order.get(126)) == (
        b"2", b"101.5", b"6", b"20300101-12:00:00")
    assert commands[-2] == fix_cli.Wait(8, "o1", "done")
    plain, limited = commands[3], commands[-1]
    assert isinstance(plain, fix_cli.Send) and isinstance(limited, fix_cli.Send)
    unsigned = fix_cli.Context()
    assert (plain.build(unsigned).get(40), plain.build(unsigned).get(44)) == (b"1", None)
    assert (limited.build(unsigned).get(40), limited.build(unsigned).get(44)) == (b"2", b"101.5")


@pytest.mark.parametrize(("line", "error"), [
    ("order o1 SY10", "expected: order"),
    ("order o1 SY10 -5", "cash must be positive"),
    ("order o1 SY10 1000 limit abc", "limit price must be a number"),
    ("order o1 SY10 1000 tif 9", "tif must be one of"),
    ("order o1 SY10 1000 expire 2030-01-01", "expire must be YYYYMMDD-HH:MM:SS"),
    ("order o1 SY10 1000 colour red", "unknown option 'colour'"),
    ("wait o1 finished", "unknown state 'finished'"),
    ("replace r1 o1 SY10 500 price 9", "expected: replace"),
    ("fly o1", "unknown command 'fly'"),
    ("order o1 SY10 1000 limit 5 slippage 1%", "give limit or slippage, not both"),
    ("order o1 SY10 1000 slippage 150%", "slippage is a percentage below 100"),
    ("order o1 SY10 1000 limit 5 fee 1.5", "fee is a whole number of basis points"),
])
def test_a_bad_script_line_is_named_by_its_number(line: str, error: str) -> None:
    with pytest.raises(fix_cli.ScriptError) as raised:
        fix_cli.parse_script(["# first", "collateral k1", line])
    assert raised.value.line == 3
    assert str(raised.value).startswith("line 3: ")
    assert error in str(raised.value)


ALICE_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
VAULT = Vault(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3",
              {"SY10": "0xa16E02E87b7454126E5E10d957A927A7F5B5d2be"})


def test_a_signed_order_carries_what_the_wallet_signed() -> None:
    """The client's own signature (mocks/fix_client/wallet.py) recovers to the wallet with the
    solver's implementation of the type; slippage signs the last quote's price with the fee
    bound and that much more, rounded down to the collateral's decimals."""
    wallet = Wallet(ALICE_KEY, VAULT)
    context = fix_cli.Context(wallet, {"SY10": Decimal("100")})
    limited, slipped = fix_cli.parse_script([
        "order o1 SY10 1000 limit 101.5 expire 20300101-12:00:00 fee 30",
        "order o2 SY10 1000 slippage 0.5%"])
    assert isinstance(limited, fix_cli.Send) and isinstance(slipped, fix_cli.Send)
    msg = limited.build(context)
    assert (msg.get(40), msg.get(44), msg.get(59), msg.get(126), msg.get(20031)) == (
        b"2", b"101.5", b"6", b"20300101-12:00:00", b"30")
    deadline = int(datetime(2030, 1, 1, 12, tzinfo=UTC).timestamp())
    order = SignedOrder(wallet.address, VAULT.tokens["SY10"], 1000 * 10**6, 101_500_000, 30,
                        deadline, "o1")
    signature = bytes.fromhex((msg.get(20030) or b"").decode()[2:])
    assert signer(order, Domain(VAULT.chain_id, VAULT.address), signature) == wallet.address
    assert slipped.build(context).get(44) == b"101.002500"  # 100 x 1.005 x 1.005
    with pytest.raises(fix_cli.ScriptError, match="needs a quote of SY10"):
        slipped.build(fix_cli.Context(wallet))


def cli_args(tmp_path: Path, script: str, port: int, *extra: str) -> argparse.Namespace:
    path = tmp_path / "script.txt"
    path.write_text(script)
    parser = argparse.ArgumentParser()
    fix_cli.add_arguments(parser)
    return parser.parse_args(["--port", str(port), "--account", CLIENT, "--script", str(path),
                              *extra])


def test_a_bad_script_exits_2_before_connecting(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert fix_cli.run(cli_args(tmp_path, "order o1 SY10 1000\nwait o1\n", 1)) == 2
    assert "script.txt: line 2: expected: wait" in capsys.readouterr().err


# -- the session rules, against a scripted peer ---------------------------------------------------

class Peer:
    """A scripted acceptor on loopback: the test writes its messages and reads the client's."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[simplefix.FixMessage] = asyncio.Queue()
        self.writer: asyncio.StreamWriter | None = None
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> Peer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer, framer = writer, Framer()
        while data := await reader.read(65536):
            for message in framer.feed(data):
                self.inbox.put_nowait(message)

    def send(self, seq: int, kind: str, *pairs: tuple[int, str]) -> None:
        assert self.writer is not None
        self.writer.write(wire(seq, kind, (49, GATEWAY), (52, "20300101-00:00:00.000"),
                               (56, CLIENT), *pairs))

    async def expect(self, kind: str) -> simplefix.FixMessage:
        message = await asyncio.wait_for(self.inbox.get(), 5)
        assert message.get(35) == kind.encode(), message.to_string(b"|")
        return message

    async def logon(self, client: FixClient, seq: int = 1) -> simplefix.FixMessage:
        """Let the client log on; the answer carries ``seq``. Returns the client's Logon."""
        connecting = asyncio.create_task(client.connect())
        ours = await self.expect("A")
        self.send(seq, "A", (98, "0"), (108, "30"))
        await connecting
        return ours

    async def barrier(self, client: FixClient, seq: int) -> None:
        """Answer the client's TestRequest with the Heartbeat numbered ``seq``."""
        waiting = asyncio.create_task(client.test_request())
        self.send(seq, "0", (112, (await self.expect("1")).get(112).decode()))
        await waiting


def scripted(test: Any) -> Any:
    """Run ``test(peer, client)`` against a fresh peer and a client with the given config."""
    def runner(**options: Any) -> None:
        async def main() -> None:
            peer = await Peer().start()
            client = FixClient(SessionConfig("127.0.0.1", peer.port, CLIENT, GATEWAY, **options))
            try:
                await test(peer, client)
            finally:
                client.drop()
                await peer.stop()
        run(main(), timeout=20)
    return runner


@scripted
async def gap_then_resend(peer: Peer, client: FixClient) -> None:
    await peer.logon(client, seq=5)                    # ahead: 1..4 are missing
    request = await peer.expect("2")
    assert (request.get(7), request.get(16)) == (b"1", b"0")
    peer.send(6, "8", (11, "o6"))                      # beyond the gap: dropped, resent below
    peer.send(1, "4", (43, "Y"), (122, "20300101-00:00:00.000"), (123, "Y"), (36, "3"))
    for seq in (3, 4):
        peer.send(seq, "8", (43, "Y"), (11, f"o{seq}"))
    peer.send(5, "4", (43, "Y"), (123, "Y"), (36, "6"))
    peer.send(6, "8", (43, "Y"), (11, "o6"))
    peer.send(4, "8", (43, "Y"), (11, "o4"))          # a duplicate resend: ignored
    await peer.barrier(client, 7)
    assert [m.get(11) for m in client.received] == [b"o3", b"o4", b"o6"]
    assert [(await client.next_message()).get(43) for _ in range(3)] == [b"Y"] * 3
    assert client.next_in == 8 and peer.inbox.empty()  # one ResendRequest, nothing more


def test_a_gap_is_asked_for_once_and_the_resends_delivered_in_order() -> None:
    gap_then_resend()


@scripted
async def resend_requested(peer: Peer, client: FixClient) -> None:
    logon = await peer.logon(client)
    assert [tag for tag, _ in logon][:8] == [8, 9, 35, 34, 49, 52, 56, 98]
    await client.send(new_order("o1", "SY10", Decimal("1")))          # seq 9
    await peer.expect("D")
    peer.send(2, "2", (7, "3"), (16, "0"))
    fill = await peer.expect("4")
    assert [tag for tag, _ in fill][:9] == [8, 9, 35, 34, 43, 49, 52, 56, 122]
    # 8 and 9 went out on this connection: filling over them would discard them at the peer
    assert (fill.get(34), fill.get(123), fill.get(36), client.next_out) == (b"3", b"Y", b"8", 10)
    assert fill.get(52) == fill.get(122)


def test_a_resend_request_is_gap_filled_up_to_this_connection(tmp_path: Path) -> None:
    (tmp_path / f"{CLIENT}-{GATEWAY}.seqnums").write_text("8 : 1\n")
    resend_requested(store_dir=tmp_path, password="p")


@scripted
async def too_low(peer: Peer, client: FixClient) -> None:
    await peer.logon(client)
    peer.send(2, "0")
    peer.send(2, "8", (43, "Y"), (11, "dup"))         # a PossDup duplicate: ignored
    peer.send(1, "4", (36, "10"))                     # SequenceReset-Reset: whatever its seq
    await peer.barrier(client, 10)
    peer.send(3, "0")                                 # too low, not a PossDup: fatal
    logout = await peer.expect("5")
    assert logout.get(58) == b"MsgSeqNum too low, expecting 11 but received 3"
    assert await client.closed() == "MsgSeqNum too low, expecting 11 but received 3"
    assert client.received == []


def test_a_seqnum_too_low_ends_the_session_unless_possdup() -> None:
    too_low()


@scripted
async def peer_logs_out(peer: Peer, client: FixClient) -> None:
    await peer.logon(client)
    peer.send(2, "1", (112, "probe"))
    assert (await peer.expect("0")).get(112) == b"probe"
    peer.send(3, "5", (58, "maintenance"))
    await peer.expect("5")
    assert await client.closed() == "maintenance" and not client.logged_on


def test_a_test_request_is_echoed_and_a_logout_answered() -> None:
    peer_logs_out()


@scripted
async def silent_peer(peer: Peer, client: FixClient) -> None:
    await peer.logon(client)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await peer.expect("0")                            # idle for heartbeat_s: a Heartbeat
    probe = await peer.expect("1")                    # silent for 1.2 x: a TestRequest
    assert probe.get(112) is not None
    assert await client.closed() == "heartbeat timeout"
    assert 2.1 <= loop.time() - start < 4


def test_a_silent_peer_is_probed_then_dropped() -> None:
    silent_peer(heartbeat_s=1)


# -- a real QuickFIX acceptor --------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gateway:
    """QuickFIX 1.16 acceptor for one session, on the stock FIX44 dictionary, with a FileStore.

    It answers every application message with a copy of it (an echo); with ``fill`` set it
    answers a NewOrderSingle with an ExecutionReport fill instead.
    """

    def __init__(self, store: Path, fill: bool = False) -> None:
        fix = pytest.importorskip("quickfix")
        signal.signal(signal.SIGINT, signal.default_int_handler)   # import resets Ctrl-C
        self.fix, self.port = fix, free_port()
        self.session_id = fix.SessionID("FIX.4.4", GATEWAY, CLIENT)
        self.app = _application(fix, fill)
        settings = fix.SessionSettings()
        defaults = fix.Dictionary()
        for key, value in {
            "ConnectionType": "acceptor", "SocketAcceptPort": str(self.port),
            "SocketReuseAddress": "Y", "NonStopSession": "Y", "FileStorePath": str(store),
            "FileLogPath": str(store / "log"), "UseDataDictionary": "Y",
            "DataDictionary": str(Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"),
            "ResetOnLogon": "N", "ResetOnLogout": "N", "ResetOnDisconnect": "N",
        }.items():
            defaults.setString(key, value)
        settings.set(defaults)
        settings.set(self.session_id, fix.Dictionary())
        # ThreadedSocketAcceptor: SocketAcceptor.stop() races its engine thread over the
        # listening sockets (SocketServer::close against delete) and now and then segfaults
        self.acceptor = fix.ThreadedSocketAcceptor(self.app, fix.FileStoreFactory(settings),
                                                   settings, fix.FileLogFactory(settings))
        self.acceptor.start()     # listening once it returns: start() binds, then spawns

    def send(self, *pairs: tuple[int, str]) -> None:
        """Send an ExecutionReport, logged on or not (QuickFIX then stores it for a resend)."""
        fix = self.fix
        msg = fix.Message()
        msg.getHeader().setField(fix.MsgType("8"))
        for tag, value in pairs:
            msg.setField(fix.StringField(tag, value))
        fix.Session.sendToTarget(msg, self.session_id)

    def expected(self) -> tuple[int, int]:
        """(next seqnum QuickFIX expects from us, next it will send us)."""
        session = self.fix.Session.lookupSession(self.session_id)
        return int(session.getExpectedTargetNum()), int(session.getExpectedSenderNum())

    def stop(self) -> None:
        """Stop and destroy the engine now: QuickFIX registers sessions in a process-wide
        table by SessionID, so a stale acceptor would capture the next test's session."""
        self.acceptor.stop()
        del self.acceptor
        gc.collect()


def report(cl_ord_id: str, exec_type: str = "F", status: str = "2") -> Pairs:
    return ((37, f"O-{cl_ord_id}"), (17, f"E-{cl_ord_id}-{exec_type}"), (150, exec_type),
            (39, status), (55, "SY10"), (54, "1"), (151, "0"), (14, "3.3"), (6, "101"),
            (11, cl_ord_id), (LEAVES_CASH_QTY, "0.5"))


def _application(fix: Any, fill: bool) -> Any:
    class Echo(fix.Application):  # type: ignore[misc]
        """Every callback catches everything: an escaping exception would kill the process."""

        def __init__(self) -> None:
            super().__init__()
            self.received: list[str] = []
            self.logons = self.logouts = 0
            self.do_not_resend: set[str] = set()    # ClOrdIDs that a resend gap-fills instead

        def onCreate(self, session_id: Any) -> None:
            pass

        def onLogon(self, session_id: Any) -> None:
            self.logons += 1

        def onLogout(self, session_id: Any) -> None:
            self.logouts += 1

        def toAdmin(self, message: Any, session_id: Any) -> None:
            pass

        def fromAdmin(self, message: Any, session_id: Any) -> None:
            refuse = False
            try:
                refuse = (message.getHeader().getField(35) == "A"
                          and (not message.isSetField(554) or message.getField(554) != PASSWORD))
            except Exception as error:
                print("fromAdmin:", error)
            if refuse:
                raise fix.RejectLogon("bad password")

        def toApp(self, message: Any, session_id: Any) -> None:
            skip = False
            try:
                header = message.getHeader()
                skip = (header.isSetField(43) and header.getField(43) == "Y"
                        and message.isSetField(11)
                        and message.getField(11) in self.do_not_resend)
            except Exception as error:
                print("toApp:", error)
            if skip:
                raise fix.DoNotSend()

        def fromApp(self, message: Any, session_id: Any) -> None:
            try:
                self.received.append(message.toString())
                reply = fix.Message(message)
                if fill and message.getHeader().getField(35) == "D":
                    reply = fix.Message()
                    reply.getHeader().setField(fix.MsgType("8"))
                    for tag, value in report(message.getField(11)):
                        reply.setField(fix.StringField(tag, value))
                fix.Session.sendToTarget(reply, session_id)
            except Exception as error:
                print("fromApp:", error)

    return Echo()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = Gateway(tmp_path / "gateway")
    yield gw
    gw.stop()


def config(gw: Gateway, **options: Any) -> SessionConfig:
    return SessionConfig("127.0.0.1", gw.port, CLIENT, GATEWAY, username=CLIENT,
                         password=options.pop("password", PASSWORD), **options)


async def in_step(gw: Gateway, client: FixClient) -> None:
    """Both sides agree on both seqnums (QuickFIX counts a message in only after answering
    it, so this is polled even after a barrier)."""
    await until(lambda: gw.expected() == (client.next_out, client.next_in),
                what="the gateway's seqnums to match the client's")


@contextlib.contextmanager
def no_heartbeats(client: FixClient) -> Iterator[None]:
    """Keep the client quiet so that the gateway has to probe it with TestRequests."""
    client._idle_heartbeat = lambda: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        del client._idle_heartbeat


def test_logon_orders_and_a_test_request_barrier(gateway: Gateway, tmp_path: Path) -> None:
    client = FixClient(config(gateway))
    bodies = [new_order("o1", "SY10", Decimal("1000"), currency="USDC", account="acct"),
              new_order("o2", "SY10", Decimal("1000.25"), ord_type="2", price=Decimal("101.5"),
                        time_in_force="6", expire_time="20300101-00:00:00"),
              cancel("c1", "o1", "SY10"), replace("r1", "o2", "SY10", Decimal("500")),
              quote_request("q1", "SY10", Decimal("250"), currency="USDC"),
              collateral_inquiry("k1")]

    async def scenario() -> None:
        await client.connect()
        assert client.logged_on and (client.next_out, client.next_in) == (2, 2)
        for body in bodies:
            await client.send(body)
        await client.test_request()
        # the barrier's answer came after every echo: all are there, in order
        assert [m.get(35) for m in client.received] == [b"D", b"D", b"F", b"G", b"R", b"BB"]
        assert (await client.next_message()).get(11) == b"o1"
        assert client.session_rejects == []
        await in_step(gateway, client)
        assert await client.logout("bye") is True
        assert await client.closed() == "logout"
        await until(lambda: gateway.app.logouts == 1, what="onLogout")   # called after its answer

    run(scenario())
    assert len(gateway.app.received) == 6     # the stock dictionary accepted every builder


def test_a_wrong_password_is_refused_with_the_gateway_text(gateway: Gateway) -> None:
    async def scenario() -> None:
        with pytest.raises(LogonRefused) as refused:
            await FixClient(config(gateway, password="wrong")).connect()
        assert refused.value.text == "Rejected Logon Attempt: bad password"   # QuickFIX's prefix

    run(scenario())
    assert "wrong" not in repr(config(gateway, password="wrong"))


def test_seqnums_are_persisted_and_resumed(gateway: Gateway, tmp_path: Path) -> None:
    store = tmp_path / "client"

    async def scenario() -> tuple[int, int]:
        first = FixClient(config(gateway, store_dir=store))
        await first.connect()
        await first.send(new_order("o1", "SY10", Decimal("1000")))
        await first.next_message()
        await first.logout()
        saved = (first.next_out, first.next_in)
        assert (store / f"{CLIENT}-{GATEWAY}.seqnums").read_text() == f"{saved[0]} : {saved[1]}\n"
        again = FixClient(config(gateway, store_dir=store))
        assert (again.next_out, again.next_in) == saved
        await again.connect()
        await again.test_request()
        assert again.next_out == saved[0] + 2 and again.session_rejects == []
        await in_step(gateway, again)
        await again.logout()
        return saved

    assert run(scenario()) == (4, 4)    # Logon, order, Logout each way


def test_reports_sent_while_offline_are_resent_after_a_drop(gateway: Gateway,
                                                            tmp_path: Path) -> None:
    client = FixClient(config(gateway, store_dir=tmp_path / "client"))

    async def scenario() -> None:
        await client.connect()
        await client.test_request()
        client.drop()
        assert await client.closed() == "dropped"
        await until(lambda: gateway.app.logouts == 1, what="the gateway to notice the drop")
        for n in (1, 2, 3):
            gateway.send(*report(f"x{n}"))
        again = FixClient(config(gateway, store_dir=tmp_path / "client"))
        await again.connect()    # the gateway's Logon is ahead: ResendRequest, then the resends
        got = [await again.next_message() for _ in range(3)]
        assert [(m.get(11), m.get(43)) for m in got] == [(b"x1", b"Y"), (b"x2", b"Y"),
                                                         (b"x3", b"Y")]
        assert all(describe(m).endswith("(PossDup)") for m in got)
        assert again.admin_counts["4"] >= 1   # the gateway's own Logon came back as a GapFill
        await again.test_request()
        await in_step(gateway, again)
        await again.logout()

    run(scenario())


def test_a_gap_fill_from_the_gateway_skips_a_report(gateway: Gateway) -> None:
    client = FixClient(config(gateway))      # in memory: the same object reconnects

    async def scenario() -> None:
        await client.connect()
        client.drop()
        await until(lambda: gateway.app.logouts == 1, what="the gateway to notice the drop")
        gateway.app.do_not_resend.add("x2")
        for n in (1, 2, 3):
            gateway.send(*report(f"x{n}"))
        await client.connect()
        got = [await client.next_message() for _ in range(2)]
        assert [m.get(11) for m in got] == [b"x1", b"x3"]
        with pytest.raises(TimeoutError):
            await client.next_message(timeout=0.2)
        await client.test_request()
        await in_step(gateway, client)
        await client.logout()

    run(scenario())


def test_the_client_gap_fills_the_gateway_resend_request(gateway: Gateway,
                                                         tmp_path: Path) -> None:
    store = tmp_path / "client"

    async def scenario() -> None:
        client = FixClient(config(gateway, store_dir=store))
        await client.connect()
        await client.logout()
        # as if five messages had been sent and lost: the gateway will ask for them
        path = store / f"{CLIENT}-{GATEWAY}.seqnums"
        path.write_text(f"{client.next_out + 5} : {client.next_in}\n")
        again = FixClient(config(gateway, store_dir=store))
        await again.connect()
        await again.send(new_order("o1", "SY10", Decimal("1")))
        assert (await again.next_message()).get(11) == b"o1"
        assert again.admin_counts["2"] == 1 and again.session_rejects == []
        await in_step(gateway, again)
        await again.logout()

    run(scenario())


def test_a_lost_store_is_refused_unless_the_logon_resets(gateway: Gateway) -> None:
    async def scenario() -> None:
        first = FixClient(config(gateway))
        await first.connect()
        await first.logout()
        # A logon while the acceptor still tears the first connection down goes unanswered.
        await until(lambda: gateway.app.logouts == 1, what="the gateway to end the session")
        with pytest.raises(LogonRefused) as refused:
            await FixClient(config(gateway)).connect()    # starts again at 1
        assert refused.value.text.startswith("MsgSeqNum too low, expecting 3 but received 1")
        reset = FixClient(config(gateway, reset_seq_num=True))
        await reset.connect()
        await reset.test_request()
        assert (reset.next_out, reset.next_in) == (3, 3)
        await in_step(gateway, reset)
        await reset.logout()

    run(scenario())


def test_heartbeats_and_gateway_test_requests_keep_the_session_up(gateway: Gateway) -> None:
    client = FixClient(config(gateway, heartbeat_s=1))

    async def scenario() -> None:
        await client.connect()
        await until(lambda: client.admin_counts["0"] >= 4, what="four gateway heartbeats")
        with no_heartbeats(client):
            await until(lambda: client.admin_counts["1"] >= 2, what="two gateway probes")
            assert client.logged_on and gateway.app.logouts == 0
        await client.test_request()
        await client.logout()

    run(scenario())


def test_the_gateway_ignores_a_garbled_message(gateway: Gateway) -> None:
    async def scenario() -> None:
        client = FixClient(config(gateway))
        await client.connect()
        good = wire(client.next_out, "0", (49, CLIENT), (52, "20300101-00:00:00.000"),
                    (56, GATEWAY))
        await client.send_raw(good[:-4] + b"000\x01")
        await client.test_request()
        assert client.logged_on and client.session_rejects == []
        await client.logout()

    run(scenario())


# -- the CLI against the acceptor ----------------------------------------------------------------

@pytest.fixture
def filling_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.setenv("FIX_PASSWORD", PASSWORD)
    gw = Gateway(tmp_path / "gateway", fill=True)
    yield gw
    gw.stop()


def run_cli(tmp_path: Path, gw: Gateway, script: str, *extra: str) -> int:
    return fix_cli.run(cli_args(tmp_path, script, gw.port, *extra))


def test_cli_runs_a_script_and_waits_for_the_fill(
        filling_gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = "order o1 SY10 1000\nwait o1 filled\nquote q1 SY10 5\n"
    assert run_cli(tmp_path, filling_gateway, script) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["ExecutionReport fill ClOrdID=o1 Symbol=SY10 CumQty=3.3 "
                   "AvgPx=101 LeavesCashQty=0.5",
                   "QuoteRequest QuoteReqID=q1 Symbol=SY10 CashOrderQty=5"]


def test_cli_exits_1_when_a_wait_times_out(
        filling_gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(tmp_path, filling_gateway, "order o1 SY10 1000\nwait o1 minted\n",
                   "--timeout", "1") == 1
    assert "line 2: o1 not minted within 1 s" in capsys.readouterr().err
    run(until(lambda: filling_gateway.app.logouts == 1, what="the logout after the timeout"))


def test_cli_exits_2_on_a_refused_logon(
        filling_gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTHER_PASSWORD", "wrong")
    assert run_cli(tmp_path, filling_gateway, "collateral k1\n",
                   "--password-env", "OTHER_PASSWORD") == 2
    assert "logon refused: Rejected Logon Attempt: bad password" in capsys.readouterr().err



def test_cli_ends_when_the_gateway_logs_it_out_not_at_its_timeout(
        filling_gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A wait for a report that will never come ends when the gateway logs the session out
    (the service stopping), with exit 1 and the reason, long before its 600 s."""
    finished = threading.Event()
    codes: list[int] = []

    def client() -> None:
        codes.append(run_cli(tmp_path, filling_gateway, "order o1 SY10 1000\nwait o1 minted\n",
                             "--timeout", "600"))
        finished.set()

    threading.Thread(target=client, daemon=True).start()
    run(until(lambda: any("35=D" in m for m in filling_gateway.app.received),
              what="the order at the gateway"))
    quickfix = pytest.importorskip("quickfix")
    quickfix.Session.lookupSession(filling_gateway.session_id).logout("the service is stopping")
    assert finished.wait(20), "the client still waits after the gateway logged it out"
    assert codes == [1]
    assert "the service is stopping" in capsys.readouterr().err
