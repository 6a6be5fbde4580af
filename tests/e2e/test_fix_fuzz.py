"""Fuzz: bytes that are not UTF-8, control characters and very long values in every string
field of every message type the gateway takes, from several sessions at once. Each message is
refused naming the field, every session keeps being answered, and the engine's books and
balances are as before."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from decimal import Decimal as D
from pathlib import Path

import simplefix

from mocks.fix_client import FixClient, messages
from tests.support.exchange import run, until
from tests.support.service import comparable, edit, field_of, service

# The string fields each message type is read for (tag: what a valid message carries).
FIELDS: dict[str, tuple[int, ...]] = {
    "D": (11, 1, 55, 15, 20004, 58),
    "F": (11, 41, 1, 55),
    "G": (11, 41, 1, 55),
    "R": (131, 55, 15),
    "BB": (909, 1, 15),
}
MESSAGES_PER_SESSION = 60


def valid(msg_type: str, n: int) -> simplefix.FixMessage:
    match msg_type:
        case "D":
            return messages.new_order(f"f{n}", "SY2", D("100"), ord_type="2", price=D("900"),
                                      currency="USDC")
        case "F":
            return messages.cancel(f"c{n}", "rest", "SY2")
        case "G":
            return messages.replace(f"r{n}", "rest", "SY2", D("50"), ord_type="2",
                                    price=D("900"))
        case "R":
            return messages.quote_request(f"q{n}", "SY2", D("100"), currency="USDC")
    return messages.collateral_inquiry(f"i{n}")


def garbage(rng: random.Random) -> bytes:
    """Bytes no field may keep: not UTF-8, control characters, or far too many."""
    kind = rng.choice(("not utf-8", "latin-1", "control", "long", "mixed"))
    if kind == "not utf-8":
        return bytes(rng.randrange(0x80, 0x100) for _ in range(rng.randint(1, 40)))
    if kind == "latin-1":
        return "".join(rng.choice("éüßøñ") for _ in range(rng.randint(1, 10))).encode("latin-1")
    if kind == "control":
        return bytes(rng.choice([0, 2, 7, 9, 10, 13, 27, 127]) for _ in range(rng.randint(1, 5)))
    if kind == "long":
        return b"x" * rng.choice((257, 5_000, 100_000))
    return b"ok-" + bytes(rng.randrange(0, 0x100) for _ in range(20)).replace(b"\x01", b"?")


def fuzzed(rng: random.Random, n: int) -> simplefix.FixMessage:
    msg_type = rng.choice(sorted(FIELDS))
    tag = rng.choice(FIELDS[msg_type])
    return edit(valid(msg_type, n), {f"t{tag}": garbage(rng)})


async def fuzz(client: FixClient, seed: int) -> int:
    """Send the fuzzed messages, then a TestRequest; how many answers came before it."""
    rng = random.Random(seed)
    seen = len(client.received) + len(client.session_rejects)
    for n in range(MESSAGES_PER_SESSION):
        await client.send(fuzzed(rng, n))
    await client.test_request(timeout=60)
    return len(client.received) + len(client.session_rejects) - seen


def test_random_bytes_in_every_string_field_change_nothing_and_stop_no_one(
        tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service(tmp_path, {"alice": "6000", "bob": "3000"}) as s:
            await until(lambda: s.runtime.market_data.live, what="the books live")
            clients = [await s.client(name) for name in ("alice", "bob")]
            for client in clients:  # an order to cancel and replace, that rests below the market
                await client.send(messages.new_order("rest", "SY2", D("1000"), ord_type="2",
                                                     price=D("900")))
            await until(lambda: len(s.runtime.engine.orders) == 2, what="the resting orders")
            before = comparable(s)
            answered = await asyncio.gather(*(fuzz(c, seed) for seed, c in enumerate(clients)))
            for client, count in zip(clients, answered, strict=True):
                kinds = Counter(field_of(m, 35) for m in client.received[-count:])
                assert count >= MESSAGES_PER_SESSION, kinds
                assert not any(field_of(m, 150) == "0" for m in client.received[-count:])
                await client.send(messages.collateral_inquiry("after"))
                await client.test_request()
                assert field_of(client.received[-1], 35) == "BA"
            assert comparable(s) == before
            assert s.gateway.logged_on == {"alice", "bob"}
    run(scenario(), timeout=240)
