"""Password hashes for FIX logons: scrypt, salted, compared in constant time.

Config holds only ``scrypt:N:r:p:salt:hash`` strings; ``index-solver fix-password`` makes one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

_SCHEME = "scrypt"
_N, _R, _P = 2**14, 8, 1


class BadPasswordHash(ValueError):
    """A configured hash this module cannot read."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"{_SCHEME}:{_N}:{_R}:{_P}:{salt.hex()}:{digest.hex()}"


def check_hash(stored: str) -> None:
    """Raise ``BadPasswordHash`` unless ``stored`` is a hash ``verify`` can use."""
    parts = stored.split(":")
    try:
        if len(parts) != 6 or parts[0] != _SCHEME:
            raise ValueError
        n, r, p = (int(x) for x in parts[1:4])
        bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
        if n < 2 or n & (n - 1) or r < 1 or p < 1:
            raise ValueError
    except ValueError:
        raise BadPasswordHash("expected scrypt:N:r:p:salt-hex:hash-hex, as printed by "
                              "`index-solver fix-password`") from None


def verify(password: str, stored: str) -> bool:
    check_hash(stored)
    _, n, r, p, salt, digest = stored.split(":")
    expected = bytes.fromhex(digest)
    actual = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                            p=int(p), dklen=len(expected))
    return hmac.compare_digest(actual, expected)
