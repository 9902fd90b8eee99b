"""MLflow's proxied multipart upload, client side: ``mpu/create``, presigned part PUTs, ``mpu/complete``.

The server presigns one URL per part; the parts go straight to the store, concurrently, and the
upload is aborted (``mpu/abort``) on any failure so nothing partial is left. A server whose store
cannot do it answers 501 (or, before MLflow 3.x, a message), raised as ``MultipartUnsupportedError``
so the caller can fall back to a single proxied PUT.
"""

from __future__ import annotations

import logging
import math
import posixpath
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any
from urllib.parse import quote, urlsplit

import requests

from artifact_fs import errors, integrity
from artifact_fs import http as af_http

logger = logging.getLogger(__name__)
_OLD_SERVER_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"


def part_count(size: int, chunk_size: int) -> int:
    """MLflow's rule: ``ceil(size / chunk)``, and one part for an empty file (presigned-only servers)."""
    return max(1, math.ceil(size / chunk_size))


class MultipartUpload:
    """One proxied multipart upload of ``size`` bytes read from ``source`` to ``path``."""

    def __init__(  # noqa: PLR0917 - one call site, all arguments required
        self,
        service: str,
        session: requests.Session,
        presigned: requests.Session,
        path: str,
        chunk_size: int,
        max_workers: int,
        digests: bool = False,
    ) -> None:
        self.service = service
        self.session = session
        self.presigned = presigned
        self.directory, self.name = posixpath.split(path)
        self.path = path
        self.chunk_size = chunk_size
        self.max_workers = max_workers
        self.digests = digests
        """Send the whole file's CRC-32C, combined from the parts', with ``complete`` (integrity.md)."""
        self.upload_id: str | None = None

    def _url(self, action: str) -> str:
        return f"{self.service}/mlflow-artifacts/mpu/{action}/{quote(self.directory)}"

    def _post(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self._url(action)
        with af_http.translating_requests(url, self.path):
            response = self.session.post(url, json=body)
        if action == "create" and (
            response.status_code == 501 or _OLD_SERVER_UNSUPPORTED in response.text[:500]
        ):
            raise errors.MultipartUnsupportedError(
                f"the server at {self.service} cannot do multipart uploads for its artifact store"
            )
        af_http.raise_for_status(response, self.path)
        try:
            result = response.json() if response.content else {}
        except ValueError:
            result = {}
        return result if isinstance(result, dict) else {}

    def run(self, source: IO[bytes], size: int, on_part: Callable[[int], None] | None = None) -> None:
        """Upload all parts; abort and re-raise on any failure."""
        if not self.directory:
            raise errors.MultipartUnsupportedError(
                "MLflow's mpu routes need a directory; a file at the server's artifact root cannot use them"
            )
        num_parts = part_count(size, self.chunk_size)
        created = self._post("create", {"path": self.name, "num_parts": num_parts})
        self.upload_id = created.get("upload_id")
        try:
            credentials = sorted(created.get("credentials") or [], key=lambda c: int(c["part_number"]))
            if len(credentials) != num_parts:
                raise OSError(
                    f"the server presigned {len(credentials)} part URLs for {num_parts} parts of {self.path}"
                )
            lock = threading.Lock()
            checksums: dict[int, tuple[int, int]] = {}

            def upload_part(index: int) -> dict[str, Any]:
                credential = credentials[index]
                offset = index * self.chunk_size
                length = min(self.chunk_size, size - offset)
                with lock:  # one shared file object; bounded memory: one part per worker
                    source.seek(offset)
                    data = source.read(length)
                if len(data) != length:
                    raise OSError(
                        f"{self.path}: expected {length} bytes for part {index + 1}, read {len(data)}"
                    )
                if self.digests:
                    checksums[index] = (integrity.crc32c_of(data), length)
                url = str(credential["url"])
                if urlsplit(url).scheme not in {"http", "https"}:
                    raise PermissionError(f"the server returned a non-HTTP presigned URL for {self.path}")
                with af_http.translating_requests(url, self.path):
                    response = self.presigned.put(url, data=data, headers=credential.get("headers") or {})
                af_http.raise_for_status(response, self.path)
                if on_part is not None:
                    on_part(length)
                return {
                    "part_number": int(credential["part_number"]),
                    "etag": response.headers.get("ETag", ""),
                    "url": url,
                }

            with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="mpu-part") as pool:
                parts = list(pool.map(upload_part, range(num_parts)))
            parts.sort(key=lambda part: part["part_number"])
            body: dict[str, Any] = {"path": self.name, "parts": parts}
            if self.upload_id is not None:
                body["upload_id"] = self.upload_id
            if self.digests and len(checksums) == num_parts:
                whole = integrity.combined_crc32c(checksums[index] for index in range(num_parts))
                body["digest"] = whole.header()  # an extra field: the server checks what it completed
            self._post("complete", body)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Best effort: a failed abort is logged, the original error is what the caller sees."""
        body: dict[str, Any] = {"path": self.name}
        if self.upload_id is not None:
            body["upload_id"] = self.upload_id
        try:
            self._post("abort", body)
        except Exception as exc:  # noqa: BLE001 - never mask the error that caused the abort
            logger.warning("aborting the multipart upload of %s failed: %s", self.path, exc)
