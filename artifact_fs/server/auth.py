"""Optional access control: HTTP basic auth and bearer tokens, as MLflow's clients send them.

MLflow clients send ``Authorization: Basic`` from ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` and
``Authorization: Bearer`` from ``MLFLOW_TRACKING_TOKEN``; either is accepted when configured.
Users come from a file (``user:password`` or ``user:pbkdf2_sha256$<iterations>$<salt>$<hex>`` lines,
``#`` comments) or ``ARTIFACT_FS_SERVER_USERS`` (``user:password,...``); tokens from a file (one per
line) or ``ARTIFACT_FS_SERVER_TOKENS`` (comma list). ``/health`` and ``server-info`` stay public, as
in MLflow, so clients can discover the server before they authenticate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from artifact_fs import settings
from artifact_fs.server.responses import error_response

PUBLIC_PATHS = frozenset({"/health", "/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info"})
_PBKDF2 = "pbkdf2_sha256"
_VERIFIED_CACHE_SIZE = 256


def hash_password(password: str, iterations: int = 600_000, salt: str | None = None) -> str:
    """A ``pbkdf2_sha256$<iterations>$<salt>$<hex>`` entry for a users file."""
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations).hex()
    return f"{_PBKDF2}${iterations}${salt}${digest}"


def _check_password(stored: str, offered: str) -> bool:
    if stored.startswith(_PBKDF2 + "$"):
        try:
            _, iterations, salt, digest = stored.split("$", 3)
            computed = hashlib.pbkdf2_hmac("sha256", offered.encode(), salt.encode(), int(iterations)).hex()
        except ValueError:
            return False
        return hmac.compare_digest(computed, digest)
    return hmac.compare_digest(stored.encode(), offered.encode())


def _read_users(path: str | os.PathLike[str]) -> dict[str, str]:
    users: dict[str, str] = {}
    for number, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            user, password = settings.parse_user_password(line)
        except ValueError:
            raise ValueError(f"{path} line {number}: expected 'user:password'") from None
        users[user] = password
    return users


@dataclass(frozen=True)
class Credentials:
    """Who may call the server. Empty means access control is off."""

    users: Mapping[str, str] = field(default_factory=dict, repr=False)
    tokens: frozenset[str] = field(default_factory=frozenset, repr=False)

    @property
    def enabled(self) -> bool:
        return bool(self.users or self.tokens)

    @classmethod
    def load(
        cls,
        users_file: str | os.PathLike[str] | None = None,
        tokens_file: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Credentials:
        """Users and tokens from the given files and the ``ARTIFACT_FS_SERVER_*`` variables."""
        users: dict[str, str] = {}
        tokens: set[str] = set()
        users_file = users_file or settings.ARTIFACT_FS_SERVER_USERS_FILE.get(environ)
        if users_file:
            users.update(_read_users(users_file))
        users.update(settings.ARTIFACT_FS_SERVER_USERS.get(environ))
        tokens_file = tokens_file or settings.ARTIFACT_FS_SERVER_TOKENS_FILE.get(environ)
        if tokens_file:
            lines = Path(tokens_file).read_text().splitlines()
            tokens.update(t.strip() for t in lines if t.strip() and not t.strip().startswith("#"))
        tokens.update(settings.ARTIFACT_FS_SERVER_TOKENS.get(environ))
        return cls(users=users, tokens=frozenset(tokens))

    def allows(self, authorization: str | None, verified: dict[bytes, bool] | None = None) -> bool:
        """Whether an ``Authorization`` header value carries valid credentials."""
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return any(hmac.compare_digest(value.encode(), token.encode()) for token in self.tokens)
        if scheme.lower() != "basic" or not self.users:
            return False
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        stored = self.users.get(user)
        if not sep or stored is None:
            return False
        if verified is None:
            return _check_password(stored, password)
        # pbkdf2 is slow on purpose; remember recent successes by a digest, never the password.
        key = hashlib.sha256(f"{user}\0{stored}\0{password}".encode()).digest()
        if key not in verified:
            if len(verified) >= _VERIFIED_CACHE_SIZE:
                verified.clear()
            verified[key] = _check_password(stored, password)
        return verified[key]


class AuthMiddleware:
    """401 for requests without valid credentials, except the public discovery paths."""

    def __init__(self, app: ASGIApp, credentials: Credentials) -> None:
        self.app = app
        self.credentials = credentials
        self._verified: dict[bytes, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        authorization = next((v.decode("latin-1") for k, v in headers if k == b"authorization"), None)
        if self.credentials.allows(authorization, self._verified):
            await self.app(scope, receive, send)
            return
        response: Any = error_response(
            "UNAUTHENTICATED", "You are not authenticated. Send basic-auth credentials or a bearer token."
        )
        challenges = []
        if self.credentials.users:
            challenges.append('Basic realm="artifact-fs", charset="UTF-8"')
        if self.credentials.tokens:
            challenges.append('Bearer realm="artifact-fs"')
        response.headers["WWW-Authenticate"] = ", ".join(challenges)
        await response(scope, receive, send)
