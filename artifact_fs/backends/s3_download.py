"""S3 downloads: concurrent ranged GETs written in place into a preallocated file
(:mod:`artifact_fs.backends.ranged_download`), pinned to the first answer's ETag with ``If-Match``.

s3fs's ``_get_file`` opens a whole-object GET, abandons it when the object is large, and then fetches
ranges in batches that each wait for their slowest member. Here the first request is already the
first range, and a small object is one GET; an empty one (S3 refuses a range on it) one more.
``S3FileSystem._get_file`` is :func:`.ranged_download.get_file` with :func:`object_getter`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from artifact_fs.backends.ranged_download import READ_SIZE, GetObject, download, object_size


def object_getter(fs: Any, rpath: str, *, version_id: str | None = None) -> GetObject:
    """One GET of the object ``rpath`` (``Range``, ``IfMatch``): presigned first where small
    requests go presigned (:mod:`.s3_small`), through the SDK for anything that leaves."""
    bucket, key, version = fs.split_path(rpath)
    fixed = {"Bucket": bucket, "Key": key, **fs.req_kw}
    if version_id or version:
        fixed["VersionId"] = version_id or version

    small = fs.small if fs.small.enabled and "VersionId" not in fixed else None

    async def get_object(**request: Any) -> Mapping[str, Any]:
        if small is not None:
            answer = await small.get(bucket, key, **request)
            if answer is not None:
                return answer
        response: Mapping[str, Any] = await fs._call_s3("get_object", **fixed, **request)
        return response

    return get_object


__all__ = ["READ_SIZE", "GetObject", "download", "object_getter", "object_size"]
