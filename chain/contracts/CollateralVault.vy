# pragma version ~=0.4.3
# @license MIT
"""
@title CollateralVault: one per collateral token
@notice Each user's collateral stays here, in their own balance, until a settlement charges it.
        The operator settles only orders their users signed (EIP-712): each fill charges and
        mints in the same transaction, within the signed collateral, limit price, fee bound
        and deadline, and exactly once (`settle_batch`); nothing else moves a balance.
        A user can always leave: request, wait `withdrawal_delay`, withdraw. Nothing the owner
        or the operator can do (pause included) stops that, and the delay is immutable.
        `withdrawal_grace` after a request, what it asks for is locked: no settlement may
        leave the balance below it, so the exit pays what the user asked for (settlements of
        purchases made before the request have the grace to land).
        The owner cannot take what the operator cannot: a new operator, treasury or index
        token is announced and takes effect `change_delay` later (at least the withdrawal
        delay), so every user can leave first; the vault deploys its index tokens itself.
"""

from ethereum.ercs import IERC20


interface IIndexToken:
    def mint(receiver: address, amount: uint256): nonpayable


# What a user signs (EIP-712, in this vault's domain): at most `max_collateral` of the
# collateral, fees included, for units of `token` at no more than `limit_price` collateral
# per whole unit (10**18), fees at most `max_fee_bps` of what is charged, until `deadline`.
# `cl_ord_id` is the order's first ClOrdID: with the user it names the order, and every
# signature under that name shares one filled amount (a replace that raises the amount
# signs again under the same name).
struct Order:
    user: address
    token: address
    max_collateral: uint256
    limit_price: uint256
    max_fee_bps: uint256
    deadline: uint256
    cl_ord_id: String[64]

# One fill of a signed order: `filled_before` is what the operator read as charged against
# the order so far; the settlement applies only if that is still so (exactly once, in order).
struct Settlement:
    order: Order
    signature: Bytes[65]
    order_key: bytes32
    filled_before: uint256
    collateral_spent: uint256
    units: uint256
    fees: uint256


event Deposited:
    user: indexed(address)
    deposit_id: indexed(uint256)
    amount: uint256
    ref: uint256
    balance: uint256

event OrderSettled:
    order_key: indexed(bytes32)
    user: indexed(address)
    token: indexed(address)
    collateral_spent: uint256
    units: uint256
    fees: uint256
    cl_ord_id: String[256]
    balance: uint256

event SettlementSkipped:
    order_key: indexed(bytes32)
    user: indexed(address)
    reason: String[32]

event OrderCancelled:
    user: indexed(address)
    order_id: indexed(bytes32)
    cl_ord_id: String[64]
    effective_at: uint256

event WithdrawalRequested:
    user: indexed(address)
    amount: uint256
    ready_at: uint256
    locked_at: uint256

event Withdrawn:
    user: indexed(address)
    requested: uint256
    amount: uint256
    released: bool
    balance: uint256

event Paused:
    by: indexed(address)

event Unpaused:
    by: indexed(address)

event OperatorAnnounced:
    operator: indexed(address)
    effective_at: uint256

event OperatorSet:
    operator: indexed(address)

event TreasuryAnnounced:
    treasury: indexed(address)
    effective_at: uint256

event TreasurySet:
    treasury: indexed(address)

event IndexTokenAnnounced:
    name: String[64]
    symbol: String[32]
    effective_at: uint256

event IndexTokenAdded:
    token: indexed(address)
    symbol: String[32]

event OwnershipTransferStarted:
    owner: indexed(address)
    new_owner: indexed(address)

event OwnershipTransferred:
    owner: indexed(address)
    new_owner: indexed(address)


collateral: public(immutable(IERC20))
# immutable so that no key can lengthen it and trap users
withdrawal_delay: public(immutable(uint256))
# shorter than the delay: settlements of purchases made before a request land within it
withdrawal_grace: public(immutable(uint256))

# how long an announced operator, treasury or index token waits: at least the withdrawal
# delay, so a user who disagrees can leave before it takes effect
change_delay: public(immutable(uint256))
# the IndexToken initcode (ERC-5202) every index token is created from: a token the vault did
# not create could answer anything, and a settlement would charge collateral for nothing
token_blueprint: public(immutable(address))

MAX_INITIAL_TOKENS: constant(uint256) = 16

