"""``index-solver chain ...``: deploy the contracts, and a user's side of the vault (deposit,
balances, request a withdrawal, withdraw). Keys come from the environment variable that
``--key-env`` names, never from the command line or a file in the repository."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from solver.core.money import amount_problem, plain

if TYPE_CHECKING:  # web3 loads only when a chain command runs
    from eth_account.signers.local import LocalAccount
    from web3 import AsyncWeb3

    from chain.deployment import ChainDeployment

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_commands(commands: Any) -> None:
    chain = commands.add_parser(
        "chain", help="deploy the contracts; deposit, balance, request-withdrawal, withdraw",
        description="Exit status: 0 done, 1 the chain refused (the reason is printed), 2 bad "
                    "arguments or a missing key.")
    actions = chain.add_subparsers(dest="action", required=True)
    deploy = actions.add_parser("deploy", help="deploy a vault and one token per index; write "
                                               "the deployment file")
    _node(deploy, key=True)
    deploy.add_argument("--out", type=Path, required=True, help="deployment file to write")
    deploy.add_argument("--index", action="append", required=True, metavar="SYMBOL[=NAME]",
                        help="an index token to deploy (repeat for each)")
    deploy.add_argument("--collateral", help="the collateral token (default: a new MockUSDC)")
    deploy.add_argument("--operator", required=True,
                        help="the settling account (its key settles; keep it apart from the "
                             "deployer's, which owns the vault)")
    deploy.add_argument("--treasury", required=True, help="where settled collateral goes")
    deploy.add_argument("--withdrawal-delay", type=int, default=86_400, metavar="SECONDS",
                        help="how long a user waits to withdraw without the solver: 3600 "
                             "(an hour) to 2592000 (30 days)")
    deploy.add_argument("--withdrawal-grace", type=int, metavar="SECONDS",
                        help="how long after a withdrawal request settlements may still "
                             "spend what it asks for (default: a quarter of the delay, at "
                             "most an hour); below the delay")
    deploy.add_argument("--change-delay", type=int, metavar="SECONDS",
                        help="how long a new operator, treasury or index token waits after "
                             "its announcement (default: twice the withdrawal delay); at "
                             "least the withdrawal delay, at most 60 days")
    for name, text in (("deposit", "deposit AMOUNT of collateral into the vault"),
                       ("request-withdrawal", "ask the vault for AMOUNT back")):
        action = actions.add_parser(name, help=text)
        _node(action, key=True, deployment=True)
        action.add_argument("amount", help="in collateral units, e.g. 1000 or 12.5")
        if name == "deposit":
            action.add_argument("--mint", action="store_true",
                                help="mint the amount first (MockUSDC only: local chains)")
    withdraw = actions.add_parser("withdraw", help="take the requested collateral back, once "
                                                   "the vault's delay has passed")
    _node(withdraw, key=True, deployment=True)
    balance = actions.add_parser("balance", help="a wallet's vault balance, pending "
                                                 "withdrawal and index tokens")
    _node(balance, deployment=True)
    balance.add_argument("wallet")


def _node(parser: argparse.ArgumentParser, key: bool = False, deployment: bool = False) -> None:
    parser.add_argument("--rpc", required=True, help="the node's HTTP URL")
    if key:
        parser.add_argument("--key-env", required=True, metavar="VAR",
                            help="environment variable holding the account's private key")
    if deployment:
        parser.add_argument("--deployment", type=Path, required=True,
                            help="the file `chain deploy` wrote")


def run(args: argparse.Namespace) -> int:
    from web3.exceptions import ContractLogicError

    try:
        return asyncio.run(_run(args))
    except (UsageError, ValueError) as error:
        print(f"index-solver chain: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ContractLogicError as error:
        print(f"index-solver chain: the chain refused: {error.message or error}",
              file=sys.stderr)
        return EXIT_FAILED


class UsageError(Exception):
    pass


async def _run(args: argparse.Namespace) -> int:
    from web3 import AsyncWeb3

    from chain.deployment import ChainDeployment
    from chain.provider import node_provider

    w3: AsyncWeb3[Any] = AsyncWeb3(node_provider(args.rpc))
    try:
        if args.action == "deploy":
            return await _deploy(w3, args)
        deployment = ChainDeployment.load(args.deployment)
        if args.action == "balance":
            return await _balance(w3, deployment, args.wallet)
        return await _user_action(w3, deployment, args)
    finally:
        await w3.provider.disconnect()


async def _deploy(w3: AsyncWeb3[Any], args: argparse.Namespace) -> int:
    from chain.deploy import deploy_all

    owner = _key(args.key_env)
    indexes = dict((s.partition("=")[0], s.partition("=")[2] or f"{s} index")
                   for s in args.index)
    deployment = await deploy_all(
        w3, owner, args.operator, args.treasury,
        args.withdrawal_delay, indexes, args.collateral, args.withdrawal_grace,
        args.change_delay)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    deployment.save(args.out)
    print(f"vault {deployment.vault} on chain {deployment.chain_id} from block "
          f"{deployment.start_block}; written to {args.out}")
    return EXIT_OK


async def _user_action(w3: AsyncWeb3[Any], deployment: ChainDeployment,
                       args: argparse.Namespace) -> int:
    from chain.deploy import address_of, contract, transact
    from chain.watcher import to_units

    user = _key(args.key_env)
    vault = contract(w3, "CollateralVault", deployment.vault)
    usdc = contract(w3, "MockUSDC", deployment.collateral)
    decimals = int(await usdc.functions.decimals().call())
    if args.action == "withdraw":
        receipt = await transact(w3, user, vault.functions.withdraw())
    else:
        units = to_units(_amount(args.amount), decimals)
        if args.action == "request-withdrawal":
            receipt = await transact(w3, user, vault.functions.request_withdrawal(units))
        else:
            if args.mint:
                await transact(w3, user, usdc.functions.mint(address_of(user), units))
            await transact(w3, user, usdc.functions.approve(deployment.vault, units))
            receipt = await transact(w3, user, vault.functions.deposit(units, 0))
    print(f"{args.action}: transaction 0x{bytes(receipt['transactionHash']).hex()} in block "
          f"{receipt['blockNumber']}")
    return EXIT_OK


async def _balance(w3: AsyncWeb3[Any], deployment: ChainDeployment, wallet: str) -> int:
    from chain.deploy import contract
    from chain.watcher import from_units

    vault = contract(w3, "CollateralVault", deployment.vault)
    usdc = contract(w3, "MockUSDC", deployment.collateral)
    decimals = int(await usdc.functions.decimals().call())
    if not re.fullmatch(r"0x[0-9A-Fa-f]{40}", wallet):
        raise UsageError(f"wallet {wallet!r}: expected an EVM address, 0x and 40 hexadecimal "
                         "digits")
    user = w3.to_checksum_address(wallet)
    balance = await vault.functions.balances(user).call()
    requested = await vault.functions.withdrawal_requested(user).call()
    print(f"vault balance {plain(from_units(balance, decimals))}")
    print(f"withdrawal requested {plain(from_units(requested, decimals))}")
    for symbol, address in sorted(deployment.index_tokens.items()):
        held = await contract(w3, "IndexToken", address).functions.balanceOf(user).call()
        print(f"{symbol} {plain(from_units(held, 18))}")
    return EXIT_OK


def _key(variable: str) -> LocalAccount:
    from eth_account import Account

    key = os.environ.get(variable)
    if not key:
        raise UsageError(f"no private key in the environment variable {variable}")
    try:
        account: LocalAccount = Account.from_key(key)
    except (ValueError, TypeError):
        raise UsageError(f"{variable} does not hold a private key") from None
    return account


def _amount(text: str) -> Decimal:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise UsageError(f"amount {text!r} is not a number") from None
    if not amount.is_finite() or amount <= 0:
        raise UsageError(f"amount {text!r} must be above zero")
    problem = amount_problem(amount)
    if problem is not None:
        raise UsageError(f"amount {text!r}: {problem}")
    return amount
