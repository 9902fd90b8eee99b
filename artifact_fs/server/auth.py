"""Optional access control: HTTP basic auth and bearer tokens, as MLflow's clients send them.

MLflow clients send ``Authorization: Basic`` from ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` and
``Authorization: Bearer`` from ``MLFLOW_TRACKING_TOKEN``; either is accepted when configured.
Users come from a file (``user:password`` or ``user:pbkdf2_sha256$<iterations>$<salt>$<hex>`` lines,
``#`` comments) or ``ARTIFACT_FS_SERVER_USERS`` (``user:password,...``); tokens from a file (one per
line) or ``ARTIFACT_FS_SERVER_TOKENS`` (comma list). ``/health`` and ``server-info`` stay public, as
in MLflow, so clients can discover the server before they authenticate.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import math
import os
import secrets
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from artifact_fs import settings
from artifact_fs.server.responses import error_response

PUBLIC_PATHS = frozenset({"/health", "/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info"})
_PBKDF2 = "pbkdf2_sha256"
_VERIFIED_CACHE_SIZE = 256
VERIFIER_THREADS = 2
"""Password hashes computed at once: enough for real users, too few to starve the server's threads."""


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
    # plain passwords: compare digests, so the time says nothing about the length either
    return hmac.compare_digest(
        hashlib.sha256(stored.encode()).digest(), hashlib.sha256(offered.encode()).digest()
    )


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
        """Whether an ``Authorization`` header value carries valid credentials.

        Constant-time throughout: every token is compared, and an unknown user costs the same
        password hash as a known one, so timing tells neither a token's prefix nor who exists.
        ``verified`` remembers recent successes (by a digest, never the password).
        """
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            offered = hashlib.sha256(value.encode()).digest()
            matched = False
            for token in self.tokens:
                matched |= hmac.compare_digest(offered, hashlib.sha256(token.encode()).digest())
            return matched
        if scheme.lower() != "basic" or not self.users:
            return False
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        stored = self.users.get(user)
        if not sep or stored is None:
            _check_password(self._dummy_hash, password)  # the same work as for a real user
            return False
        key = _success_key(user, stored, password)
        if verified is not None and key in verified:
            return True
        if not _check_password(stored, password):
            return False
        if verified is not None:
            if len(verified) >= _VERIFIED_CACHE_SIZE:
                verified.clear()
            verified[key] = True  # successes only: failures must not evict them
        return True

    def remembered(self, authorization: str | None, verified: Mapping[bytes, bool]) -> bool:
        """Whether these credentials succeeded recently (no hashing: safe on the event loop)."""
        if not authorization or not self.users:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        stored = self.users.get(user)
        return stored is not None and _success_key(user, stored, password) in verified

    @functools.cached_property
    def _dummy_hash(self) -> str:
        """A hash as costly as the users' own, for users that do not exist."""
        iterations = [int(v.split("$")[1]) for v in self.users.values() if _is_hashed(v)]
        if not iterations:
            return secrets.token_hex(16)
        return hash_password(secrets.token_hex(16), iterations=max(iterations))


def _is_hashed(stored: str) -> bool:
    parts = stored.split("$")
    return len(parts) == 4 and parts[0] == _PBKDF2 and parts[1].isdigit()


def _success_key(user: str, stored: str, password: str) -> bytes:
    return hashlib.sha256(f"{user}\0{stored}\0{password}".encode()).digest()


class FailureBackoff:
    """Per-client back-off: after ``free`` failed attempts a client waits ``2 ** n`` seconds (capped)."""

    def __init__(self, free: int = 5, cap: float = 60.0, clients: int = 10_000) -> None:
        self.free, self.cap, self.clients = free, cap, clients
        self._failures: dict[str, tuple[int, float]] = {}

    def wait(self, client: str) -> float:
        """Seconds ``client`` must still wait before its credentials are checked again."""
        count, last = self._failures.get(client, (0, 0.0))
        if count < self.free:
            return 0.0
        return max(0.0, last + min(self.cap, 2.0 ** (count - self.free)) - time.monotonic())

    def failed(self, client: str) -> None:
        if len(self._failures) >= self.clients:
            self._failures.clear()  # bounded memory; a flood of addresses only resets the counts
        count, _ = self._failures.get(client, (0, 0.0))
        self._failures[client] = (count + 1, time.monotonic())

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


class AuthMiddleware:
    """401 for requests without valid credentials, except the public discovery paths.

    Password hashing runs on a small thread pool, never on the event loop, so guessing clients
    cannot stall other requests; credentials that succeeded recently are answered from memory,
    and a client that keeps failing is told to wait (429 with ``Retry-After``) without any hashing.
    """

    def __init__(self, app: ASGIApp, credentials: Credentials, verifiers: int = VERIFIER_THREADS) -> None:
        self.app = app
        self.credentials = credentials
        self._verified: dict[bytes, bool] = {}
        self._backoff = FailureBackoff()
        self._pool = ThreadPoolExecutor(max_workers=verifiers, thread_name_prefix="artifact-fs-auth")

    async def _allowed(self, authorization: str | None, client: str) -> bool | float:
        """True, False, or the seconds a backed-off client must wait."""
        if self.credentials.remembered(authorization, self._verified):
            return True
        wait = self._backoff.wait(client)
        if wait > 0:
            return wait
        loop = asyncio.get_running_loop()
        allowed = await loop.run_in_executor(
            self._pool, self.credentials.allows, authorization, self._verified
        )
        if allowed:
            self._backoff.succeeded(client)
        else:
            self._backoff.failed(client)
        return allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        authorization = next((v.decode("latin-1") for k, v in headers if k == b"authorization"), None)
        client = (scope.get("client") or ("unknown", 0))[0]
        allowed = await self._allowed(authorization, client)
        if allowed is True:
            await self.app(scope, receive, send)
            return
        response: Any
        if allowed is not False:
            response = JSONResponse(
                {
                    "error_code": "REQUEST_LIMIT_EXCEEDED",
                    "message": "Too many failed authentication attempts.",
                },
                status_code=429,
            )
            response.headers["Retry-After"] = str(math.ceil(float(allowed)))
            await response(scope, receive, send)
            return
        response = error_response(
            "UNAUTHENTICATED", "You are not authenticated. Send basic-auth credentials or a bearer token."
        )
        challenges = []
        if self.credentials.users:
            challenges.append('Basic realm="artifact-fs", charset="UTF-8"')
        if self.credentials.tokens:
            challenges.append('Bearer realm="artifact-fs"')
        response.headers["WWW-Authenticate"] = ", ".join(challenges)
        await response(scope, receive, send)