MAX_BATCH: constant(uint256) = 128
BPS: constant(uint256) = 10_000
UNIT: constant(uint256) = 10**18
# settlement amounts and signed prices above this are refused, so no product can overflow
# (an overflow would revert the whole batch: one order must never stop the others)
MAX_AMOUNT: constant(uint256) = 2**128 - 1
HALF_CURVE_ORDER: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168
DOMAIN_TYPE_HASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
ORDER_TYPE_HASH: constant(bytes32) = keccak256(
    "Order(address user,address token,uint256 maxCollateral,uint256 limitPrice,"
    "uint256 maxFeeBps,uint256 deadline,string clOrdId)")
DOMAIN_NAME: constant(String[32]) = "IndexSolverVault"
DOMAIN_VERSION: constant(String[8]) = "1"
# an order's word: charged so far (bits 0-127), block of its last settlement (128-191), when
# its cancellation takes effect (192-255, 0: not cancelled); one read and one write a fill
LOW_128: constant(uint256) = 2**128 - 1
LOW_64: constant(uint256) = 2**64 - 1

# long enough for the solver to settle what a user bought, short enough that no deployment
# can trap users (2**256-1 would make every request revert)
MIN_DELAY: constant(uint256) = 3600
MAX_DELAY: constant(uint256) = 30 * 86400

owner: public(address)
pending_owner: public(address)
operator: public(address)
treasury: public(address)
paused: public(bool)

# the announced changes; `*_at` is when each may be applied (0: none announced)
next_operator: public(address)
next_operator_at: public(uint256)
next_treasury: public(address)
next_treasury_at: public(uint256)
next_token_name: public(String[64])
next_token_symbol: public(String[32])
next_token_at: public(uint256)

balances: public(HashMap[address, uint256])
# sum of balances: what the vault owes its users (reconciliation reads one word)
total_balances: public(uint256)
deposit_count: public(uint256)
# only registered tokens can be minted; an arbitrary address would let the operator charge
# collateral while "minting" a token of its own
index_tokens: public(HashMap[address, bool])

# signed orders by `order_id(user, cl_ord_id)`, each one word (see LOW_128)
orders: HashMap[bytes32, uint256]

withdrawal_requested: public(HashMap[address, uint256])
withdrawal_ready_at: public(HashMap[address, uint256])
withdrawal_locked_at: public(HashMap[address, uint256])


@deploy
def __init__(collateral_: IERC20, treasury_: address, operator_: address, delay: uint256,
             grace: uint256, change_delay_: uint256, blueprint: address,
             token_names: DynArray[String[64], MAX_INITIAL_TOKENS],
             token_symbols: DynArray[String[32], MAX_INITIAL_TOKENS]):
    """
    @notice The vault, and its first index tokens (names and symbols side by side), created
            before anyone can deposit: what a user deposits into is fixed when they look.
    """
    assert treasury_ != empty(address), "zero treasury"
    assert delay >= MIN_DELAY and delay <= MAX_DELAY, "delay not within an hour and 30 days"
    assert grace < delay, "grace not below delay"
    assert change_delay_ >= delay and change_delay_ <= 2 * MAX_DELAY, \
        "change delay not within the withdrawal delay and 60 days"
    assert blueprint.is_contract, "no token blueprint"
    assert len(token_names) == len(token_symbols), "names and symbols differ in number"
    collateral = collateral_
    withdrawal_delay = delay
    withdrawal_grace = grace
    change_delay = change_delay_
    token_blueprint = blueprint
    self.owner = msg.sender
    self.operator = operator_
    self.treasury = treasury_
    for i: uint256 in range(len(token_names), bound=MAX_INITIAL_TOKENS):
        self._create_index_token(token_names[i], token_symbols[i])


# --- administration (owner), every change announced first --------------------------------

@external
def announce_operator(operator_: address):
    assert msg.sender == self.owner, "not owner"
    effective_at: uint256 = block.timestamp + change_delay
    self.next_operator = operator_
    self.next_operator_at = effective_at
    log OperatorAnnounced(operator=operator_, effective_at=effective_at)


@external
def apply_operator():
    assert msg.sender == self.owner, "not owner"
    self._ripe(self.next_operator_at)
    self.operator = self.next_operator
    self.next_operator = empty(address)
    self.next_operator_at = 0
    log OperatorSet(operator=self.operator)


