"""Accounts and access: who is asking, password and token hashing, session timeout.

Pure helpers without a database.  The checks themselves (clinic scoping,
roles, lock-out, share links) are enforced by :class:`analyzer.store.Store`,
which takes a :class:`Principal` as ``actor`` on every read and write.

* Passwords: argon2id (argon2-cffi defaults, RFC 9106 "low memory" profile:
  64 MiB, 3 passes, 4 lanes); only the hash string is stored.
* Share links: ``secrets.token_urlsafe(32)`` (256 bits); only its SHA-256 is
  stored (a fast hash is enough for a random token of that entropy).
* Login lock-out: 5 failures within 15 minutes per user name; the failures
  are stored under a SHA-256 of the name, so the table holds no names.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .errors import AuthError

STAFF_ROLES = ("admin", "practitioner", "read-only")
PATIENT_ROLE = "patient"
ROLES = STAFF_ROLES + (PATIENT_ROLE,)
WRITE_ROLES = ("admin", "practitioner")

SESSION_TIMEOUT_MINUTES = 30  # idle time after which a dashboard session ends
SESSION_MAX_HOURS = 12  # absolute session lifetime, however active
LOCKOUT_ATTEMPTS = 5
LOCKOUT_WINDOW_MINUTES = 15
SHARE_LINK_DAYS = 30
SHARE_LINK_MAX_DAYS = 365
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
DEMO_USERNAME = "demo"
DEMO_CREDENTIALS_FILE = "DEMO_CREDENTIALS.txt"

BAD_CREDENTIALS = "wrong user name or password"
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{2,63}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43,128}$")


@dataclass(frozen=True, repr=False)
class Principal:
    """Who is asking: a signed-in account or a patient's share link.

    Attributes
    ----------
    user_id : int or None
        Account id (``None`` for a share link).
    username : str
        Account name (``"patient"`` for a share link).  Not for logs: use
        ``str(principal)``.
    role : {"admin", "practitioner", "read-only", "patient"}
    clinic_id : int or None
        The clinic whose data the account may see.
    patient_id : int or None
        For ``role="patient"``: the one patient this link shows.
    link_id : int or None
        For ``role="patient"``: the share link's id.
    """

    user_id: int | None
    username: str
    role: str
    clinic_id: int | None
    patient_id: int | None = None
    link_id: int | None = None

    def __post_init__(self):
        if self.role not in ROLES:
            raise AuthError(f"unknown role {self.role!r}; use one of {', '.join(ROLES)}")
        if self.role == PATIENT_ROLE and self.patient_id is None:
            raise AuthError("a patient principal needs its patient id")

    @property
    def can_write(self) -> bool:
        """May change records (admin, practitioner)."""
        return self.role in WRITE_ROLES

    @property
    def is_patient(self) -> bool:
        """A patient's read-only view through a share link."""
        return self.role == PATIENT_ROLE

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def __str__(self) -> str:
        """Non-identifying label for the audit log: ``user:12`` or ``share:34``."""
        if self.is_patient:
            return f"share:{self.link_id}"
        return f"user:{self.user_id}"

    def __repr__(self) -> str:  # no user name: reprs end up in logs and tracebacks
        return f"Principal({self}, role={self.role}, clinic_id={self.clinic_id})"


def session_expired(started_at, last_seen, now, *,
                    idle_minutes: float = SESSION_TIMEOUT_MINUTES,
                    max_hours: float = SESSION_MAX_HOURS) -> bool:
    """Whether a dashboard session must sign in again.

    Parameters
    ----------
    started_at, last_seen, now : datetime or float
        Sign-in time, time of the last request and the current time, as
        datetimes (all aware or all naive) or ``time.time()`` seconds.
        ``None`` for ``started_at`` or ``last_seen`` counts as expired.
    idle_minutes : float
        Inactivity limit (``SESSION_TIMEOUT_MINUTES``).
    max_hours : float
        Absolute lifetime of a session (``SESSION_MAX_HOURS``).
    """
    if started_at is None or last_seen is None:
        return True
    start, seen, current = (_seconds(t) for t in (started_at, last_seen, now))
    return current - seen > idle_minutes * 60 or current - start > max_hours * 3600


def _seconds(t) -> float:
    return t.timestamp() if isinstance(t, datetime) else float(t)


# ----------------------------------------------------------------- passwords


def password_hasher():
    """The argon2id hasher (argon2-cffi ``PasswordHasher`` with its defaults)."""
    from argon2 import PasswordHasher, Type

    return PasswordHasher(type=Type.ID)


def hash_password(password: str, hasher=None) -> str:
    """argon2id hash string (salt and parameters included) of ``password``."""
    return (hasher or password_hasher()).hash(password)


def verify_password(stored_hash: str, password: str, hasher=None) -> bool:
    """Whether ``password`` matches ``stored_hash`` (False for a damaged hash)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return (hasher or password_hasher()).verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str, hasher=None) -> bool:
    """Whether a hash was made with older parameters (re-hashed at the next sign-in)."""
    try:
        return (hasher or password_hasher()).check_needs_rehash(stored_hash)
    except Exception:  # noqa: BLE001 - a damaged hash is replaced too
        return True


def check_password(password: str, username: str | None = None) -> str:
    """Refuse passwords that are too short, too long or equal to the user name."""
    if not isinstance(password, str):
        raise AuthError("the password must be text")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters "
                        "(a passphrase of several words is easiest)")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AuthError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    if username and password.strip().lower() == username.strip().lower():
        raise AuthError("the password must not be the user name")
    return password


def normalize_username(username: str) -> str:
    """Lower-case user name of 3–64 letters, digits and ``. _ @ -``."""
    name = username.strip().lower() if isinstance(username, str) else ""
    if not _USERNAME.match(name):
        raise AuthError("a user name has 3–64 characters: letters, digits and . _ @ - "
                        "(starting with a letter or digit)")
    return name


def username_key(username: str) -> str:
    """SHA-256 of the normalised name: the key of login attempts (no names stored)."""
    name = username.strip().lower() if isinstance(username, str) else ""
    return hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()


def random_password() -> str:
    """A random password (about 96 bits) for demo accounts and resets."""
    return secrets.token_urlsafe(16)


# ----------------------------------------------------------------- share tokens


def new_share_token() -> str:
    """A share-link token: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 hex of a share token: what the database keeps."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def looks_like_token(token) -> bool:
    """Cheap shape check before any database work."""
    return isinstance(token, str) and bool(_TOKEN.match(token))


# ----------------------------------------------------------------- demo account


def write_demo_credentials(data_dir: str | Path, username: str, password: str) -> Path:
    """Write ``<data_dir>/DEMO_CREDENTIALS.txt`` readable by the owner only (0600)."""
    path = Path(data_dir) / DEMO_CREDENTIALS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (f"user name: {username}\npassword: {password}\n"
                      "Demo account (practitioner). Delete this file once you have "
                      "noted the password.\n").encode())
    finally:
        os.close(fd)
    return path
