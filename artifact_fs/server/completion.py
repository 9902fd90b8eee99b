"""Digests of presigned multipart uploads, which the server never sees pass.

MLflow's multipart parts go from the client straight to the store on presigned URLs. The store checks
each part itself when the upload is completed (S3 compares every part's ETag, the MD5 of its bytes;
Azure commits only the blocks it holds; GCS composes CRC32C-checked objects). The whole file is then
read back once, here, right after the store completes it: its digests are recorded like any upload's,
and a whole-file digest the client claimed (artifact_fs's client sends the CRC-32C it combined from
its parts' checksums; MLflow's client sends none) must match, or the object is deleted and the
request refused: nothing that does not match stays visible.
"""

from __future__ import annotations

import logging
from typing import Any

from artifact_fs import integrity
from artifact_fs.store import ArtifactStore

logger = logging.getLogger("artifact_fs.server")
READ_SIZE = 8 * 1024 * 1024


def claimed_digest(body: dict[str, Any]) -> integrity.Digest | None:
    """The whole-file digest a ``mpu/complete`` body names (an extra field MLflow's client omits)."""
    value = body.get("digest")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("'digest' must be an RFC 9530 value such as 'crc32c=:…:'")
    digests = integrity.parse_field(value)
    known = [digest for digest in digests.values() if digest.algorithm in integrity.PREFERENCE]
    return integrity.preferred(known)


def record_completed(store: ArtifactStore, path: str, claimed: integrity.Digest | None) -> integrity.Record:
    """Read the completed object once, record its digests, check the client's claim.

    A mismatch deletes the object and raises :class:`integrity.DigestMismatchError`.
    """
    algorithms = [*integrity.RECORDED, *([claimed.algorithm] if claimed else [])]
    handle, _info = store.open_version(path, block_size=READ_SIZE, cache_type="none")
    with handle:
        computed = integrity.read_digests(handle, algorithms, READ_SIZE)
    if claimed is not None and computed[claimed.algorithm].value != claimed.value:
        logger.warning(
            "deleting the multipart upload of %r: it does not match the digest its client sent", path
        )
        store.delete_artifacts(path)
        raise integrity.DigestMismatchError(path, claimed, computed[claimed.algorithm])
    record = integrity.recorded_of(computed)
    store.root.record_digest(path, record)
    return record


__all__ = ["claimed_digest", "record_completed"]
