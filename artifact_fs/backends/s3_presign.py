"""S3's presigned multipart upload and download, as MLflow's artifact server hands them to clients.

The arguments and answers are :mod:`artifact_fs.backends.object_store`'s; this signs with the
filesystem's boto client. Presigned requests must carry the headers of the parameters boto would
have sent (bucket owner, requester pays), which MLflow's ``_S3_PARAM_TO_HEADER`` lists.
"""

from __future__ import annotations

import posixpath
from typing import Any

from fsspec.asyn import sync

from artifact_fs import errors
from artifact_fs.backends.object_store import Presigner
from artifact_fs.backends.presigning import attachment_disposition
from artifact_fs.errors import MultipartUnsupportedError

MULTIPART_URL_EXPIRY = 3600
"""boto's default expiry, which MLflow's presigned ``upload_part`` URLs use."""

PARAM_TO_HEADER = {
    "ExpectedBucketOwner": "x-amz-expected-bucket-owner",
    "RequestPayer": "x-amz-request-payer",
    "SSECustomerAlgorithm": "x-amz-server-side-encryption-customer-algorithm",
    "SSECustomerKey": "x-amz-server-side-encryption-customer-key",
    "SSECustomerKeyMD5": "x-amz-server-side-encryption-customer-key-md5",
}
UNSIGNABLE_UPLOAD_ARGS = frozenset({"SSECustomerKey", "ChecksumAlgorithm"})
"""Upload arguments a presigned part URL would expose (a customer key) or break (checksums)."""


def headers_for(params: dict[str, Any]) -> dict[str, str]:
    return {PARAM_TO_HEADER[name]: str(value) for name, value in params.items() if name in PARAM_TO_HEADER}


class S3Presigner(Presigner):
    """Presigned ``upload_part`` / ``get_object`` URLs from the filesystem's boto client."""

    def _common(self) -> dict[str, Any]:
        """The bucket owner and requester-pays arguments every presigned request must repeat."""
        additional = self.fs.s3_additional_kwargs
        return {
            name: additional[name] for name in ("ExpectedBucketOwner", "RequestPayer") if name in additional
        }

    def _sign(self, method: str, params: dict[str, Any], expires: int) -> str:
        async def presign() -> str:
            client = await self.fs.set_session()
            return str(await client.generate_presigned_url(method, Params=params, ExpiresIn=expires))

        with errors.translating(f"{params.get('Bucket')}/{params.get('Key')}"):
            return str(sync(self.fs.loop, presign))

    def start(self, path: str, bucket: str, key: str) -> tuple[str | None, dict[str, str]]:
        refused = UNSIGNABLE_UPLOAD_ARGS & set(self.fs.upload_extra_args)
        if refused:
            raise MultipartUnsupportedError(
                f"presigned multipart uploads are unavailable with {sorted(refused)} in "
                "MLFLOW_S3_UPLOAD_EXTRA_ARGS (presigning would expose or break them)"
            )
        self.bucket, self.key = bucket, key
        response = self.fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)
        return str(response["UploadId"]), headers_for(self._common())

    def part_url(self, path: str, upload_id: str | None, part_number: int) -> str:
        params = {"Bucket": self.bucket, "Key": self.key, "UploadId": upload_id, "PartNumber": part_number}
        return self._sign("upload_part", {**params, **self._common()}, MULTIPART_URL_EXPIRY)

    def complete(self, path: str, upload_id: str | None, parts: list[dict[str, Any]]) -> None:
        """Complete with the parts in the order given (the caller sorts them, as MLflow's does)."""
        bucket, key = self.fs.object_path(path)
        self.fs.call_s3(
            "complete_multipart_upload",
            Bucket=bucket,
            Key=key,
            UploadId=_required(upload_id),
            MultipartUpload={
                "Parts": [{"PartNumber": int(p["part_number"]), "ETag": p["etag"]} for p in parts]
            },
        )
        self.fs.invalidate_cache(path)

    def abort(self, path: str, upload_id: str | None) -> None:
        bucket, key = self.fs.object_path(path)
        self.fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=_required(upload_id))

    def download(self, path: str, expiration: int) -> tuple[str, dict[str, str], int]:
        """An attachment in identity encoding (so ranges match the stored bytes), and the object's size."""
        bucket, key = self.fs.object_path(path)
        head = self.fs.call_s3("head_object", Bucket=bucket, Key=key)
        params = {
            "Bucket": bucket,
            "Key": key,
            "ResponseContentDisposition": attachment_disposition(posixpath.basename(key)),
            "ResponseContentEncoding": "identity",
            **self._common(),
        }
        url = self._sign("get_object", params, expiration)
        return url, headers_for(self._common()), int(head["ContentLength"])


def _required(upload_id: str | None) -> str:
    if not upload_id:
        raise ValueError("an S3 multipart upload needs the upload_id returned when it was created")
    return upload_id
