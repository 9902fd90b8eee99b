"""FTP/FTPS specifics on pyftpdlib: atomic uploads under a kill, clear connection errors, TLS, URLs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

import artifact_fs
from artifact_fs.paths import RESERVED_PREFIX
from conformance.harness import BackendUnderTest
from conformance.servers.ftp import PASSWORD, USER

pytestmark = pytest.mark.ftp

REPO = Path(__file__).resolve().parents[1]

SLOW_WRITER = r"""
import json, sys
import artifact_fs
url, options = sys.argv[1], json.loads(sys.argv[2])
fs, path = artifact_fs.url_to_fs(url, **options)
with fs.open(path, "wb") as f:
    for i in range(64):
        f.write(b"x" * (1024 * 1024))
        f.flush()
        print("sent", i, flush=True)
        if i == 2:
            sys.stdin.readline()  # blocks until the test kills this process mid-upload
"""


def kill_mid_upload(url: str, options: dict[str, object]) -> None:
    """Start a real upload in a subprocess, SIGKILL it after 3 MiB were sent, reap it."""
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, url, json.dumps(options)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        text=True,
    )
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.strip() == "sent 2":
                break
        else:
            raise AssertionError(f"writer ended early: {child.stderr.read() if child.stderr else ''}")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL


def wait_for(condition: object, timeout: float = 10.0) -> None:
    """Poll a server-side condition (the server notices a dead client asynchronously)."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


@pytest.fixture(params=["ftp", "ftps"])
def running(request: pytest.FixtureRequest) -> BackendUnderTest:
    return request.getfixturevalue(f"backend_{request.param}")  # type: ignore[no-any-return]


def server_dir(backend: BackendUnderTest, root: str) -> Path:
    return Path(backend.details["home"]) / root.lstrip("/")


def test_a_killed_upload_leaves_no_visible_file(running: BackendUnderTest) -> None:
    url = running.fresh_url()
    fs, root = artifact_fs.url_to_fs(url, **running.storage_options)
    fs.makedirs(root, exist_ok=True)
    kill_mid_upload(url + "/model.bin", running.storage_options)

    on_disk = server_dir(running, root)

    def partial_sizes() -> list[int]:
        return [p.stat().st_size for p in on_disk.iterdir() if p.name.startswith(RESERVED_PREFIX)]

    # The upload really was under way: the server stored part of what was sent. (Not all 3 MiB: a
    # killed client's socket may be reset before the server read the bytes still in flight.)
    wait_for(lambda: any(size > 0 for size in partial_sizes()), timeout=30.0)
    assert not fs.exists(f"{root}/model.bin")
    assert fs.ls(root) == []  # the abandoned temporary file is hidden
    fs.pipe_file(f"{root}/model.bin", b"complete")  # a new upload to the same name works
    assert fs.cat_file(f"{root}/model.bin") == b"complete"
    fs.rm(root, recursive=True)  # and the leftover does not keep the directory alive
    assert not fs.exists(root)


def test_a_failed_write_discards_the_temporary_file(running: BackendUnderTest) -> None:
    fs, root = artifact_fs.url_to_fs(running.fresh_url(), **running.storage_options)
    with pytest.raises(RuntimeError), fs.open(f"{root}/partial.bin", "wb") as f:
        f.write(b"y" * (3 * 1024 * 1024))
        raise RuntimeError("interrupted")
    assert not fs.exists(f"{root}/partial.bin")
    assert os.listdir(server_dir(running, root)) == []


def test_listing_names_are_full_paths_without_details(running: BackendUnderTest) -> None:
    fs, root = artifact_fs.url_to_fs(running.fresh_url(), **running.storage_options)
    fs.pipe({f"{root}/b.txt": b"b", f"{root}/a/c.txt": b"c"})
    assert fs.ls(root, detail=False) == [f"{root}/a", f"{root}/b.txt"]
    assert fs.ls(f"{root}/b.txt", detail=False) == [f"{root}/b.txt"]


def test_password_in_the_url_is_percent_decoded(backend_ftp: BackendUnderTest) -> None:
    """MLflow unquotes FTP passwords; the test password has ' ', ':', '@', '/' and '%' in it."""
    url = backend_ftp.details["url_with_password"]
    assert quote(PASSWORD, safe="") in url
    fs, root = artifact_fs.url_to_fs(url)
    fs.pipe_file(f"{root}/decoded.txt", b"ok")
    assert fs.cat_file(f"{root}/decoded.txt") == b"ok"


def test_no_user_means_anonymous_login(backend_ftp: BackendUnderTest) -> None:
    server = backend_ftp.details["server"]
    fs, root = artifact_fs.url_to_fs(f"ftp://127.0.0.1:{server.port}/anonymous-upload")
    fs.pipe_file(f"{root}/a.txt", b"anonymous")
    assert (server.anonymous_home / "anonymous-upload" / "a.txt").read_bytes() == b"anonymous"


def test_bad_credentials_fail_fast_with_permission_error(running: BackendUnderTest) -> None:
    port = running.details["server"].port
    options = {**running.storage_options, "password": "wrong"}
    started = time.monotonic()
    with pytest.raises(PermissionError, match="530"):
        artifact_fs.url_to_fs(f"ftp://{USER}@127.0.0.1:{port}/x", **options)
    assert time.monotonic() - started < 5


