"""Counsellors' PINs: kept only as a slow salted hash, `scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`, and checked in
constant time. Pure: the caller brings the salt (`ivr counsellor` makes it), nothing here reads a clock or a file.

A PIN is 6 to 12 digits, not all one digit and not a run up or down (123456, 987654): the lockout allows 5 wrong
tries in 15 minutes per counsellor id, so a million PINs keep a guesser busy for years.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import re

COUNSELLOR_ID = r"^\d{4,8}$"  # keyed on the phone's keypad, then #
PIN_MIN, PIN_MAX = 6, 12
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # about 16 MB and 40 ms per check
HASH_BYTES = 32
MAX_MEMORY = 64 << 20  # bytes one check may take (128*n*r): a hash written by hand cannot exhaust the server
_B64 = r"[A-Za-z0-9+/]+={0,2}"
PIN_HASH_PATTERN = rf"^scrypt\$(\d{{1,8}})\$(\d{{1,3}})\$(\d{{1,3}})\${_B64}\${_B64}$"
PIN_HASH = re.compile(PIN_HASH_PATTERN)
# Checked against when the id is unknown, so a wrong id costs the same time as a wrong PIN (no PIN matches it:
# its hash is not scrypt's output for any input we know of; the salt and hash are fixed bytes).
DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def weak_pin(pin: str) -> str | None:
    """Why this PIN may not be used, or None when it may."""
    if not re.fullmatch(r"\d+", pin):
        return "a PIN is digits only (0-9)"
    if not PIN_MIN <= len(pin) <= PIN_MAX:
        return f"a PIN is {PIN_MIN} to {PIN_MAX} digits (this one has {len(pin)})"
    if len(set(pin)) == 1:
        return "a PIN of one digit repeated is the first one guessed"
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(pin)}
    if steps in ({1}, {9}):
        return "a PIN that runs up or down the keypad (123456, 987654) is among the first guessed"
    return None


def hash_pin(pin: str, salt: bytes, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """The stored form of a PIN: scrypt with these parameters and salt, all written into the string."""
    digest = _scrypt(pin, salt, n, r, p)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def pin_matches(stored: str, pin: str) -> bool:
    """True when `pin` is the PIN `stored` was made from; the digests are compared in constant time."""
    parsed = _parse(stored)
    if parsed is None or hash_problem(stored) is not None:
        return False
    n, r, p, salt, expected = parsed
    return hmac.compare_digest(_scrypt(pin, salt, n, r, p), expected)


def hash_problem(stored: str) -> str | None:
    """Why a stored PIN hash is unusable, or None when it is one `pin_matches` can check."""
    parsed = _parse(stored)
    if parsed is None:
        return ("not a PIN hash: write scrypt$<n>$<r>$<p>$<salt>$<hash> as `ivr counsellor add` or "
                "`ivr counsellor reset` writes it")
    n, r, p, salt, expected = parsed
    if n < SCRYPT_N or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 4 or 128 * n * r > MAX_MEMORY:
        return (f"scrypt parameters n={n}, r={r}, p={p}: n must be a power of two of at least {SCRYPT_N}, r 1-32, "
                f"p 1-4, and 128*n*r at most {MAX_MEMORY >> 20} MB")
    if len(salt) < 16 or len(expected) < 32:
        return "the salt must be at least 16 bytes and the hash at least 32: write it again with `ivr counsellor reset`"
    return None


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    if not PIN_HASH.fullmatch(stored):
        return None
    _, n, r, p, salt, digest = stored.split("$")
    try:
        return int(n), int(r), int(p), base64.b64decode(salt, validate=True), base64.b64decode(digest, validate=True)
    except (binascii.Error, ValueError):
        return None


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES, maxmem=MAX_MEMORY + 2**20)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


__all__ = ["COUNSELLOR_ID", "DUMMY_HASH", "PIN_HASH_PATTERN", "hash_pin", "hash_problem", "pin_matches", "weak_pin"]
