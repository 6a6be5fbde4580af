# pragma version ~=0.4.3
# @license MIT
"""
@title Minimal ERC-20 module shared by IndexToken and MockUSDC
@notice Written here rather than imported (snekmate is AGPL-3.0-only): the deployed bytecode
        must carry no copyleft code. Only the standard surface; minting is internal, so each
        contract decides who may mint.
"""

from ethereum.ercs import IERC20

name: public(String[64])
symbol: public(String[32])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])


@deploy
def __init__(name_: String[64], symbol_: String[32], decimals_: uint8):
    self.name = name_
    self.symbol = symbol_
    self.decimals = decimals_


@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._transfer(msg.sender, receiver, amount)
    return True


@external
def transferFrom(owner: address, receiver: address, amount: uint256) -> bool:
    allowed: uint256 = self.allowance[owner][msg.sender]
    # max_value is the conventional "infinite approval": leave it untouched to save a write
    if allowed != max_value(uint256):
        assert allowed >= amount, "erc20: allowance"
        self.allowance[owner][msg.sender] = allowed - amount
    self._transfer(owner, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log IERC20.Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    # burning by transfer to zero would silently shrink supply outside the vault's accounting
    assert receiver != empty(address), "erc20: zero receiver"
    assert self.balanceOf[sender] >= amount, "erc20: balance"
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount
    log IERC20.Transfer(sender=sender, receiver=receiver, value=amount)


@internal
def _mint(receiver: address, amount: uint256):
    assert receiver != empty(address), "erc20: zero receiver"
    self.totalSupply += amount
    self.balanceOf[receiver] += amount
    log IERC20.Transfer(sender=empty(address), receiver=receiver, value=amount)
