"""The one transfer policy: timeouts, retries, back-off and concurrency, read once from MLflow's variables.

Every backend and the HTTP client take their numbers from a :class:`TransferPolicy` instead of reading
variables or keeping constants of their own (as obstore's ``ClientConfig``/``RetryConfig`` and
OpenDAL's timeout and retry layers do). Where an SDK retries (botocore, azure-core, gcsfs, urllib3),
the policy configures it; where none does (ftplib, asyncssh, HDFS), :meth:`TransferPolicy.retrying`
gives a tenacity retry that retries only what :func:`artifact_fs.errors.is_retryable` says is worth it.

MLflow's own numbers are the defaults: ``MLFLOW_HTTP_REQUEST_TIMEOUT`` (120 s),
``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` (7, at most 10), ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`` (2, at most
120), ``MLFLOW_HTTP_REQUEST_BACKOFF_JITTER`` (1.0) and ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT``
(each store's own default; ``-1`` for none).
"""

from __future__ import annotations

import functools
import inspect
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from artifact_fs import settings

DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds to establish a connection: an unreachable host fails fast whatever the read timeout is."""
MAX_WORKERS_CAP = 20
WORKERS_PER_CPU = 2
DEFAULT_CPUS = 10
MLFLOW_MAX_RETRIES = 7
"""``MLFLOW_HTTP_REQUEST_MAX_RETRIES``'s default."""
ASYNC_CONCURRENCY = 32
"""Files in flight for backends that run on one event loop (S3, GCS, Azure, SFTP): the store's tree
transfers and fsspec's ``batch_size``. MLflow has no variable for its pool (``min(2 x cpus, 20)``
threads, kept for synchronous backends); a coroutine costs no thread, so the default is far above."""


DOWNLOAD_PART_SIZE = 16 * settings.MIB
"""Range size of large downloads when ``MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE`` is not set: boto3's
tuned 16 MiB (S3 directly and ranged GETs through a server); MLflow's 100 MiB default would leave a
256 MiB file on three streams."""


def download_part_size(environ: Mapping[str, str]) -> int:
    """The range size of a large download: ``MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE`` when set, else
    :data:`DOWNLOAD_PART_SIZE`."""
    if settings.MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE.is_set(environ):
        return int(settings.MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE.get(environ))
    return DOWNLOAD_PART_SIZE


@dataclass(frozen=True)
class StallBoundedSockets:
    """An aiohttp ``socket_factory``: TCP connections on which sent bytes stay unacknowledged for
    ``timeout`` seconds fail with ``ETIMEDOUT`` (Linux's ``TCP_USER_TIMEOUT``; a peer whose receive
    window stays shut counts too). aiohttp's ``sock_read`` timeout starts only once a request's body
    has been sent, so a store or proxy that stops reading an upload's body (more than the socket
    buffers hold: a 4 MiB PUT, any part) held the upload forever. Clients on blocking sockets with
    timeouts (urllib3, ftplib, paramiko) need nothing of this."""

    timeout: float

    def __call__(self, addr_info: tuple[Any, ...]) -> socket.socket:
        family, kind, proto = addr_info[:3]
        sock = socket.socket(family=family, type=kind, proto=proto)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, max(1, int(self.timeout * 1000)))
        except BaseException:
            sock.close()
            raise
        return sock


def stall_bounded_sockets(timeout: float | None) -> StallBoundedSockets | None:
    """:class:`StallBoundedSockets` for a read timeout of ``timeout`` seconds; ``None`` where there is
    no timeout (``-1``), no ``TCP_USER_TIMEOUT`` (not Linux) or an aiohttp whose ``TCPConnector``
    takes no ``socket_factory``: the libraries then keep their own sockets."""
    if timeout is None or timeout <= 0 or not _sockets_can_be_bounded():
        return None
    return StallBoundedSockets(timeout)


@functools.cache
def _sockets_can_be_bounded() -> bool:
    """Whether this system has ``TCP_USER_TIMEOUT`` and aiohttp's connector a ``socket_factory``
    (asked once a process, not on every filesystem and session)."""
    if not hasattr(socket, "TCP_USER_TIMEOUT"):
        return False
    import aiohttp  # only the asynchronous backends (S3, GCS, Azure) have it, and ask

    return "socket_factory" in inspect.signature(aiohttp.TCPConnector).parameters


def _thread_workers() -> int:
    """MLflow's pool size: two threads per CPU, at most 20."""
    return min((os.cpu_count() or DEFAULT_CPUS) * WORKERS_PER_CPU, MAX_WORKERS_CAP)


