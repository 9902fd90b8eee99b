"""uvicorn's httptools protocol (a C parser) with the server's guards (:mod:`artifact_fs.server.protocol`).

Its own module so that the h11 fallback imports without httptools installed. httptools keeps no
head size limit and no parser state uvicorn exposes, so this class tracks both: whether the
connection awaits a request's head (from the connection or the previous response until the head is
parsed, as h11's ``IDLE``) and the bytes of that head received so far (at most the limit + one read).

A request body goes to the app as the pieces the parser gave (:class:`BodyPieces`): uvicorn gathers
them in a ``bytearray`` and hands the app a ``bytes`` copy of it, two copies of every byte an upload
sends (0.3 s of the server's CPU per 256 MiB, measured with py-spy on a proxied upload to S3).
"""

from __future__ import annotations

from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from artifact_fs.server.protocol import ProtocolGuards


class BodyPieces:
    """The body received and not yet given to the app, as the parser's own ``bytes``.

    It stands where uvicorn keeps a ``bytearray`` (``cycle.body``), with what uvicorn asks of it:
    ``+=`` a piece, ``len``, and ``bytes()`` when the app receives, which is the one piece itself when
    there is one (the usual case: the app reads as pieces arrive), else their join.
    """

    __slots__ = ("_pieces", "_size")

    def __init__(self, received: bytes | bytearray = b"") -> None:
        self._pieces: list[bytes] = [bytes(received)] if received else []
        self._size = len(received)

    def __iadd__(self, piece: bytes) -> BodyPieces:
        self._pieces.append(piece)
        self._size += len(piece)
        return self

    def __len__(self) -> int:
        return self._size

    def __bytes__(self) -> bytes:
        return self._pieces[0] if len(self._pieces) == 1 else b"".join(self._pieces)


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

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if not isinstance(cycle.body, BodyPieces):  # a new request's, or emptied by the app's receive
            cycle.body = BodyPieces(cycle.body)
        super().on_body(body)

    def on_headers_complete(self) -> None:
        self._head_awaited, self._head = False, b""
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        # a pipelined request already parsed is not awaited; one that arrives later is, from here
        self._head_awaited, self._head = not self.pipeline, b""
        super().on_response_complete()
