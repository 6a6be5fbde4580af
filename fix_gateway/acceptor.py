"""QuickFIX's acceptor on one thread of ours, polled when the front door has passed it bytes.

Neither of QuickFIX's own ways of running an acceptor is safe here. The ThreadedSocketAcceptor
(a thread per connection) closes a connection's socket when QuickFIX ends it (its answer to a
Logout, a refused logon) and then polls the same descriptor number once more: a socket opened
meanwhile gets that number (the next Logon through the door, or any socket of the process), the
old thread keeps polling it and keeps the session registered, and the session's next Logon waits
5 s and is dropped. The SocketAcceptor's ``start`` runs its loop on a thread of its own, and
``stop`` closes the server's sockets from the caller's thread while that loop still uses them
(a segmentation fault, seen in the test suite).

So one thread of ours calls ``poll`` (a zero-timeout pass over every socket: accept, read,
write, timers) and ``stop`` itself. It polls at once when the front door wakes it (bytes passed
to QuickFIX, a connection opened or closed) and otherwise every ``IDLE_POLL_S`` (heartbeats,
replies the kernel could not take at once). Sends from the asyncio loop go straight to the
socket (QuickFIX's ``SocketConnection::send`` is locked). The callbacks run on this thread;
one that waits (``bridge.py``: the backlog is full, a TestRequest waits for earlier answers)
holds every session for at most its bounded wait.

QuickFIX 1.16 listens on every interface whatever ``SocketAcceptHost`` says, and QuickFIX must
be reachable through the front door only (it resets a session on a Logon's ResetSeqNumFlag and
tells its expected MsgSeqNum before any password is checked). So right after the first poll
opens it, on this same thread, the listening descriptor is replaced (``dup2``) by a socket
listening on 127.0.0.1 alone, at a port of its own: QuickFIX accepts from the descriptor it
knows, and nothing of it listens beyond loopback.
"""

from __future__ import annotations

import os
import socket
import stat
import threading

import quickfix as fix
import structlog

log = structlog.get_logger(__name__)

IDLE_POLL_S = 0.01


class PolledAcceptor:
    def __init__(self, acceptor: fix.SocketAcceptor, port: int) -> None:
        """``port``: the one QuickFIX's settings give it; ``port`` is QuickFIX's loopback
        port once started."""
        self._acceptor: fix.SocketAcceptor | None = acceptor
        self.port = port
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._started = threading.Event()

    def start(self) -> None:
        """Open the listening socket and poll on a thread; raise what the first poll raised."""
        self._thread = threading.Thread(target=self._run, name="quickfix", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def wake(self) -> None:
        """Poll now (any thread)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop polling and stop the acceptor on its own thread (blocking: call off the loop).
        Connections still open are closed without a Logout; the front door closes them first."""
        if self._thread is None:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join()
        self._thread = None
        self._acceptor = None  # the sessions go with it: see Gateway.stop

    def _run(self) -> None:
        acceptor = self._acceptor
        assert acceptor is not None
        try:
            acceptor.poll()  # the first poll configures the sessions and listens
            self.port = confine_to_loopback(self.port)
        except BaseException as error:  # handed to start's caller
            self._error = error
            self._started.set()
            return
        self._started.set()
        while not self._stopping:
            self._wake.wait(IDLE_POLL_S)
            self._wake.clear()
            try:
                acceptor.poll()
            except Exception:
                log.exception("quickfix poll failed")
        acceptor.stop(True)


def confine_to_loopback(port: int) -> int:
    """Replace this process's socket listening on ``port`` on every interface by one listening
    on 127.0.0.1 alone (same descriptor, so its owner accepts from it unawares); its port."""
    fd = _listening_descriptor(port)
    loopback = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        loopback.bind(("127.0.0.1", 0))
        loopback.listen(socket.SOMAXCONN)
        loopback.setblocking(os.get_blocking(fd))
        os.dup2(loopback.fileno(), fd)  # closes the socket on every interface
        return int(loopback.getsockname()[1])
    finally:
        loopback.close()  # the descriptor QuickFIX holds keeps it open


def _listening_descriptor(port: int) -> int:
    for name in os.listdir("/dev/fd"):
        fd = int(name)
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            probe = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        with probe:
            if (probe.family == socket.AF_INET and probe.type == socket.SOCK_STREAM
                    and probe.getsockname()[1] == port
                    and probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)):
                return fd
    raise RuntimeError(f"QuickFIX does not listen on port {port}")
