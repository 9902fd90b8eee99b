"""uvicorn's httptools protocol (a C parser) with the server's guards (:mod:`artifact_fs.server.protocol`).

Its own module so that the h11 fallback imports without httptools installed. httptools keeps no
head size limit and no parser state uvicorn exposes, so this class tracks both: whether the
connection awaits a request's head (from the connection or the previous response until the head is
parsed, as h11's ``IDLE``) and the bytes of that head received so far (at most the limit + one read).
"""

from __future__ import annotations

from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from artifact_fs.server.protocol import ProtocolGuards


class GuardedHttpToolsProtocol(ProtocolGuards, HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`ProtocolGuards`: what ``artifact-fs serve`` runs."""

    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        self._head = b""
        self._head_awaited = True
        super().__init__(config, *args, **kwargs)

    def _awaiting_head(self) -> bool:
        return self._head_awaited

    def _partial_head(self) -> bytes:
        return self._head

    def _keep_head(self, pending: bytes) -> None:
        self._head = pending

    def on_headers_complete(self) -> None:
        self._head_awaited, self._head = False, b""
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        # a pipelined request already parsed is not awaited; one that arrives later is, from here
        self._head_awaited, self._head = not self.pipeline, b""
        super().on_response_complete()
