"""The index-order solver.

The core (``model``, ``market``, ``params``, ``commands``, ``events``, ``ledger``, ``orders``,
``inventory``, ``fitting``, ``allocation``, ``batches``, ``engine``, ``bus``) is pure: it does no
I/O, reads no clock and imports only the standard library. ``Engine.apply`` takes one input and
returns the ``Transaction`` of events it caused.
"""

from solver.engine import Engine
from solver.events import Envelope, Event, Transaction
from solver.params import SolverParams

__all__ = ["Engine", "Envelope", "Event", "SolverParams", "Transaction"]
