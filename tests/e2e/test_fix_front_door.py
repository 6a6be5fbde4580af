"""The front door: a peer that has not logged on changes nothing about a session, learns
nothing about it and holds nothing for long; the owner's own reset still works."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from decimal import Decimal as D
from pathlib import Path

import pytest
import quickfix as fix
import simplefix

from fix_gateway.front_door import DoorSettings, Failures
from mocks.fix_client import messages
from solver.core.commands import DepositConfirmed
from tests.support.exchange import run, until
from tests.support.service import GATEWAY, PASSWORDS, Service, field_of, report_where, service

WRONG = "not-alices-password"


async def raw_logon(port: int, sender: str = "ALICE", password: str | None = WRONG,
                    seq: int = 1, reset: bool = False,
                    target: str = GATEWAY) -> simplefix.FixMessage | None:
    """A Logon from a bare socket; the answer (None if the door just closed)."""
    logon = simplefix.FixMessage()
    for tag, value in ((8, "FIX.4.4"), (35, "A"), (49, sender), (56, target), (34, str(seq)),
                       (52, "20261130-10:00:00.000"), (98, "0"), (108, "30"),
                       *([(141, "Y")] if reset else []), (553, sender),
                       *([(554, password)] if password is not None else [])):
        logon.append_pair(tag, value)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(logon.encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)  # until the door closes
    finally:
        writer.close()
    parser = simplefix.FixParser()
    parser.append_buffer(data)
    return parser.get_message()


def expected_sender_num(s: Service, account: str) -> int:
    key = s.gateway.routes.session_of_account[account]
    session = fix.Session.lookupSession(s.gateway.bridge.sessions[key])
    return int(session.getExpectedSenderNum())


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_a_wrong_password_with_a_reset_changes_nothing_and_tells_nothing(tmp_path: Path) -> None:
    """An offline account's session: a stranger's Logon with ResetSeqNumFlag=Y, a stale
    MsgSeqNum and a wrong password is refused as a wrong password, with the door's own
    numbering; the session's numbers do not move, and the owner logs on with the numbers it
    kept and gets every report that waited for it."""
    async def scenario() -> None:
        door = DoorSettings(failed_logons_per_account_and_address=100,
                            failed_logons_per_comp_id=100)
        async with service(tmp_path, {"alice": "6000"}, door=door) as s:
            alice = await s.client("alice")
            await alice.send(messages.new_order("o1", "SY2", D("1000"), ord_type="2",
                                                price=D("900")))
            await report_where(alice, t11="o1", t150="0")
            await alice.logout()
            s.runtime.submit(DepositConfirmed(s.runtime.clock(), "while-away", "alice", "USDC",
                                              D(500)))
            await until(lambda: s.runtime.engine.ledger.balance("alice", "USDC").available
                        == D(5500), what="the deposit")
            before = expected_sender_num(s, "alice")
            for n in range(20):  # with a reset asked for, or a MsgSeqNum long past
                answer = await raw_logon(s.port, reset=n % 2 == 0, seq=1)
                assert answer is not None
                assert (field_of(answer, 35), field_of(answer, 34), field_of(answer, 58)) == (
                    "5", "1", "wrong password")
            assert expected_sender_num(s, "alice") == before
            alice = await s.client("alice")  # the numbers it kept in its store
            deposit = await report_where(alice, t35="BA")
            assert field_of(deposit, 53) == "500"
            await alice.test_request()
            assert expected_sender_num(s, "alice") > before
    run(scenario())


def test_the_first_wrong_password_says_so_and_nothing_else(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path) as s:
            answer = await raw_logon(s.port, seq=1)
            assert answer is not None
            assert (field_of(answer, 35), field_of(answer, 34), field_of(answer, 58)) == (
                "5", "1", "wrong password")
            # unknown CompIDs are closed without a word: an answer would name the gateway's
            assert await raw_logon(s.port, sender="MALLORY") is None
            assert await raw_logon(s.port, target="SOMEONE") is None
            assert s.gateway.logged_on == set()
    run(scenario())


def test_the_owner_can_still_reset_the_session(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000"}) as s:
            alice = await s.client("alice")
            await alice.send(messages.collateral_inquiry("i1"))
            await report_where(alice, t35="BG")
            await alice.logout()
            resetting = await s.client("alice", reset_seq_num=True)
            await resetting.test_request()
            assert expected_sender_num(s, "alice") <= 4  # Logon, Heartbeat, ... from 1 again
    run(scenario())


def test_failed_logons_are_throttled_then_let_through_after_the_window(tmp_path: Path) -> None:
    async def scenario() -> None:
        door = DoorSettings(failed_logons_per_account_and_address=3, failure_window_s=2)
        async with service(tmp_path, door=door) as s:
            for _ in range(3):
                answer = await raw_logon(s.port)
                assert answer is not None and field_of(answer, 58) == "wrong password"
            throttled = await raw_logon(s.port, password=PASSWORDS["alice"])
            assert throttled is not None
            assert (field_of(throttled, 58) or "").startswith("too many failed logons")
            assert s.gateway.logged_on == set()
            bob = await s.client("bob")  # alice's typos do not lock out her neighbour
            await bob.test_request()
            assert s.gateway.logged_on == {"bob"}
            await asyncio.sleep(2.1)
            alice = await s.client("alice")
            await alice.test_request()
            assert s.gateway.logged_on == {"alice", "bob"}
    run(scenario())


def test_failures_are_counted_per_key_over_a_sliding_window() -> None:
    failures = Failures(window_s=10)
    for t in (0, 1, 2):
        failures.add(("address", "a"), t)
    assert failures.wait(("address", "a"), 3, limit=3) == 7  # until the first leaves
    assert failures.wait(("address", "a"), 3, limit=4) == 0
    assert failures.wait(("address", "b"), 3, limit=1) == 0
    assert failures.wait(("address", "a"), 10.5, limit=3) == 0  # the first has left


def test_a_connection_that_sends_nothing_is_closed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path, door=DoorSettings(logon_timeout_s=0.5)) as s:
            reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
            assert await asyncio.wait_for(reader.read(), 5) == b""  # the door closed it
            writer.close()
    run(scenario())


def test_idle_connections_keep_no_one_out_and_take_no_threads(tmp_path: Path) -> None:
    """Connections that send nothing, from one address: beyond its bound each new one closes
    the oldest, so a client that sends its Logon at once gets in while a hundred are held."""
    async def scenario() -> None:
        async with service(tmp_path, door=DoorSettings(max_unauthenticated=5)) as s:
            base = threads()
            idle = [await asyncio.open_connection("127.0.0.1", s.port) for _ in range(4)]
            await until(lambda: s.gateway.door.unauthenticated == 4, what="four waiting")
            newer = await asyncio.open_connection("127.0.0.1", s.port)
            assert await asyncio.wait_for(idle[0][0].read(), 5) == b""  # the oldest made room
            more = [await asyncio.open_connection("127.0.0.1", s.port) for _ in range(100)]
            assert threads() <= base + 2  # the acceptor's threads are for logged-on peers
            alice = await s.client("alice")
            await alice.test_request()
            assert s.gateway.logged_on == {"alice"}
            assert s.gateway.door.unauthenticated <= 4
            for _, w in [*idle, newer, *more]:
                w.close()
            await until(lambda: s.gateway.door.unauthenticated == 0, what="idle ones closed")
    run(scenario())


def test_a_first_message_that_is_not_a_logon_is_dropped(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path) as s:
            for garbage in (b"GET / HTTP/1.1\r\n\r\n", b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01",
                            b"\xff" * 5000):
                reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
                writer.write(garbage)
                assert await asyncio.wait_for(reader.read(), 10) == b""
                writer.close()
            alice = await s.client("alice")
            await alice.test_request()
    run(scenario())


def listening() -> set[tuple[str, int]]:
    """The TCP addresses this process listens on."""
    found = set()
    for name in os.listdir("/dev/fd"):
        try:
            probe = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        with probe, contextlib.suppress(OSError):
            if probe.type == socket.SOCK_STREAM and probe.family == socket.AF_INET \
                        and probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                found.add(probe.getsockname())
    return found


def own_address() -> str | None:
    """This machine's address beyond loopback, if it has one (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def test_quickfix_listens_on_loopback_alone_behind_the_front_door(tmp_path: Path) -> None:
    """QuickFIX 1.16 binds every interface whatever SocketAcceptHost says: the gateway moves
    its listening socket to loopback, so a peer elsewhere reaches the front door or nothing."""
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "10"}) as s:
            assert {a for a in listening() if a[0] != "127.0.0.1"} == set()
            quickfix = s.gateway._acceptor.port
            assert quickfix != s.port and ("127.0.0.1", quickfix) in listening()
            address = own_address()
            if address is not None:  # the machine's own address reaches no QuickFIX
                with pytest.raises(ConnectionRefusedError):
                    await asyncio.open_connection(address, quickfix)
            alice = await s.client("alice")  # through the door, as ever
            await alice.test_request()
    run(scenario())
