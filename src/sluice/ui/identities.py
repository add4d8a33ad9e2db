"""Who acts in the UI: per-person tokens, session cookies, CSRF tokens, a proxy header.

Tokens are random (32 bytes), so a salted SHA-256 of each is enough to store
them: nothing to brute-force, and checking one costs microseconds per request.
The tokens file (``$SLUICE_UI_TOKENS``, else ``.sluice/ui-tokens.json``) holds
only those hashes; a token is shown once, when it is made. Session cookies and
CSRF tokens are HMACs with a secret the server draws when it starts, so a
restart signs everybody out, and nothing secret is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.errors import UsageError
from sluice.util.fs import atomic_write_json, read_json

TOKENS_ENV = "SLUICE_UI_TOKENS"
PROXY_HEADER_ENV = "SLUICE_UI_TRUSTED_HEADER"  # e.g. X-Forwarded-User, set by the proxy
SESSION_COOKIE = "sluice_session"
SESSION_S = 12 * 3600
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")


def tokens_path(state_dir: Path) -> Path:
    value = os.environ.get(TOKENS_ENV)
    return Path(value) if value else state_dir / "ui-tokens.json"


def _digest(salt: str, token: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + token.encode()).hexdigest()


def add_token(path: Path, name: str) -> str:
    """Store a salted hash of a new token for ``name``; returns the token (shown once)."""
    if not _NAME.fullmatch(name):
        raise UsageError(f"`{name[:80]}` is not a usable name",
                         hint="letters, digits and . _ @ - (the name the audit log shows)")
    token = "sluice_" + secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    entries = load_tokens(path)
    entries.append({"name": name, "salt": salt, "hash": _digest(salt, token),
                    "created_at": time.time()})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"tokens": entries})
    os.chmod(path, 0o600)
    return token


def load_tokens(path: Path) -> list[dict[str, Any]]:
    data = read_json(path)
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
        raise UsageError(f"{path} is not a sluice tokens file",
                         hint=f"make one with `sluice ui token add NAME` (or point "
                              f"{TOKENS_ENV} elsewhere)")
    return [e for e in data["tokens"] if isinstance(e, dict)]


@dataclass
class Identities:
    """The identities a running UI knows, and its signing secret."""

    tokens: list[dict[str, Any]]
    proxy_header: str | None = None
    secret: bytes = b""

    def __post_init__(self) -> None:
        self.secret = self.secret or secrets.token_bytes(32)

    @classmethod
    def load(cls, state_dir: Path) -> Identities:
        header = os.environ.get(PROXY_HEADER_ENV) or None
        return cls(load_tokens(tokens_path(state_dir)), header)

    @property
    def configured(self) -> bool:
        return bool(self.tokens) or self.proxy_header is not None

    def by_token(self, token: str) -> str | None:
        """The name a token belongs to (every entry is checked: no timing hint)."""
        found = None
        for entry in self.tokens:
            if hmac.compare_digest(_digest(str(entry["salt"]), token), str(entry["hash"])):
                found = str(entry["name"])
        return found

    def _sign(self, text: str) -> str:
        return hmac.new(self.secret, text.encode(), hashlib.sha256).hexdigest()

    def session_for(self, name: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + SESSION_S)
        payload = f"{name}|{expires}"
        return f"{payload}|{self._sign(payload)}"

    def by_session(self, cookie: str | None, now: float | None = None) -> str | None:
        if not cookie or cookie.count("|") != 2:
            return None
        name, expires, mac = cookie.split("|")
        if not hmac.compare_digest(self._sign(f"{name}|{expires}"), mac):
            return None
        if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
            return None
        return name

    def csrf_for(self, name: str) -> str:
        return self._sign(f"csrf|{name}")

    def csrf_ok(self, name: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_for(name), str(token))
