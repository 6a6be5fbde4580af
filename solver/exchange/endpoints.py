"""Where the exchange is: production, the Spot testnet or a local mock differ only in three
URLs, and the same connector code runs against each."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from binance import AsyncClient


@dataclass(frozen=True, slots=True)
class Endpoints:
    name: str
    rest: str
    ws_api: str
    streams: str


PRODUCTION = Endpoints("production", "https://api.binance.com/api",
                       "wss://ws-api.binance.com:443/ws-api/v3", "wss://stream.binance.com:9443/")
TESTNET = Endpoints("testnet", "https://testnet.binance.vision/api",
                    "wss://ws-api.testnet.binance.vision/ws-api/v3",
                    "wss://stream.testnet.binance.vision/")


def local(port: int, host: str = "127.0.0.1") -> Endpoints:
    """The mock Binance (``mock-binance``) on ``host:port``."""
    return Endpoints("local", f"http://{host}:{port}/api", f"ws://{host}:{port}/ws-api/v3",
                     f"ws://{host}:{port}/")


def client_class(endpoints: Endpoints) -> type[AsyncClient]:
    """python-binance's ``AsyncClient`` pointed at ``endpoints``: the URLs are class
    attributes read in ``__init__``, so they are set on a subclass, not patched."""
    return type(f"{endpoints.name.title()}AsyncClient", (AsyncClient,),
                {"API_URL": endpoints.rest, "WS_API_URL": endpoints.ws_api})


@dataclass(frozen=True, slots=True)
class ApiKey:
    key: str
    secret: str = field(repr=False)

    @classmethod
    def from_env(cls, prefix: str = "BINANCE") -> ApiKey:
        """``<prefix>_API_KEY`` and ``<prefix>_API_SECRET`` from the environment."""
        key, secret = os.environ.get(f"{prefix}_API_KEY"), os.environ.get(f"{prefix}_API_SECRET")
        if not key or not secret:
            raise ValueError(f"set {prefix}_API_KEY and {prefix}_API_SECRET in the environment")
        return cls(key, secret)
