"""The tar entries of ``artifact-fs serve``'s batches of small files, written by the server
(downloads, :mod:`artifact_fs.server.batch`) and by artifact_fs's client (uploads,
:mod:`artifact_fs.backends.mlflow_artifacts.batch`): POSIX pax entries, each carrying in its pax
header the version it holds (:data:`ETAG_KEY`) and the digest record of its bytes (:data:`DIGEST_KEY`).
"""

from __future__ import annotations

import tarfile
from collections.abc import Mapping

ETAG_KEY = "ARTIFACTFS.etag"
"""The pax header of the version an entry holds (the file's ``ETag``)."""
DIGEST_KEY = "ARTIFACTFS.digest"
"""The pax header of an entry's digest record (``Repr-Digest``'s value)."""
END_OF_ARCHIVE = bytes(2 * tarfile.BLOCKSIZE)


def entry(name: str, data: bytes, pax_headers: Mapping[str, str], mtime: int = 0) -> bytes:
    """One regular-file entry: its pax header (name, size, ``pax_headers``) and its padded bytes."""
    member = tarfile.TarInfo(name)
    member.size, member.mode, member.mtime = len(data), 0o644, mtime
    member.pax_headers = dict(pax_headers)
    header = member.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    return header + data + bytes(-len(data) % tarfile.BLOCKSIZE)
