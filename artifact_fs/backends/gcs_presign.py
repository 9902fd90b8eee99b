"""GCS's presigned multipart upload and download, as MLflow's artifact server hands them to clients.

GCS's XML multipart API is not offered by its emulators, so uploads follow gcloud's parallel
composite uploads instead: every part is a temporary object written through its own V4-signed PUT
URL, and completing composes the parts (in part-number order, at most 32 sources per compose call)
into the destination and deletes them. Nothing is remembered between calls: the part names derive
from the destination's directory, the random upload id and the part numbers, and their reserved
prefix keeps them out of the artifact server's listings.
"""

from __future__ import annotations

import datetime
import errno
import posixpath
import re
import secrets
from collections.abc import Callable
from typing import Any

from gcsfs.core import GCSFileSystem
from gcsfs.core import _location as _gcs_location

from artifact_fs.backends.object_store import Presigner
from artifact_fs.backends.presigning import attachment_disposition
from artifact_fs.errors import MultipartUnsupportedError, translating
from artifact_fs.paths import RESERVED_PREFIX

MULTIPART_URL_EXPIRY = datetime.timedelta(hours=1)
"""How long each part's PUT URL is valid (S3's presigned ``upload_part`` URLs last as long)."""
COMPOSE_LIMIT = 32
"""Most source objects one compose request may name (GCS's limit)."""
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


def _check_upload_id(upload_id: str | None) -> str:
    if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
        raise ValueError(
            f"invalid GCS upload_id {upload_id!r}: expected the 32 hex digits returned when the upload "
            "was created"
        )
    return upload_id


def _scratch_prefix(path: str, upload_id: str) -> str:
    """``<dir>/.artifact.uploading.<upload_id>.``: the reserved prefix keeps the parts out of listings."""
    return f"{posixpath.dirname(path)}/{RESERVED_PREFIX}{upload_id}."


def _part_path(path: str, upload_id: str, part_number: int) -> str:
    return f"{_scratch_prefix(path, upload_id)}part-{part_number:05d}"


def _signing_arguments(fs: GCSFileSystem) -> dict[str, Any]:
    """How to sign V4 URLs with the filesystem's credentials: a private key, or IAM signBlob."""
    from google.auth.credentials import Signing

    credentials = getattr(fs.credentials, "credentials", None)
    if credentials is None:
        raise MultipartUnsupportedError(
            "anonymous GCS access cannot sign URLs; presigned uploads and downloads need service-account "
            "credentials (a key file in GOOGLE_APPLICATION_CREDENTIALS, or a service account that may "
            "call IAM signBlob)"
        )
    if isinstance(credentials, Signing):
        return {"credentials": credentials}
    email = getattr(credentials, "service_account_email", None)
    if email:
        with translating("credentials"):
            fs.credentials.maybe_refresh()  # a current access token, and the real e-mail on GCE
        email = getattr(credentials, "service_account_email", email)
        if email and email != "default" and credentials.token:
            return {
                "credentials": credentials,
                "service_account_email": email,
                "access_token": credentials.token,
            }
    raise MultipartUnsupportedError(
        f"GCS credentials of type {type(credentials).__name__} cannot sign URLs; presigned uploads and "
        "downloads need a service-account key or a service account that may call IAM signBlob"
    )


def _signer(fs: GCSFileSystem) -> Callable[..., str]:
    """``sign(path, method, expiration, **options)`` for V4 URLs on the filesystem's endpoint; the
    credentials are checked (and a client made) once, however many URLs follow."""
    from google.cloud import storage

    arguments = _signing_arguments(fs)
    client = storage.Client(project=fs.project or "artifact-fs", credentials=arguments["credentials"])
    endpoint = getattr(fs, "_endpoint", None) or _gcs_location()  # never the mTLS host: clients have no cert

    def sign(path: str, method: str, expiration: datetime.timedelta, **options: Any) -> str:
        bucket, key = fs.object_path(path)
        blob = client.bucket(bucket).blob(key)
        with translating(path):
            url = blob.generate_signed_url(
                version="v4",
                method=method,
                expiration=expiration,
                api_access_endpoint=endpoint,
                **arguments,
                **options,
            )
        return str(url)

    return sign