def test_a_refused_port_fails_fast_with_connection_error() -> None:
    from conformance.servers.launcher import free_port

    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError, match="127.0.0.1"):
        artifact_fs.url_to_fs(f"ftp://{USER}:pw@127.0.0.1:{free_port()}/x")
    assert time.monotonic() - started < 5


def test_tls_server_refuses_plain_ftp(backend_ftps: BackendUnderTest) -> None:
    options = {k: v for k, v in backend_ftps.storage_options.items() if k not in {"tls", "ca_file"}}
    with pytest.raises(PermissionError, match="SSL/TLS required"):
        artifact_fs.url_to_fs(backend_ftps.root_url, **options)


def test_tls_certificate_is_verified_by_default(backend_ftps: BackendUnderTest) -> None:
    options = {**backend_ftps.storage_options, "ca_file": None}
    with pytest.raises(PermissionError, match="certificate is not trusted"):
        artifact_fs.url_to_fs(backend_ftps.root_url, **options)


def test_tls_verification_opt_out_connects(backend_ftps: BackendUnderTest) -> None:
    options = {**backend_ftps.storage_options, "ca_file": None, "tls_verify": False}
    fs, root = artifact_fs.url_to_fs(backend_ftps.fresh_url(), **options)
    fs.pipe_file(f"{root}/x.txt", b"unverified but encrypted")
    assert fs.cat_file(f"{root}/x.txt") == b"unverified but encrypted"


def test_tls_from_the_environment(backend_ftps: BackendUnderTest) -> None:
    credentials = {k: backend_ftps.storage_options[k] for k in ("username", "password")}
    fs, root = artifact_fs.resolve(backend_ftps.fresh_url(), environ=backend_ftps.environ, **credentials)
    assert fs.ftp.sock.version() is not None  # the control connection is TLS
    fs.pipe_file(f"{root}/env.txt", b"env")
    assert fs.cat_file(f"{root}/env.txt") == b"env"


def test_threads_do_not_share_a_control_connection(backend_ftp: BackendUnderTest) -> None:
    from concurrent.futures import ThreadPoolExecutor

    fs, root = artifact_fs.url_to_fs(backend_ftp.fresh_url(), **backend_ftp.storage_options)
    files = {f"{root}/f{i}.bin": os.urandom(200_000) for i in range(16)}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: fs.pipe_file(*item), files.items()))
        read = dict(zip(files, pool.map(fs.cat_file, files), strict=True))
    assert read == files


def test_a_dropped_control_connection_is_reopened_and_the_operation_retried(
    backend_ftp: BackendUnderTest,
) -> None:
    """A server that hangs up an idle connection costs one reconnect (the policy's tenacity retry)."""
    import socket

    from artifact_fs.policy import TransferPolicy

    policy = TransferPolicy(backoff_factor=0, backoff_jitter=0)
    fs, root = artifact_fs.url_to_fs(backend_ftp.fresh_url(), policy=policy, **backend_ftp.storage_options)
    fs.pipe_file(f"{root}/a.txt", b"still here")
    dropped = fs.ftp
    dropped.sock.shutdown(socket.SHUT_RD)  # the next reply reads end-of-file, as after a server hang-up
    assert fs.cat_file(f"{root}/a.txt") == b"still here"
    assert fs.ftp is not dropped


def test_a_permanent_refusal_is_not_retried(backend_ftp: BackendUnderTest) -> None:
    fs, root = artifact_fs.url_to_fs(backend_ftp.fresh_url(), **backend_ftp.storage_options)
    connection = fs.ftp
    started = time.monotonic()
    with pytest.raises(FileNotFoundError, match="FTP stat .*missing.txt"):
        fs.cat_file(f"{root}/missing.txt")
    assert fs.ftp is connection  # no reconnect, no back-off
    assert time.monotonic() - started < 1


def test_timeouts_come_from_the_transfer_policy(backend_ftp: BackendUnderTest) -> None:
    environ = {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "17"}
    fs, _ = artifact_fs.resolve(backend_ftp.fresh_url(), environ=environ, **backend_ftp.storage_options)
    assert fs.ftp.sock.gettimeout() == 17.0
    fs, _ = artifact_fs.url_to_fs(backend_ftp.fresh_url(), timeout=4.0, **backend_ftp.storage_options)
    assert fs.ftp.sock.gettimeout() == 4.0


def test_a_transaction_publishes_uploads_only_when_it_ends(backend_ftp: BackendUnderTest) -> None:
    fs, root = artifact_fs.url_to_fs(backend_ftp.fresh_url(), **backend_ftp.storage_options)
    with fs.transaction:
        with fs.open(f"{root}/t.bin", "wb") as f:
            f.write(b"committed")
        assert not fs.exists(f"{root}/t.bin")
    assert fs.cat_file(f"{root}/t.bin") == b"committed"
    with pytest.raises(RuntimeError), fs.transaction:
        with fs.open(f"{root}/u.bin", "wb") as f:
            f.write(b"discarded")
        raise RuntimeError
    assert not fs.exists(f"{root}/u.bin")
    assert sorted(os.listdir(server_dir(backend_ftp, root))) == ["t.bin"]
