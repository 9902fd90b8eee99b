"""uvicorn's HTTP protocols with the limits a public server needs and uvicorn leaves out.

* A deadline for a request's headers: uvicorn times out only idle keep-alive connections, and
  every byte received resets even that, so a client sending one header byte a second holds its
  connection (and a slot of ``--limit-concurrency``) forever (slowloris). Here the headers of each
  request must be complete within :attr:`ProtocolGuards.header_timeout` seconds.
* MLflow's JSON error shape for what the parser refuses: a request head over 16 KiB (h11's own
  limit, which httptools lacks and is enforced here for both) is a 431, a malformed request a 400,
  each with ``{"error_code", "message"}`` instead of uvicorn's plain text.
* A request still running when a graceful shutdown gives up on it (SIGTERM, after
  ``timeout_graceful_shutdown``) is one warning line, not uvicorn's traceback of the cancelled task:
  the client gets a 503 if no response has started, else the connection is closed. The route's own
  clean-up (aborting its multipart upload) has run by then; the app's lifespan aborts the rest.

:class:`ProtocolGuards` holds all of it; each parser contributes only where it keeps a request's
head. ``artifact-fs serve`` runs :func:`default_protocol`: httptools (C parser, about half h11's
cost a request) when installed, else h11.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
from typing import Any

import h11
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger("artifact_fs.server")

HEADER_TIMEOUT = 10.0
"""Seconds a client has to send a request's headers, from its connection or its previous response."""
H11_HEADER_LIMIT = 16 * 1024
"""h11's own limit on a request's head (``max_incomplete_event_size``), which uvicorn keeps."""
HEAD_TOO_LARGE = "request headers too large"


class ProtocolGuards:
    """Header deadline, head size limit, MLflow-shaped errors and a quiet shutdown for a uvicorn protocol.

    Mixed in before uvicorn's ``H11Protocol`` or ``HttpToolsProtocol``; a subclass says whether it
    awaits a request's head (:meth:`_awaiting_head`) and what of it has arrived (:meth:`_partial_head`).
    """

    header_timeout: float = HEADER_TIMEOUT
    # set by uvicorn's protocol classes
    app: Any
    cycle: Any
    client: tuple[str, int] | None
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)  # type: ignore[call-arg]
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_limit = config.h11_max_incomplete_event_size or H11_HEADER_LIMIT
        self._shutting_down = False
        self._application = self.app
        self.app = self._cancellable_by_shutdown

    def _awaiting_head(self) -> bool:
        raise NotImplementedError

    def _partial_head(self) -> bytes:
        raise NotImplementedError

    def _keep_head(self, pending: bytes) -> None:
        """Remember the head received so far (h11 keeps its own)."""

    def shutdown(self) -> None:
        self._shutting_down = True
        super().shutdown()  # type: ignore[misc]

    async def _cancellable_by_shutdown(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app; when the server's shutdown cancels it, one warning and a clean end instead."""
        try:
            await self._application(scope, receive, send)
        except asyncio.CancelledError:
            cycle = self.cycle
            if not self._shutting_down or cycle is None:
                raise
            logger.warning(
                "%s: %s %s cancelled: the server shut down before it finished",
                self._peer(),
                scope.get("method", ""),
                scope.get("path", ""),
            )
            if not cycle.response_started:
                body = json.dumps(
                    {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "the server is shutting down; retry"}
                ).encode()
                headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
                await send({"type": "http.response.start", "status": 503, "headers": headers})
                await send({"type": "http.response.body", "body": body})
            else:  # a body cut short must not look complete: hang up
                self.transport.close()
                cycle.disconnected = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head():
            if self._header_deadline is None:
                self._arm_header_deadline()  # a keep-alive connection starting its next request
            # h11 limits only a head that arrives in pieces, httptools none: check every head here
            head = self._partial_head()
            pending = head + data if head else data
            end = pending.find(b"\r\n\r\n")
            if end > self._header_limit or (end == -1 and len(pending) > self._header_limit):
                self._disarm_header_deadline()
                self.send_400_response(HEAD_TOO_LARGE)
                return
            self._keep_head(pending)
        super().data_received(data)  # type: ignore[misc]
        if not self._awaiting_head():
            self._disarm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self._awaiting_head() and not self.transport.is_closing():
            if self._partial_head():  # some headers came: say why, once, then hang up
                logger.warning(
                    "%s: request headers not complete within %ss; closing", self._peer(), self.header_timeout
                )
                self._send_error(
                    408, "REQUEST_TIMEOUT", f"request headers must arrive within {self.header_timeout}s"
                )
            else:
                self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "client"

    def send_400_response(self, msg: str) -> None:
        if msg == HEAD_TOO_LARGE or len(self._partial_head()) > self._header_limit:
            self._send_error(
                431, "INVALID_PARAMETER_VALUE", "request headers are larger than the server accepts"
            )
        else:
            self._send_error(400, "BAD_REQUEST", msg)

    def _send_error(self, status: int, error_code: str, message: str) -> None:
        """An MLflow error body on a connection the parser may already consider broken; then close it."""
        body = json.dumps({"error_code": error_code, "message": message}).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode()
        self.transport.write(head + body)
        self.transport.close()


_REASONS = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large"}


class GuardedH11Protocol(ProtocolGuards, H11Protocol):
    """uvicorn's pure-Python h11 protocol with :class:`ProtocolGuards`; the fallback without httptools."""

    def _awaiting_head(self) -> bool:
        return self.conn.their_state is h11.IDLE

    def _partial_head(self) -> bytes:
        return bytes(self.conn.trailing_data[0])


def default_protocol() -> str:
    """The protocol ``artifact-fs serve`` gives uvicorn: httptools' when it is installed, else h11's."""
    if importlib.util.find_spec("httptools") is not None:
        return "artifact_fs.server.httptools_protocol:GuardedHttpToolsProtocol"
    return "artifact_fs.server.protocol:GuardedH11Protocol"


class _OneLinePerCancelledRequest(logging.Filter):
    """Drop uvicorn's "Cancel N running task(s)" error: each cancelled request logs its own warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Cancel %s running task(s)")


# Here, not in the CLI: every worker process imports this module when uvicorn loads the protocol.
logging.getLogger("uvicorn.error").addFilter(_OneLinePerCancelledRequest())
