"""A FIX 4.4 client on simplefix and asyncio: our second, independent FIX implementation.

Demos and end-to-end tests use it to talk to the QuickFIX gateway (``fix-client``).
"""

from mocks.fix_client.framing import Framer
from mocks.fix_client.messages import (
    cancel,
    collateral_inquiry,
    describe,
    new_order,
    quote_request,
    replace,
)
from mocks.fix_client.session import FixClient, LogonRefused, SessionConfig

__all__ = ["FixClient", "Framer", "LogonRefused", "SessionConfig", "cancel",
           "collateral_inquiry", "describe", "new_order", "quote_request", "replace"]
