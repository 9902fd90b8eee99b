"""Whole reads of a proxied artifact checked against the server's ``Repr-Digest`` (RFC 9530).

``artifact-fs serve`` sends the record it keeps for an artifact with every GET and HEAD (and with a
presigned download's answer); a read of the whole file hashes what it receives and compares. MLflow's
own server sends none, and nothing is checked.
"""

from __future__ import annotations

import logging

import requests

from artifact_fs import integrity

logger = logging.getLogger(__name__)


class WholeBodyDigest:
    """The ``Repr-Digest`` a whole read's first answer carried, and the hash of the bytes read since.

    The quickest digest of the field is checked (CRC32C where the server recorded it, 14 GB/s); an
    answer without one artifact_fs can compute (MLflow's server) is not. A read that starts over (a
    server that ignores ``Range``) hashes again.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.header: str | None = None
        self.expected: integrity.Digest | None = None
        self._hasher: integrity.Hasher | None = None

    def start(self, response: requests.Response) -> None:
        if not self.enabled or response.status_code != 200:
            return
        header = self.header = response.headers.get("Repr-Digest")
        self.expected = integrity.quick_digest(header)
        self.restart()

    def restart(self) -> None:
        self._hasher = integrity.Hasher(self.expected.algorithm) if self.expected is not None else None

    def update(self, data: bytes) -> None:
        if self._hasher is not None:
            self._hasher.update(data)

    def check(self, path: str) -> None:
        """``DigestMismatchError`` naming ``path`` when the bytes read differ from the digest sent."""
        if self._hasher is None:
            return
        actual, self._hasher = self._hasher.digest(), None
        integrity.check(path, self.expected, actual)
