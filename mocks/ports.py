"""Free TCP ports on 127.0.0.1, for servers the demo and the tests start."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port no one listens on now (the OS picks; the caller binds it soon after)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