@external
def announce_treasury(treasury_: address):
    assert msg.sender == self.owner, "not owner"
    assert treasury_ != empty(address), "zero treasury"
    effective_at: uint256 = block.timestamp + change_delay
    self.next_treasury = treasury_
    self.next_treasury_at = effective_at
    log TreasuryAnnounced(treasury=treasury_, effective_at=effective_at)


@external
def apply_treasury():
    assert msg.sender == self.owner, "not owner"
    self._ripe(self.next_treasury_at)
    self.treasury = self.next_treasury
    self.next_treasury = empty(address)
    self.next_treasury_at = 0
    log TreasurySet(treasury=self.treasury)


@external
def announce_index_token(name: String[64], symbol: String[32]):
    assert msg.sender == self.owner, "not owner"
    effective_at: uint256 = block.timestamp + change_delay
    self.next_token_name = name
    self.next_token_symbol = symbol
    self.next_token_at = effective_at
    log IndexTokenAnnounced(name=name, symbol=symbol, effective_at=effective_at)


@external
def apply_index_token() -> address:
    assert msg.sender == self.owner, "not owner"
    self._ripe(self.next_token_at)
    token: address = self._create_index_token(self.next_token_name, self.next_token_symbol)
    self.next_token_name = ""
    self.next_token_symbol = ""
    self.next_token_at = 0
    return token


@external
def transfer_ownership(new_owner: address):
    # two steps: a mistyped address cannot take the vault out of reach
    assert msg.sender == self.owner, "not owner"
    self.pending_owner = new_owner
    log OwnershipTransferStarted(owner=self.owner, new_owner=new_owner)


@external
def accept_ownership():
    assert msg.sender == self.pending_owner, "not pending owner"
    log OwnershipTransferred(owner=self.owner, new_owner=msg.sender)
    self.owner = msg.sender
    self.pending_owner = empty(address)


@external
def pause():
    # the operator may pause too: stopping new business is always safe, exits stay open
    assert msg.sender == self.owner or msg.sender == self.operator, "not owner or operator"
    self.paused = True
    log Paused(by=msg.sender)


@external
def unpause():
    assert msg.sender == self.owner, "not owner"
    self.paused = False
    log Unpaused(by=msg.sender)


# --- users ------------------------------------------------------------------------------------

@external
@nonreentrant
def deposit(amount: uint256, ref: uint256) -> uint256:
    assert not self.paused, "paused"
    assert amount > 0, "zero amount"
    # pull first, credit after: a failed pull credits nothing (ERC-4626 order)
    assert extcall collateral.transferFrom(msg.sender, self, amount, default_return_value=True), "transferFrom"
    # ids are 0, 1, 2, ... with no gaps, so a reader can prove it saw every deposit
    deposit_id: uint256 = self.deposit_count
    self.deposit_count = deposit_id + 1
    new_balance: uint256 = self.balances[msg.sender] + amount
    self.balances[msg.sender] = new_balance
    self.total_balances += amount
    log Deposited(user=msg.sender, deposit_id=deposit_id, amount=amount, ref=ref, balance=new_balance)
    return deposit_id


@external
def request_withdrawal(amount: uint256) -> uint256:
    # not paused-gated: the exit must stay open. A new request replaces the old one and
    # restarts the clock; only the user can do that to themselves. The amount is clamped to
    # the balance (2**256-1 asks for everything), so what is locked is what can be paid.
    assert amount > 0, "zero amount"
    balance: uint256 = self.balances[msg.sender]
    assert balance > 0, "nothing to withdraw"
    asked: uint256 = min(amount, balance)
    ready_at: uint256 = block.timestamp + withdrawal_delay
    locked_at: uint256 = block.timestamp + withdrawal_grace
    self.withdrawal_requested[msg.sender] = asked
    self.withdrawal_ready_at[msg.sender] = ready_at
    self.withdrawal_locked_at[msg.sender] = locked_at
    log WithdrawalRequested(user=msg.sender, amount=asked, ready_at=ready_at, locked_at=locked_at)
    return ready_at


@external
@nonreentrant
def withdraw() -> uint256:
    requested: uint256 = self.withdrawal_requested[msg.sender]
    assert requested > 0, "no request"
    assert block.timestamp >= self.withdrawal_ready_at[msg.sender], "too early"
    return self._pay_out(msg.sender, requested, False)