def _compose(fs: GCSFileSystem, path: str, sources: list[str], scratch: str) -> None:
    """Compose ``sources`` into ``path``, through intermediate objects when there are more than 32."""
    level = 0
    while len(sources) > COMPOSE_LIMIT:
        composed = []
        for index in range(0, len(sources), COMPOSE_LIMIT):
            group = sources[index : index + COMPOSE_LIMIT]
            if len(group) == 1:
                composed.append(group[0])
                continue
            intermediate = f"{scratch}compose-{level}-{index // COMPOSE_LIMIT:05d}"
            fs.merge(intermediate, group)
            composed.append(intermediate)
        sources = composed
        level += 1
    fs.merge(path, sources)


def _scratch_objects(fs: GCSFileSystem, path: str, upload_id: str) -> list[str]:
    """The temporary objects of one upload that exist now (one listing, by name prefix)."""
    scratch = _scratch_prefix(path, upload_id)
    directory, prefix = scratch.rsplit("/", 1)
    fs.invalidate_cache(directory)
    with translating(path):
        found = fs.find(directory, prefix=prefix, maxdepth=1)
    return [name for name in found if name.startswith(scratch)]


def _remove_scratch(fs: GCSFileSystem, path: str, upload_id: str) -> None:
    leftovers = _scratch_objects(fs, path, upload_id)
    if leftovers:
        with translating(path):
            fs.rm(leftovers)
    fs.invalidate_cache(posixpath.dirname(path))


class GCSPresigner(Presigner):
    """Part objects behind V4-signed PUT URLs, composed when the upload completes."""

    def start(self, path: str, bucket: str, key: str) -> tuple[str | None, dict[str, str]]:
        """A random upload id; the credentials are checked (and a signer made) once for all parts."""
        self.sign = _signer(self.fs)
        return secrets.token_hex(16), {}

    def part_url(self, path: str, upload_id: str | None, part_number: int) -> str:
        return self.sign(
            _part_path(path, _check_upload_id(upload_id), part_number), "PUT", MULTIPART_URL_EXPIRY
        )

    def complete(self, path: str, upload_id: str | None, parts: list[dict[str, Any]]) -> None:
        """Compose the uploaded part objects in part-number order into ``path``, then delete them."""
        fs, upload_id = self.fs, _check_upload_id(upload_id)
        numbers = sorted(int(part["part_number"]) for part in parts)
        if not numbers:
            raise ValueError("a multipart upload needs at least one part")
        if len(set(numbers)) != len(numbers) or not 1 <= numbers[0] <= numbers[-1] <= self.max_parts:
            raise ValueError(
                f"part numbers must be distinct and between 1 and {self.max_parts}, got {numbers}"
            )
        sources = [_part_path(path, upload_id, number) for number in numbers]
        missing = sorted(set(sources) - set(_scratch_objects(fs, path, upload_id)))
        if missing:
            numbers_missing = [int(name.rsplit("-", 1)[1]) for name in missing]
            raise FileNotFoundError(
                errno.ENOENT, f"multipart upload {upload_id} has no uploaded part(s) {numbers_missing}", path
            )
        with translating(path):
            _compose(fs, path, sources, _scratch_prefix(path, upload_id))
        _remove_scratch(fs, path, upload_id)
        fs.invalidate_cache(path)

    def abort(self, path: str, upload_id: str | None) -> None:
        """Delete whatever part objects of the upload exist (none is fine)."""
        _remove_scratch(self.fs, path, _check_upload_id(upload_id))

    def download(self, path: str, expiration: int) -> tuple[str, dict[str, str], int]:
        """A V4-signed GET (as an attachment) valid for ``expiration`` seconds, with the object's size."""
        sign = _signer(self.fs)  # before any request: credentials that cannot sign fail fast
        with translating(path):
            size = int(self.fs.info(path)["size"])
        disposition = attachment_disposition(posixpath.basename(path))
        url = sign(path, "GET", datetime.timedelta(seconds=expiration), response_disposition=disposition)
        return url, {}, size
