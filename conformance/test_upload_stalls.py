"""A store that stops reading an upload's body fails the upload within the transfer timeout.

aiohttp (under s3fs, gcsfs and adlfs) starts its read timeout only once a request's body has been
sent: a store or proxy that stops reading a body larger than the socket buffers held the upload
forever (a 4 MiB PUT on this machine). The connections are made with ``TCP_USER_TIMEOUT`` set to
the transfer timeout (:class:`artifact_fs.policy.StallBoundedSockets`). Each backend uploads 24 MiB
through a relay that, once the connection is up, forwards nothing (S3: parts of 10 MiB), and the
error is the builtin ``TimeoutError`` naming the path (fsspec's ``FSTimeoutError`` unwrapped).
"""

from __future__ import annotations

import errno
import os
import socket
import time
import uuid
from typing import Any

import pytest

import artifact_fs
from conformance.servers import azurite
from conformance.servers.faulty_proxy import FaultyProxy
from conformance.servers.seaweedfs import SeaweedFS

pytestmark = pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="TCP_USER_TIMEOUT is Linux's")

BUCKET = "artifacts"
S3_BUCKET = "upload-stalls"
BODY = 24 * 1024 * 1024
TIMEOUT = {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "2", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}


def _gcs(proxy: FaultyProxy) -> tuple[str, dict[str, Any]]:
    options = {"endpoint_url": proxy.url, "token": "anon", "project": "test", "skip_instance_cache": True}
    return f"gs://{BUCKET}/stalls-{uuid.uuid4().hex[:8]}", options


def _azure(proxy: FaultyProxy) -> tuple[str, dict[str, Any]]:
    options = {
        "account_key": azurite.ACCOUNT_KEY,
        "account_url": f"{proxy.url}/{azurite.ACCOUNT}",
        "skip_instance_cache": True,
    }
    return f"wasbs://{BUCKET}@{azurite.ACCOUNT}.blob.core.windows.net/stalls-{uuid.uuid4().hex[:8]}", options


def _s3(proxy: FaultyProxy, seaweedfs: SeaweedFS) -> tuple[str, dict[str, Any]]:
    seaweedfs.create_bucket(S3_BUCKET)
    return f"s3://{S3_BUCKET}/stalls-{uuid.uuid4().hex[:8]}", seaweedfs.storage_options(proxy.url)


EMULATORS = {"gcs": "fake_gcs_server", "azure": "azurite_server", "s3": "seaweedfs_server"}


@pytest.mark.parametrize(
    "emulator",
    [
        pytest.param("gcs", marks=pytest.mark.gcs),
        pytest.param("azure", marks=pytest.mark.azure),
        pytest.param("s3", marks=pytest.mark.s3),
    ],
)
def test_an_upload_body_the_store_stops_reading_fails_within_the_timeout(
    request: pytest.FixtureRequest, emulator: str
) -> None:
    server = request.getfixturevalue(EMULATORS[emulator])
    port = int(server.endpoint_url.rsplit(":", 1)[1]) if emulator == "s3" else server.port
    proxy = FaultyProxy(port)
    try:
        if emulator == "s3":
            uri, options = _s3(proxy, server)
        else:
            uri, options = (_gcs if emulator == "gcs" else _azure)(proxy)
        store = artifact_fs.ArtifactStore(uri, environ=TIMEOUT, **options)
        store.fs.pipe_file("there.bin", b"the connection is up")
        proxy.stall = True
        started = time.monotonic()
        with pytest.raises(OSError) as caught:
            store.fs.pipe_file("up.bin", os.urandom(BODY))
        elapsed = time.monotonic() - started
        print(f"{emulator}: {caught.value!r} after {elapsed:.1f}s")
        assert elapsed < 30, elapsed
        # The builtin TimeoutError naming the path, not fsspec's FSTimeoutError around it.
        error = caught.value
        assert type(error) is TimeoutError and error.errno == errno.ETIMEDOUT, repr(error)
        assert "up.bin" in str(error) and error.__cause__ is not None, repr(error)
    finally:
        proxy.stall = False
        proxy.stop()
