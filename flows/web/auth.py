"""Who may do what in the workbench: passwords, API tokens, CSRF tokens and the role table.

- Passwords are hashed with Argon2id (argon2-cffi); only the hash is stored.
- API tokens are 256-bit random strings shown once; the store keeps their SHA-256 (a token
  is not a password a person chose: a fast hash of a random secret cannot be brute-forced,
  and a lookup by hash keeps the API fast).
- CSRF: each session carries a random token; every form posts it back and the server
  compares it in constant time. The JSON API takes bearer tokens only, never the session
  cookie, so a page elsewhere cannot make a signed-in browser call it.
- `PERMISSIONS` is the one table of what each role may do; every route names the
  permission it needs and is checked on the server.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from data.permissions import make_dirs

#: Roles that sign in to the workbench (the `system` account never does).
WEB_ROLES = ("underwriter", "analyst", "viewer")
#: permission -> the roles that hold it.
PERMISSIONS: dict[str, frozenset[str]] = {
    # the queue, buyer pages and the audit trail
    "read": frozenset({"underwriter", "analyst", "viewer"}),
    # decide a proposal within one's authority; take or hand back a limit
    "decide": frozenset({"underwriter"}),
    # enter a policyholder's limit request (the desk answers it by the policy)
    "request": frozenset({"underwriter", "analyst"}),
    # model versions and their validation
    "model": frozenset({"analyst"}),
}

_HASHER = PasswordHasher()
#: Verified against when the user does not exist, so a wrong name costs the same time.
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; constant work whether or not a hash exists."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    """A random password to hand to a new user once (they may change it)."""
    return secrets.token_urlsafe(12)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_token() -> tuple[str, str]:
    """(token shown once to its holder, hash kept in the store)."""
    token = "sv_" + secrets.token_urlsafe(32)
    return token, token_hash(token)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and secrets.compare_digest(str(expected), str(given))


def allowed(role: str | None, permission: str) -> bool:
    return role is not None and role in PERMISSIONS[permission]


def secret_key(configured: str | None, key_file: Path) -> tuple[str, bool]:
    """The key that signs session cookies: the configured one, else a random one kept in
    `key_file` (created 0600 on first use). Returns (key, generated_here)."""
    if configured:
        return configured, False
    if key_file.exists():
        return key_file.read_text().strip(), True
    make_dirs(key_file.parent)
    key = secrets.token_hex(32)
    tmp = key_file.with_name(key_file.name + ".tmp")
    tmp.unlink(missing_ok=True)
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable
    with os.fdopen(descriptor, "w") as out:
        out.write(key + "\n")
    tmp.replace(key_file)
    return key, True


class SignInThrottle:
    """Refuses sign-in for a user name after `attempts` failures within `window` seconds,
    until the window has passed (guessing passwords becomes too slow to matter). Kept in
    memory per process: a restart forgets, which a lock-out of minutes can afford."""

    def __init__(self, attempts: int = 5, window: float = 900.0) -> None:
        self.attempts, self.window = attempts, window
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, name: str, now: float) -> deque[float]:
        failures = self._failures[name.lower()]
        while failures and now - failures[0] > self.window:
            failures.popleft()
        return failures

    def blocked_for(self, name: str) -> float:
        """Seconds until `name` may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            failures = self._recent(name, now)
            if len(failures) < self.attempts:
                return 0.0
            return max(0.0, self.window - (now - failures[0]))

    def failed(self, name: str) -> None:
        with self._lock:
            self._recent(name, time.monotonic()).append(time.monotonic())

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name.lower(), None)
