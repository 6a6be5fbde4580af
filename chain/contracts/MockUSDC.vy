# pragma version ~=0.4.3
# @license MIT
"""
@title MockUSDC: collateral stand-in for tests and the demo ONLY
@notice Anyone may mint any amount; never deploy where value is at stake.
        6 decimals like USDC, so amounts in tests match real ones.
"""

from ethereum.ercs import IERC20
import erc20

implements: IERC20
initializes: erc20
exports: erc20.__interface__


@deploy
def __init__():
    erc20.__init__("Mock USD Coin", "mUSDC", 6)


@external
def mint(receiver: address, amount: uint256):
    erc20._mint(receiver, amount)
