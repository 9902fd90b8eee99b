"""Many small files in one request, where ``artifact-fs serve`` advertises it (``server-info``'s
``artifact_fs.batch_download`` and ``batch_upload``; the protocol is in :mod:`artifact_fs.server.batch`).

:meth:`BatchTransfers.get_batched` downloads small files of a tree as a few tar streams instead of
one GET each. It only ever delivers a file whose entry it read whole, under a name it asked for,
matching the record the entry carries; every other file (not sent, cut off, refused, damaged) is
left to the caller, whose ordinary GET reports what is wrong with it. MLflow's server advertises
nothing, so nothing changes there.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tarfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from artifact_fs import http as af_http
from artifact_fs import integrity
from artifact_fs.backends.mlflow_artifacts.reads import ArtifactsReads
from artifact_fs.tar_batch import DIGEST_KEY, END_OF_ARCHIVE
from artifact_fs.tar_batch import entry as tar_entry

logger = logging.getLogger(__name__)

CONCURRENT_BATCHES = 2
"""Tar streams in flight at once; the server reads several files of each concurrently."""
MIN_BATCH = 64
"""Files below which a tree is not split further between streams."""


@dataclass(frozen=True)
class BatchLimits:
    """What the server takes in one request: at most ``max_files`` files of ``max_file_size`` bytes."""

    path: str
    max_files: int
    max_file_size: int

    @classmethod
    def parse(cls, advertised: Any) -> BatchLimits | None:
        """The advertised limits, or None when the advertisement is missing or not understood."""
        if not isinstance(advertised, Mapping):
            return None
        path, files, size = (
            advertised.get("path"),
            advertised.get("max_files"),
            advertised.get("max_file_size"),
        )
        if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
            return None
        if not all(
            isinstance(value, int) and not isinstance(value, bool) and value > 0 for value in (files, size)
        ):
            return None
        return cls(path, files, size)  # type: ignore[arg-type]


class _Resent:
    """A streamed request body that starts again from its first byte each time it is iterated: a
    request the session retries (MLflow's retry policy) sends the whole batch again, where a spent
    generator would send only what it had not yet yielded."""

    def __init__(self, start: Callable[[], Iterator[bytes]]) -> None:
        self.start = start

    def __iter__(self) -> Iterator[bytes]:
        return self.start()


class BatchTransfers(ArtifactsReads):
    """Downloads and uploads of many small files as tar streams (:mod:`artifact_fs.server.batch`)."""

    def batch_limits(self, direction: str = "download") -> BatchLimits | None:
        """The server's batch route and limits for ``direction`` (``download`` or ``upload``), if it
        advertises one (asked once, with server-info)."""
        if self.presigned_only:
            return None
        own = self.server_info().get("artifact_fs")
        return BatchLimits.parse(own.get(f"batch_{direction}")) if isinstance(own, Mapping) else None

    def _batches(
        self, limits: BatchLimits, files: Mapping[str, tuple[str, int | None, Any]]
    ) -> list[list[str]]:
        """The small files of ``files`` in at most :data:`CONCURRENT_BATCHES` batches per round (none
        for fewer than two)."""
        small = [
            path for path, (_, size, _) in files.items() if size is not None and size <= limits.max_file_size
        ]
        if len(small) < 2:
            return []
        per_batch = min(limits.max_files, max(MIN_BATCH, math.ceil(len(small) / CONCURRENT_BATCHES)))
        return [small[start : start + per_batch] for start in range(0, len(small), per_batch)]

    def _run_batches(self, batches: list[list[str]], one: Callable[[list[str]], set[str]]) -> set[str]:
        done: set[str] = set()
        if not batches:
            return done
        with ThreadPoolExecutor(
            min(CONCURRENT_BATCHES, len(batches)), thread_name_prefix="artifact-fs-batch"
        ) as pool:
            for finished in pool.map(one, batches):
                done |= finished
        return done

    def get_batched(self, files: Mapping[str, tuple[str, int | None, Any]]) -> set[str]:
        """Download the small files of ``files`` (``rpath: (lpath, size, callback)``) in batches.

        Returns the remote paths delivered: written whole to their local path and checked. The
        caller downloads the others one by one. Files of unknown size or larger than the server
        takes are not asked for.
        """
        limits = self.batch_limits("download")
        if limits is None:
            return set()
        return self._run_batches(
            self._batches(limits, files), lambda batch: self._get_batch(limits, batch, files)
        )

    def put_batched(self, files: Mapping[str, tuple[str, int | None, Any]]) -> set[str]:
        """Upload the small files of ``files`` (``rpath: (lpath, size, callback)``) in batches.

        Returns the remote paths the server stored whole, each checked against the digests sent
        with it. The caller uploads the others one by one (and so reports their errors).
        """
        limits = self.batch_limits("upload")
        if limits is None:
            return set()
        return self._run_batches(
            self._batches(limits, files), lambda batch: self._put_batch(limits, batch, files)
        )

    def _put_batch(
        self, limits: BatchLimits, batch: Sequence[str], files: Mapping[str, tuple[str, int | None, Any]]
    ) -> set[str]:
        """One tar stream up; the files the server says it stored. A refused or failed request stores
        what the server read whole before it failed, and the caller sends every file again alone."""
        url = f"{self.service_url}/mlflow-artifacts/{limits.path}"
        sent: list[str] = []

        def from_the_start() -> Iterator[bytes]:
            sent.clear()
            return self._tar_of(limits, batch, files, sent)

        try:
            with af_http.translating_requests(url, batch[0]):
                response = self.session.post(
                    url,
                    data=_Resent(from_the_start),
                    headers={"Content-Type": "application/x-tar"},
                    timeout=self.transfer_timeout,
                )
            if response.status_code != 200:
                logger.warning("batch upload refused (%s): one PUT per file instead", response.status_code)
                return set()
            answer = response.json()
        except (OSError, ValueError, requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            logger.warning("batch upload failed (%s); one PUT per file instead", exc)
            return set()
        listed = answer.get("files") if isinstance(answer, dict) else None
        stored = {entry.get("path") for entry in listed or () if isinstance(entry, dict)}
        wanted = {self._checked(path): path for path in sent}
        delivered = {wanted[path] for path in stored if path in wanted}
        for path in sent:  # stored or not, what was known of it may be stale now
            self.invalidate_cache(path)
        for path in delivered:
            _, size, callback = files[path]
            if callback is not None:
                callback.relative_update(size or 0)
        return delivered

    def _tar_of(
        self,
        limits: BatchLimits,
        batch: Sequence[str],
        files: Mapping[str, tuple[str, int | None, Any]],
        sent: list[str],
    ) -> Iterator[bytes]:
        """The batch as a tar stream, one file read at a time; each entry carries the digests of the
        bytes it holds (the server checks them before storing). A file that cannot be read, or grew
        past the limit, is left out (its own PUT reports it)."""
        for path in batch:
            lpath = files[path][0]
            try:
                with open(lpath, "rb") as local:
                    data = local.read(limits.max_file_size + 1)
            except OSError:
                continue
            if len(data) > limits.max_file_size:
                continue
            headers = {}
            if self.digests_enabled:
                headers[DIGEST_KEY] = integrity.recorded_of(integrity.digests_of(data)).header()
            sent.append(path)
            yield tar_entry(self._checked(path), data, headers)
        yield END_OF_ARCHIVE

    def _get_batch(
        self, limits: BatchLimits, batch: Sequence[str], files: Mapping[str, tuple[str, int | None, Any]]
    ) -> set[str]:
        """One tar stream; the files it delivered. A failure of the request or the stream ends the
        batch (logged), keeping the files already written."""
        url = f"{self.service_url}/mlflow-artifacts/{limits.path}"
        wanted = {self._checked(path): path for path in batch}
        delivered: set[str] = set()
        try:
            with af_http.translating_requests(url, batch[0]):
                response = self.session.post(
                    url, json={"paths": list(wanted)}, stream=True, timeout=self.transfer_timeout
                )
            with response:
                if response.status_code != 200:
                    logger.warning(
                        "batch download refused (%s): one GET per file instead", response.status_code
                    )
                    return delivered
                response.raw.decode_content = True
                with tarfile.open(fileobj=response.raw, mode="r|") as archive:
                    for member in archive:
                        path = wanted.pop(member.name, None) if member.isreg() else None
                        if path is None or member.size > limits.max_file_size:
                            logger.warning(
                                "batch download: unexpected entry %r; the rest one GET each", member.name
                            )
                            break
                        source = archive.extractfile(member)
                        data = source.read() if source is not None else b""
                        if self._deliver(path, data, member.pax_headers.get(DIGEST_KEY), files[path]):
                            delivered.add(path)
        except (OSError, tarfile.TarError, requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            logger.warning("batch download cut short (%s); the rest one GET each", exc)
        return delivered

    def _deliver(
        self, path: str, data: bytes, digest: str | None, target: tuple[str, int | None, Any]
    ) -> bool:
        """Write one entry's bytes to its local path if they match the record it carries."""
        lpath, _, callback = target
        expected = integrity.quick_digest(digest) if self.digests_enabled else None
        if expected is not None:
            try:
                integrity.check(path, expected, integrity.digest_of(data, expected.algorithm))
            except integrity.DigestMismatchError as exc:
                logger.warning("batch download: %s; fetched alone", exc)
                return False
        os.makedirs(os.path.dirname(os.path.abspath(lpath)), exist_ok=True)
        try:
            with open(lpath, "wb") as local:
                local.write(data)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(lpath)
            raise
        if callback is not None:
            callback.set_size(len(data))
            callback.relative_update(len(data))
        return True
