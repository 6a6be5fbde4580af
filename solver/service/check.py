"""``index-solver check --config``: everything a deployment needs, verified without trading.

The exchange: its endpoint answers, the API keys are accepted (a signed account read), every
market the indexes trade is listed with the filters the config gives. The chain: the node
answers and is the deployment file's chain, a contract is deployed at every address the file
names, the vault holds the configured collateral and knows each index token, each token's
minter is the vault, the operator's key is the vault's operator and has gas. The admin token is
set when the config has an ``[admin]`` section. Each finding says what was checked and, when it
failed, what is wrong; nothing is sent that changes anything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from eth_typing import ChecksumAddress
from web3 import AsyncWeb3

from chain.deploy import contract
from chain.deployment import ChainDeployment
from chain.provider import node_provider
from solver.config.deployment import ChainSettings, Deployment
from solver.config.fields import ConfigError
from solver.core.params import SolverParams, fee_problem
from solver.exchange.connector import BinanceConnector
from solver.exchange.endpoints import ApiKey
from solver.service.chain_link import operator_of
from solver.service.process import admin_token, endpoints_of


@dataclass(frozen=True, slots=True)
class Finding:
    what: str
    ok: bool
    detail: str


async def check(deployment: Deployment) -> list[Finding]:
    findings = await _exchange(deployment)
    if deployment.chain is None:
        findings.append(Finding("chain", False, "no [chain] section: the service needs one"))
    else:
        findings += await _chain(deployment.chain, deployment)
    if deployment.admin is not None:
        findings.append(await _attempt("admin token", _token(deployment)))
    if deployment.chain is None:
        return findings
    rpc, node = deployment.chain.rpc, deployment.chain.node  # a provider's key stays hidden
    return [Finding(f.what, f.ok, f.detail.replace(rpc, node)) for f in findings]


async def _attempt(what: str, work: Awaitable[str]) -> Finding:
    try:
        return Finding(what, True, await work)
    except Exception as error:  # the finding says what failed; the next checks go on
        return Finding(what, False, str(error) or type(error).__name__)


async def _token(deployment: Deployment) -> str:
    assert deployment.admin is not None
    admin_token(deployment.admin)
    return f"${deployment.admin.token_env} is set"


# --- the exchange ----------------------------------------------------------------------------


async def _exchange(deployment: Deployment) -> list[Finding]:
    endpoints = endpoints_of(deployment.service)
    try:
        key = ApiKey.from_env()
    except ValueError as error:
        return [Finding("exchange keys", False, str(error))]
    connector = BinanceConnector(endpoints, key, request_timeout_s=5)
    reached = await _attempt(f"exchange endpoint ({deployment.service.exchange})",
                             _started(connector))
    if not reached.ok:
        await connector.close()
        return [reached]
    try:
        findings = [reached, await _attempt("exchange keys", _keys(connector)),
                    await _attempt("fee reserve", _fees(connector, deployment.setup.params))]
        for ours in deployment.setup.markets:
            problem = ours.differences(connector.rules.get(ours.symbol))
            findings.append(Finding(f"market {ours.symbol}", problem is None,
                                    problem or "listed, with the configured filters"))
        return findings
    finally:
        await connector.close()


async def _started(connector: BinanceConnector) -> str:
    await connector.start()
    return f"answers: {len(connector.rules)} symbols"


async def _keys(connector: BinanceConnector) -> str:
    balances = (await connector.account()).free
    held = ", ".join(f"{asset} {amount}" for asset, amount in sorted(balances.items()) if amount)
    return f"accepted (free: {held or 'nothing'})"


async def _fees(connector: BinanceConnector, params: SolverParams) -> str:
    problem = fee_problem(params, (await connector.account()).taker_fee_rate)
    if problem:
        raise ValueError(problem)
    return f"{params.fee_reserve} covers the account's taker fee rate"


# --- the chain ---------------------------------------------------------------------------------


async def _chain(settings: ChainSettings, deployment: Deployment) -> list[Finding]:
    try:
        recorded = ChainDeployment.load(settings.deployment)
    except (OSError, ValueError, TypeError, KeyError) as error:
        return [Finding("chain deployment file", False, f"{settings.deployment}: {error}")]
    w3: AsyncWeb3[Any] = AsyncWeb3(node_provider(settings.rpc, {"timeout": 5}))
    node = await _attempt(f"chain node ({settings.node})", _chain_id(w3, recorded.chain_id))
    if not node.ok:
        return [node]
    findings = [node]
    for name, address in (("collateral", recorded.collateral), ("vault", recorded.vault),
                          *((f"index token {s}", a) for s, a in recorded.index_tokens.items())):
        findings.append(await _attempt(f"contract {name}", _deployed(w3, address)))
    if not all(f.ok for f in findings):
        return findings
    vault = contract(w3, "CollateralVault", recorded.vault)
    findings.append(await _attempt("vault's collateral", _same(
        vault.functions.collateral().call, recorded.collateral, "the vault's collateral")))
    for index in deployment.setup.indexes:
        token = recorded.index_tokens.get(index.symbol)
        findings.append(await _attempt(f"index token {index.symbol}", _index_token(
            w3, vault, index.symbol, token)))
    findings.append(await _attempt("chain operator", _operator(w3, vault, settings)))
    findings.append(await _attempt("vault announcements", _announcements(vault)))
    return findings


async def _chain_id(w3: AsyncWeb3[Any], recorded: int) -> str:
    chain_id = await w3.eth.chain_id
    if chain_id != recorded:
        raise ValueError(f"the node is chain {chain_id}, the deployment file chain {recorded}")
    return f"chain {chain_id}, block {await w3.eth.block_number}"


async def _deployed(w3: AsyncWeb3[Any], address: str) -> str:
    if not await w3.eth.get_code(address):  # type: ignore[arg-type]
        raise ValueError(f"no contract at {address}")
    return address


async def _same(read: Callable[[], Awaitable[Any]], expected: str, what: str) -> str:
    found = await read()
    if str(found).lower() != expected.lower():
        raise ValueError(f"{what} is {found}, the deployment file says {expected}")
    return expected


async def _index_token(w3: AsyncWeb3[Any], vault: Any, symbol: str,
                       token: ChecksumAddress | None) -> str:
    if token is None:
        raise ValueError(f"the deployment file has no token for {symbol}")
    if not await vault.functions.index_tokens(token).call():
        raise ValueError(f"the vault does not know {token} as an index token")
    minter = await contract(w3, "IndexToken", token).functions.minter().call()
    if minter.lower() != vault.address.lower():
        raise ValueError(f"{token}'s minter is {minter}, not the vault")
    return f"{token}, minted by the vault only"


async def _announcements(vault: Any) -> str:
    """The owner's changes announced and not applied: each takes effect at its time, and
    users who disagree are leaving before it."""
    calls = vault.functions
    pending = [f"{what} {await who().call()} from {await at().call()} (Unix time)"
               for what, who, at in (("operator", calls.next_operator, calls.next_operator_at),
                                     ("treasury", calls.next_treasury, calls.next_treasury_at),
                                     ("index token", calls.next_token_symbol,
                                      calls.next_token_at))
               if await at().call()]
    return "; ".join(pending) if pending else "no change of operator, treasury or token announced"


async def _operator(w3: AsyncWeb3[Any], vault: Any, settings: ChainSettings) -> str:
    try:
        operator = operator_of(settings)
    except ConfigError as error:
        raise ValueError(str(error)) from None
    theirs = await vault.functions.operator().call()
    if theirs.lower() != operator.address.lower():
        raise ValueError(f"the vault's operator is {theirs}; the configured key is "
                         f"{operator.address}'s")
    gas = await w3.eth.get_balance(operator.address)
    if not gas:
        raise ValueError(f"{operator.address} has nothing to pay gas with")
    return f"{operator.address}, balance {w3.from_wei(gas, 'ether')} (native)"