@dataclass(frozen=True)
class TransferPolicy:
    """How long to wait, how often to retry, and how many transfers run at once.

    ``transfer_timeout`` is ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` (``None`` when unset, so each
    backend keeps the default MLflow gives that store; :meth:`transfer_timeout_or` applies it).
    """

    request_timeout: float = 120.0
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    transfer_timeout: float | None = None
    transfer_timeout_set: bool = False
    max_retries: int = 7  # MLFLOW_MAX_RETRIES
    max_retries_set: bool = False
    """Whether ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` (or the caller) chose ``max_retries``."""
    backoff_factor: float = 2.0
    backoff_jitter: float = 1.0
    respect_retry_after: bool = True
    max_workers: int = 0
    """Threads for synchronous backends; 0 means MLflow's ``min(2 * cpus, 20)``."""
    async_concurrency: int = ASYNC_CONCURRENCY
    """Transfers in flight at once on an async backend's event loop (``ArtifactStore`` tree transfers)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> TransferPolicy:
        """The policy from MLflow's variables; keyword overrides win. Bad values raise ``ValueError``."""
        env = os.environ if environ is None else environ
        transfer = settings.MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT.get(env)
        policy = cls(
            request_timeout=float(settings.MLFLOW_HTTP_REQUEST_TIMEOUT.get(env)),
            transfer_timeout=None if transfer in (None, -1) else float(transfer),
            transfer_timeout_set=transfer is not None,
            max_retries=int(settings.MLFLOW_HTTP_REQUEST_MAX_RETRIES.get(env)),
            max_retries_set=settings.MLFLOW_HTTP_REQUEST_MAX_RETRIES.is_set(env),
            backoff_factor=float(settings.MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get(env)),
            backoff_jitter=float(settings.MLFLOW_HTTP_REQUEST_BACKOFF_JITTER.get(env)),
            respect_retry_after=bool(settings.MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER.get(env)),
        )
        if "max_retries" in overrides:
            overrides.setdefault("max_retries_set", True)
        return replace(policy, **overrides) if overrides else policy

    def __post_init__(self) -> None:
        if self.max_retries != MLFLOW_MAX_RETRIES:  # a caller who names a number has chosen it
            object.__setattr__(self, "max_retries_set", True)
        for name in ("request_timeout", "connect_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {getattr(self, name)!r}")
        if self.transfer_timeout is not None and self.transfer_timeout <= 0:
            raise ValueError(f"transfer_timeout must be positive or None, got {self.transfer_timeout!r}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries!r}")
        if self.backoff_factor < 0 or self.backoff_jitter < 0:
            raise ValueError("backoff_factor and backoff_jitter must be >= 0")
        if self.max_workers < 0 or self.async_concurrency < 1:
            raise ValueError("max_workers must be >= 0 and async_concurrency >= 1")

    @property
    def attempts(self) -> int:
        """Tries in all: the first one plus ``max_retries``."""
        return self.max_retries + 1

    @property
    def thread_workers(self) -> int:
        """Threads for concurrent transfers on synchronous backends."""
        return self.max_workers or _thread_workers()

    @property
    def connection_pool_size(self) -> int:
        """Keep-alive connections per host for a synchronous HTTP client: one per transfer thread a
        store may run (MLflow's pool is at most 20 threads). urllib3 closes a connection the pool has
        no room for after its request, so a pool smaller than the threads (MLflow's
        ``MLFLOW_HTTP_POOL_MAXSIZE`` default, 10) makes the next request pay a new handshake."""
        return max(self.thread_workers, MAX_WORKERS_CAP)

    def transfer_timeout_or(self, store_default: float | None) -> float | None:
        """``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` when set (``-1`` is no timeout), else the store's."""
        return self.transfer_timeout if self.transfer_timeout_set else store_default

    def max_retries_or(self, store_default: int) -> int:
        """``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` when set, else the store SDK's own (fast-failing) default.

        MLflow's HTTP default (7 retries, back-off from 2 s) would make an unreachable object store
        take minutes to report; MLflow itself leaves botocore, azure-core and gcsfs at their defaults.
        """
        return self.max_retries if self.max_retries_set else store_default

    def retrying(self, *, attempts: int | None = None) -> Any:
        """A ``tenacity.Retrying`` for SDKs that do not retry: retryable errors only, MLflow's back-off.

        Use as ``for attempt in policy.retrying(): with attempt: ...``; the last error is re-raised.
        """
        import tenacity

        from artifact_fs import errors

        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(attempts or self.attempts),
            wait=tenacity.wait_exponential(multiplier=self.backoff_factor, max=120)
            + tenacity.wait_random(0, self.backoff_jitter),
            retry=tenacity.retry_if_exception(errors.is_retryable),
            reraise=True,
        )


__all__ = ["TransferPolicy"]
