"""Azure's presigned multipart upload and download, as MLflow's artifact server hands them to clients.

MLflow's scheme: every part is a Put Block on the destination blob (block ids ``mlflow_block_NNNNN``)
through a SAS URL, and completing commits the block list in part order. Uncommitted blocks are never
visible, and Azure discards them within 7 days, so there is nothing to abort.
"""

from __future__ import annotations

import base64
import datetime
import posixpath
import urllib.parse
from typing import Any

from azure.storage.blob import BlobBlock, BlobSasPermissions, generate_blob_sas
from fsspec.asyn import sync

from artifact_fs.backends.object_store import Presigner
from artifact_fs.errors import MultipartUnsupportedError, translating

MULTIPART_URL_EXPIRY = datetime.timedelta(hours=1)
BLOCK_ID_PREFIX = "mlflow_block_"


def _sas(
    fs: Any,
    container: str,
    blob: str,
    permission: BlobSasPermissions,
    expiry: datetime.datetime,
) -> str:
    """A blob SAS signed with the account key, or with a user delegation key for token credentials."""
    client = fs.service_client
    credential = client.credential
    account_name = client.account_name
    account_key = getattr(credential, "account_key", None)
    if account_key:
        return generate_blob_sas(
            account_name, container, blob, account_key=account_key, permission=permission, expiry=expiry
        )
    if hasattr(credential, "get_token"):
        start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
        try:
            with translating(f"{container}/{blob}"):
                key = sync(fs.loop, client.get_user_delegation_key, start, expiry)
        except PermissionError as exc:
            raise MultipartUnsupportedError(
                "the Azure credential may not create user delegation keys, so no SAS can be signed "
                f"({exc}); use an account key or grant 'Storage Blob Delegator'"
            ) from exc
        return generate_blob_sas(
            account_name, container, blob, user_delegation_key=key, permission=permission, expiry=expiry
        )
    raise MultipartUnsupportedError(
        "presigned Azure URLs need an account key or a token credential; a SAS token or anonymous "
        "access cannot sign new URLs"
    )


def _block_id(part_number: int) -> str:
    return base64.b64encode(f"{BLOCK_ID_PREFIX}{part_number:05d}".encode()).decode()


class AzurePresigner(Presigner):
    """Put Block URLs signed with a blob SAS; completing commits the block list."""

    max_parts = 50_000
    """Azure's most blocks per blob."""

    def _blob_url(self, container: str, blob: str) -> str:
        return str(self.fs.service_client.get_blob_client(container, blob).url.split("?", 1)[0])

    def start(self, path: str, bucket: str, key: str) -> tuple[str | None, dict[str, str]]:
        """No upload id: the block ids say which upload a block belongs to. One SAS serves every part."""
        expiry = datetime.datetime.now(datetime.UTC) + MULTIPART_URL_EXPIRY
        sas = _sas(self.fs, bucket, key, BlobSasPermissions(read=True, write=True), expiry)
        self.blob_url, self.sas = self._blob_url(bucket, key), sas
        return None, {}

    def part_url(self, path: str, upload_id: str | None, part_number: int) -> str:
        block_id = urllib.parse.quote(_block_id(part_number), safe="")
        return f"{self.blob_url}?comp=block&blockid={block_id}&{self.sas}"

    def complete(self, path: str, upload_id: str | None, parts: list[dict[str, Any]]) -> None:
        """Commit the staged blocks in part order; the block ids come back in each part's URL."""
        container, blob = self.fs.object_path(path)
        block_ids = []
        for part in sorted(parts, key=lambda part: int(part["part_number"])):
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(part["url"]).query)
            if "blockid" not in query:
                raise ValueError(f"part {part['part_number']} has no blockid in its URL")
            # The SDK base64-encodes block ids itself, so it is given the id as staged before encoding.
            block_ids.append(base64.b64decode(query["blockid"][0]).decode())

        async def commit() -> None:
            blob_client = self.fs.service_client.get_blob_client(container, blob)
            await blob_client.commit_block_list([BlobBlock(block_id) for block_id in block_ids])

        with translating(path):
            sync(self.fs.loop, commit)
        self.fs.invalidate_cache(posixpath.dirname(path))

    def abort(self, path: str, upload_id: str | None) -> None:
        """Nothing to do: uncommitted blocks are never visible and Azure discards them within 7 days."""

    def download(self, path: str, expiration: int) -> tuple[str, dict[str, str], int]:
        """A read-only SAS URL valid for ``expiration`` seconds, with the blob's size."""
        container, blob = self.fs.object_path(path)
        with translating(path):
            size = int(self.fs.info(path)["size"])
        expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=expiration)
        sas = _sas(self.fs, container, blob, BlobSasPermissions(read=True), expiry)
        return f"{self._blob_url(container, blob)}?{sas}", {}, size
