"""The files ``open`` returns for reading an artifact through a server.

:class:`MlflowArtifactFile` is the random-access file (fsspec's ``HTTPFile``): ranged GETs, pinned to
one version, or a kept stream where the server ignores ``Range``. :class:`MlflowArtifactStreamFile`
is the forward-only one for ``block_size=0`` (``HTTPStreamFile``), checked whole against
``Repr-Digest``. fsspec's own classes need its aiohttp event loop, so these are written on
``AbstractBufferedFile`` over :class:`~.reads.ArtifactsReads`' requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests
from fsspec.spec import AbstractBufferedFile

from artifact_fs import http as af_http
from artifact_fs.backends import read_cache
from artifact_fs.backends.mlflow_artifacts.body_digests import WholeBodyDigest
from artifact_fs.backends.mlflow_artifacts.versions import VersionPin, iter_body, read_between

if TYPE_CHECKING:
    from artifact_fs.backends.mlflow_artifacts.reads import ArtifactsReads


class MlflowArtifactFile(read_cache.DirectReads, AbstractBufferedFile):
    """Random-access reads (fsspec's ``HTTPFile``): ranged GETs, a kept stream where ``Range`` is ignored.

    A read of a block or more where ranges are known to work goes straight into the caller's
    memory (:class:`~artifact_fs.backends.read_cache.DirectReads`)."""

    fs: ArtifactsReads

    def __init__(self, fs: ArtifactsReads, path: str, mode: str = "rb", **kwargs: Any) -> None:
        if mode != "rb":
            raise ValueError(f"{type(self).__name__} only reads; mode {mode!r}")
        self._stream: requests.Response | None = None
        self._pin = VersionPin(kwargs.get("size"))
        self._stream_iter: Any = None
        self._stream_position = 0
        self._pending = b""
        super().__init__(fs, path, mode, **kwargs)

    def _fetch_range(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        if end <= start:
            return b""
        multipart = self.fs.multipart_download_enabled()
        if self.fs.proxy_honours_range is False and not multipart:
            return self._read_sequential(start, end)
        if self.fs.proxy_honours_range is not None or multipart:
            return self.fs.fetch_range(self.path, start, end, self._pin)
        # The first ranged read learns whether the server honours Range; if not, the stream is kept.
        response, offset = self.fs.open_stream(self.path, start, end, etag=self._pin.etag)
        self._pin.check(response, self.path)
        if offset == start:
            with response:
                return read_between(response, offset, start, end, self.path)
        self._replace_stream(response, offset)
        return self._read_sequential(start, end)

    def _fetch_range_into(self, start: int, view: memoryview) -> bool:
        if self.fs.proxy_honours_range is not True and not self.fs.multipart_download_enabled():
            return False  # the first ranged read learns how the server answers (_fetch_range)
        return self.fs.fetch_range_into(self.path, start, view, self._pin) == len(view)

    def _replace_stream(self, response: requests.Response | None, position: int = 0) -> None:
        if self._stream is not None:
            self._stream.close()
        self._stream = response
        self._stream_iter = iter_body(response, self.path) if response is not None else None
        self._stream_position = position
        self._pending = b""

    def _read_sequential(self, start: int, end: int) -> bytes:
        if self._stream is None or self._stream_position > start:
            response, offset = self.fs.open_stream(self.path, etag=self._pin.etag)
            self._pin.check(response, self.path)
            self._replace_stream(response, offset)
        out = bytearray()
        while self._stream_position < end:
            chunk = self._pending or next(self._stream_iter, b"")
            self._pending = b""
            if not chunk:
                break
            chunk_start = self._stream_position
            chunk_end = chunk_start + len(chunk)
            if chunk_end > start:
                out += chunk[max(0, start - chunk_start) : end - chunk_start]
            if chunk_end > end:  # keep the tail for the next read
                self._pending = chunk[end - chunk_start :]
                self._stream_position = end
                break
            self._stream_position = chunk_end
        return bytes(out)

    def close(self) -> None:
        self._replace_stream(None)
        super().close()


class MlflowArtifactStreamFile(AbstractBufferedFile):
    """Forward-only reads from one streamed GET (fsspec's ``HTTPStreamFile``), for ``block_size=0``."""

    fs: ArtifactsReads

    def __init__(self, fs: ArtifactsReads, path: str, mode: str = "rb", **kwargs: Any) -> None:
        if mode != "rb":
            raise ValueError(f"{type(self).__name__} only reads; mode {mode!r}")
        self.response, _ = fs.open_stream(path)
        self._digest = WholeBodyDigest(fs.digests_enabled)
        self._digest.start(self.response)
        length = self.response.headers.get("Content-Length")
        if kwargs.get("size") is None and length is not None:
            kwargs["size"] = int(length)
        kwargs.pop("cache_type", None)
        kwargs.pop("block_size", None)
        super().__init__(fs, path, mode, block_size=0, cache_type="none", **kwargs)

    def seek(self, loc: int, whence: int = 0) -> int:
        if (loc == 0 and whence == 1) or (loc == self.loc and whence == 0):
            return self.loc
        raise ValueError("Cannot seek a streamed artifact (open it with a block_size for random access)")

    def read(self, length: int = -1) -> bytes:
        with af_http.translating_requests(self.response.url or "", self.path):
            data: bytes = self.response.raw.read(
                None if length is None or length < 0 else length, decode_content=True
            )
        self._digest.update(data)
        ended = not data or (self.size is not None and self.loc + len(data) >= self.size)
        if ended:  # the whole body has been read: its last bytes are returned only if it matches
            self._digest.check(self.path)
        self.loc += len(data)
        return data

    def close(self) -> None:
        self.response.close()
        super().close()