# --- operator -----------------------------------------------------------------------------

@external
@nonreentrant
def release(user: address, amount: uint256) -> uint256:
    # the fast path: the solver has set `amount` aside for the request, so it pays the user
    # now instead of making them wait. Pays only to the user, so it cannot divert funds, and
    # at most `amount`: a request raised since the solver saw it waits for its own clock.
    assert msg.sender == self.operator, "not operator"
    assert self.withdrawal_requested[user] > 0, "no request"
    return self._pay_out(user, amount, True)


@external
@nonreentrant
def settle_batch(settlements: DynArray[Settlement, MAX_BATCH]) -> uint256:
    """
    @notice Settle each fill its user signed for: charge `collateral_spent` (fees included)
            to the treasury and mint `units` of the order's token to the user. A fill that
            does not hold is skipped with `SettlementSkipped` naming why, and the others
            settle. Returns how many settled.
    """
    assert msg.sender == self.operator, "not operator"
    assert not self.paused, "paused"
    domain: bytes32 = self._domain_separator()
    charged: uint256 = 0
    settled_count: uint256 = 0
    for s: Settlement in settlements:
        refusal: String[32] = self._settle_signed(s, domain)
        if refusal == "":
            charged += s.collateral_spent
            settled_count += 1
        else:
            log SettlementSkipped(order_key=s.order_key, user=s.order.user, reason=refusal)
    if charged > 0:
        self.total_balances -= charged
        assert extcall collateral.transfer(self.treasury, charged, default_return_value=True), "transfer"
    return settled_count


@external
def cancel_order(cl_ord_id: String[64]) -> uint256:
    """
    @notice Cancel the caller's order named `cl_ord_id`, every signature under that name:
            no fill settles from `withdrawal_grace` on (what the house bought before has that
            long to settle). Never paused, and a second cancel never postpones the first.
            Returns when it takes effect.
    """
    order_id: bytes32 = self._order_id(msg.sender, cl_ord_id)
    word: uint256 = self.orders[order_id]
    effective_at: uint256 = block.timestamp + withdrawal_grace
    cancel_at: uint256 = word >> 192
    if cancel_at == 0 or cancel_at > effective_at:
        cancel_at = effective_at
        self.orders[order_id] = (word & (LOW_128 | (LOW_64 << 128))) | (cancel_at << 192)
    log OrderCancelled(user=msg.sender, order_id=order_id, cl_ord_id=cl_ord_id, effective_at=cancel_at)
    return cancel_at


# --- views --------------------------------------------------------------------------------

@view
@external
def domain_separator() -> bytes32:
    return self._domain_separator()


@view
@external
def order_digest(order: Order) -> bytes32:
    """@notice What the user signs for `order` (EIP-712)."""
    return self._digest(order, self._domain_separator())


@view
@external
def order_id(user: address, cl_ord_id: String[64]) -> bytes32:
    """@notice The name of a user's order: keccak256(abi.encode(user, keccak256(cl_ord_id)))."""
    return self._order_id(user, cl_ord_id)


@view
@external
def order_state(order_id: bytes32) -> (uint256, uint256, uint256):
    """
    @notice What has been charged against the order, the block of its last settlement
            (0: none), and when its cancellation takes effect (0: not cancelled).
    """
    word: uint256 = self.orders[order_id]
    return word & LOW_128, (word >> 128) & LOW_64, word >> 192


@view
@external
def order_key(order_uid: Bytes[256]) -> bytes32:
    """
    @notice The settlement key of an order: keccak256(abi.encode(chain id, this vault,
            order_uid)). Binding the chain and the vault means the same journal order id
            never collides across deployments or chains.
    """
    return keccak256(abi_encode(chain.id, self, order_uid))


