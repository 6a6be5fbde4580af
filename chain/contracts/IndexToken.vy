# pragma version ~=0.4.3
# @license MIT
"""
@title IndexToken: the ERC-20 of one index
@notice Only its vault mints, and the vault mints only inside a settlement that charges the
        user's collateral in the same transaction. The minter is immutable: nobody, not even
        the deployer, can later add a key that mints without charging.
"""

from ethereum.ercs import IERC20
import erc20

implements: IERC20
initializes: erc20
exports: erc20.__interface__

# the CollateralVault that settles orders for this index
minter: public(immutable(address))


@deploy
def __init__(name_: String[64], symbol_: String[32], minter_: address):
    assert minter_ != empty(address), "zero minter"
    erc20.__init__(name_, symbol_, 18)
    minter = minter_


@external
def mint(receiver: address, amount: uint256):
    assert msg.sender == minter, "not minter"
    erc20._mint(receiver, amount)
