"""The gateway's sessions: QuickFIX settings built in code from the deployment file (one
session per account, durable: FileStore, no resets; plus the optional echo session for test
suites), and whose each session is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import quickfix as fix

from fix_gateway.config import FixSettings

BEGIN_STRING = "FIX.4.4"


def session_settings(settings: FixSettings, accept_port: int) -> fix.SessionSettings:
    """QuickFIX accepts on ``accept_port`` of the loopback interface only: peers reach it
    through the front door, once logged on."""
    quickfix_settings = fix.SessionSettings()
    defaults = fix.Dictionary()
    for key, value in _defaults(settings, accept_port).items():
        defaults.setString(key, value)
    quickfix_settings.set(defaults)
    for account in settings.accounts:
        quickfix_settings.set(fix.SessionID(BEGIN_STRING, settings.comp_id, account.comp_id),
                              fix.Dictionary())
    test = settings.test_session
    if test is not None:
        echo = fix.Dictionary()
        for key in ("ResetOnLogon", "ResetOnLogout", "ResetOnDisconnect"):
            echo.setString(key, "Y")
        quickfix_settings.set(fix.SessionID(BEGIN_STRING, test.comp_id, test.target_comp_id),
                              echo)
    return quickfix_settings


def _defaults(settings: FixSettings, accept_port: int) -> dict[str, str]:
    values = {
        "ConnectionType": "acceptor",
        "BeginString": BEGIN_STRING,
        "SenderCompID": settings.comp_id,
        "SocketAcceptPort": str(accept_port),
        "SocketAcceptHost": "127.0.0.1",
        "SocketReuseAddress": "Y",
        "SocketNodelay": "Y",
        "NonStopSession": "Y",
        "FileStorePath": str(settings.store),
        "PersistMessages": "Y",
        "ResetOnLogon": "N",
        "ResetOnLogout": "N",
        "ResetOnDisconnect": "N",
        "UseDataDictionary": "Y",
        "DataDictionary": str(settings.dictionary),
        "ValidateUserDefinedFields": "Y",
        "ValidateFieldsOutOfOrder": "Y",
        "ValidateFieldsHaveValues": "Y",
        "CheckLatency": "Y",
        "MaxLatency": "120",
    }
    if settings.log is not None:
        values["FileLogPath"] = str(settings.log)
    return values


@dataclass(frozen=True, slots=True)
class Routes:
    """Whose each session is: the account's session key both ways, and the echo session's
    key (the test profile), once QuickFIX has created the sessions."""

    session_of_account: Mapping[str, str]
    account_of_session: Mapping[str, str]
    echo_session: str | None

    @classmethod
    def of(cls, sessions: Mapping[str, fix.SessionID], settings: FixSettings) -> Routes:
        account_by_comp_id = {a.comp_id: a.name for a in settings.accounts}
        of_account, echo = {}, None
        for key, session_id in sessions.items():
            account = account_by_comp_id.get(session_id.getTargetCompID().getValue())
            if account is None:
                echo = key
            else:
                of_account[account] = key
        return cls(of_account, {k: a for a, k in of_account.items()}, echo)