@internal
def _settle_signed(s: Settlement, domain: bytes32) -> String[32]:
    """The refusal of one fill, or "" once it is settled (but for the treasury's transfer)."""
    o: Order = s.order
    if not self.index_tokens[o.token]:
        return "unknown index token"
    if s.units == 0 or s.collateral_spent == 0:
        return "zero units or spent"
    if s.units > MAX_AMOUNT or s.collateral_spent > MAX_AMOUNT or o.limit_price > MAX_AMOUNT:
        return "amount out of range"
    if s.fees > s.collateral_spent:
        return "fees exceed spent"
    if block.timestamp > o.deadline:
        return "expired"
    if s.collateral_spent * UNIT > s.units * o.limit_price:
        return "price above signed limit"
    if s.fees * BPS > s.collateral_spent * min(o.max_fee_bps, BPS):
        return "fees above signed bound"
    order_id: bytes32 = self._order_id(o.user, o.cl_ord_id)
    word: uint256 = self.orders[order_id]
    filled: uint256 = word & LOW_128
    cancel_at: uint256 = word >> 192
    if cancel_at != 0 and block.timestamp >= cancel_at:
        return "cancelled"
    if filled != s.filled_before:
        return "already settled"
    if s.collateral_spent > o.max_collateral or filled > o.max_collateral - s.collateral_spent:
        return "above signed collateral"
    if not self._signed_by(o, s.signature, domain):
        return "bad signature"
    balance: uint256 = self.balances[o.user]
    if balance < s.collateral_spent:
        return "insufficient balance"
    balance -= s.collateral_spent
    requested: uint256 = self.withdrawal_requested[o.user]
    if requested > balance and block.timestamp >= self.withdrawal_locked_at[o.user]:
        return "locked for withdrawal"
    self.orders[order_id] = (filled + s.collateral_spent) | (block.number << 128) | (cancel_at << 192)
    self.balances[o.user] = balance
    extcall IIndexToken(o.token).mint(o.user, s.units)
    log OrderSettled(
        order_key=s.order_key, user=o.user, token=o.token, collateral_spent=s.collateral_spent,
        units=s.units, fees=s.fees, cl_ord_id=o.cl_ord_id, balance=balance,
    )
    return ""


@view
@internal
def _signed_by(o: Order, signature: Bytes[65], domain: bytes32) -> bool:
    # 65 bytes r, s, v; s in the lower half of the curve order (EIP-2), so no second form
    if len(signature) != 65:
        return False
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if s > HALF_CURVE_ORDER or (v != 27 and v != 28):
        return False
    signer: address = ecrecover(self._digest(o, domain), v, r, s)
    return signer != empty(address) and signer == o.user


@view
@internal
def _digest(o: Order, domain: bytes32) -> bytes32:
    order_hash: bytes32 = keccak256(abi_encode(
        ORDER_TYPE_HASH, o.user, o.token, o.max_collateral, o.limit_price, o.max_fee_bps,
        o.deadline, keccak256(o.cl_ord_id)))
    return keccak256(concat(x"1901", domain, order_hash))


@view
@internal
def _domain_separator() -> bytes32:
    # computed each call: after a chain split, signatures for the other chain's id fail
    return keccak256(abi_encode(
        DOMAIN_TYPE_HASH, keccak256(DOMAIN_NAME), keccak256(DOMAIN_VERSION), chain.id, self))


@pure
@internal
def _order_id(user: address, cl_ord_id: String[64]) -> bytes32:
    return keccak256(abi_encode(user, keccak256(cl_ord_id)))


@internal
def _ripe(effective_at: uint256):
    assert effective_at != 0, "nothing announced"
    assert block.timestamp >= effective_at, "announced change not due"


@internal
def _create_index_token(name: String[64], symbol: String[32]) -> address:
    # minted by this vault alone, so "token supply = units settled" holds by construction
    token: address = create_from_blueprint(token_blueprint, name, symbol, self)
    self.index_tokens[token] = True
    log IndexTokenAdded(token=token, symbol=symbol)
    return token


@internal
def _pay_out(user: address, most: uint256, released: bool) -> uint256:
    requested: uint256 = self.withdrawal_requested[user]
    balance: uint256 = self.balances[user]
    # settlements within the grace may have spent part of it: pay what is left, at most `most`
    amount: uint256 = min(min(requested, balance), most)
    if amount == requested or balance == amount:
        # all asked for is paid, or nothing is left to pay it from: the request is done
        self.withdrawal_requested[user] = 0
        self.withdrawal_ready_at[user] = 0
        self.withdrawal_locked_at[user] = 0
    else:
        # the rest of the request stays, on its own clock
        self.withdrawal_requested[user] = requested - amount
    balance -= amount
    self.balances[user] = balance
    self.total_balances -= amount
    if amount > 0:
        assert extcall collateral.transfer(user, amount, default_return_value=True), "transfer"
    log Withdrawn(user=user, requested=requested, amount=amount, released=released, balance=balance)
    return amount
