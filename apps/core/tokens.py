"""Random secrets that are shown once and stored only as a hash."""

import hashlib
import secrets


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    # The tokens are 256-bit random values, so a plain SHA-256 is enough: there is
    # nothing to brute-force and no need for a slow password hash.
    return hashlib.sha256(token.encode()).hexdigest()
