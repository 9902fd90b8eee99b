"""``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` on SFTP and HDFS: a stall fails, slow progress does not.

SFTP runs through a :class:`FaultyProxy` between the client and sshd: while the proxy stalls, an
upload, a download and a streamed write each fail within about the timeout with a ``TimeoutError``
that names the variable; with latency on every chunk, a transfer lasting several times the timeout
completes. Here HDFS is checked for the timeout reaching each engine's Hadoop configuration; the
stalls themselves (a proxy before the NameNode and before the DataNode, which advertises a proxied
host name) are in ``test_hdfs_stalls.py``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from artifact_fs import uris
from artifact_fs.backends import resolve, sftp
from conformance.harness import BackendUnderTest
from conformance.servers.faulty_proxy import FaultyProxy

TIMEOUT = 2
SLACK = 6.0
"""Seconds beyond the timeout a stalled operation may take to fail (a keepalive round, scheduling)."""
MIB = 1024 * 1024


# -- SFTP ---------------------------------------------------------------------------------------
@pytest.fixture
def sftp_backend(request: pytest.FixtureRequest) -> BackendUnderTest:
    from conformance.backends.sftp import SFTP

    return request.getfixturevalue(SFTP.fixture_name)  # type: ignore[no-any-return]


@pytest.fixture
def sftp_proxy(sftp_backend: BackendUnderTest) -> Iterator[FaultyProxy]:
    proxy = FaultyProxy(sftp_backend.details["server"].port)
    try:
        yield proxy
    finally:
        proxy.stop()


def proxied_sftp(
    backend: BackendUnderTest, proxy: FaultyProxy, home: Path, timeout: str = str(TIMEOUT)
) -> tuple[sftp.ArtifactSFTPFileSystem, str]:
    """A new SFTP connection through ``proxy`` with the timeout set in the environment; a fresh root."""
    server = backend.details["server"]
    known_hosts = home / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{proxy.port} {server.host_public_key}\n")
    url = f"sftp://{server.user}@127.0.0.1:{proxy.port}{server.root.rstrip('/')}/timeouts-{uuid.uuid4().hex[:8]}"
    environ = {"HOME": str(home), "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": timeout}
    uri = uris.parse(url)
    options = sftp.options(uri, environ, client_keys=[server.client_key], known_hosts=str(known_hosts))
    fs = sftp.filesystem(options)
    root = sftp.fs_path(uri, options)
    fs.makedirs(root, exist_ok=True)
    return fs, root


def fails_within_the_timeout(action: Callable[[], object]) -> TimeoutError:
    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        action()
    elapsed = time.monotonic() - started
    print(f"failed after {elapsed:.1f}s: {caught.value}")
    assert TIMEOUT * 0.5 <= elapsed < TIMEOUT + SLACK, elapsed
    assert "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT" in str(caught.value)
    assert caught.value.__cause__ is not None
    return caught.value


@pytest.mark.sftp
@pytest.mark.parametrize("direction", ["upload", "download", "stream", "put_file", "get_file"])
def test_a_stalled_sftp_transfer_fails_within_the_timeout(
    sftp_backend: BackendUnderTest, sftp_proxy: FaultyProxy, tmp_path: Path, direction: str
) -> None:
    fs, root = proxied_sftp(sftp_backend, sftp_proxy, tmp_path)
    fs.pipe_file(f"{root}/there.bin", os.urandom(4 * MIB))
    local = tmp_path / "local.bin"
    local.write_bytes(os.urandom(4 * MIB))

    handle = fs.open(f"{root}/streamed.bin", "wb")

    def stream() -> None:
        with handle:
            handle.write(os.urandom(4 * MIB))

    actions: dict[str, Callable[[], object]] = {
        "upload": lambda: fs.pipe_file(f"{root}/up.bin", os.urandom(4 * MIB)),
        "download": lambda: fs.cat_file(f"{root}/there.bin"),
        "stream": stream,
        "put_file": lambda: fs.put_file(str(local), f"{root}/put.bin"),
        "get_file": lambda: fs.get_file(f"{root}/there.bin", str(tmp_path / "got.bin")),
    }
    sftp_proxy.stall = True
    error = fails_within_the_timeout(actions[direction])
    assert error.filename is not None  # the remote path (the local one for put_file)

    sftp_proxy.stall = False  # the dead connection is not reused: the next lookup connects again
    again, _ = proxied_sftp(sftp_backend, sftp_proxy, tmp_path)
    assert again is not fs
    assert again.info(f"{root}/there.bin")["size"] == 4 * MIB


@pytest.mark.sftp
def test_a_slow_but_moving_sftp_transfer_outlasts_the_timeout(
    sftp_backend: BackendUnderTest, sftp_proxy: FaultyProxy, tmp_path: Path
) -> None:
    """Each relayed chunk waits, so the round trip lasts several timeouts; it still completes.

    (The keepalive that detects a stall queues behind the SSH window's unsent bytes, so a link too
    slow to drain ~2 MiB within the timeout would count as stalled: docs/backends/sftp.md.)
    """
    fs, root = proxied_sftp(sftp_backend, sftp_proxy, tmp_path)
    data = os.urandom(8 * MIB)
    sftp_proxy.latency = 0.02
    started = time.monotonic()
    fs.pipe_file(f"{root}/slow.bin", data)
    assert fs.cat_file(f"{root}/slow.bin") == data
    elapsed = time.monotonic() - started
    print(f"slow round trip took {elapsed:.1f}s with a {TIMEOUT} s timeout")
    assert elapsed > 2 * TIMEOUT, "the proxy's latency should have made the transfer outlast the timeout"


@pytest.mark.sftp
def test_minus_one_means_no_sftp_timeout(
    sftp_backend: BackendUnderTest, sftp_proxy: FaultyProxy, tmp_path: Path
) -> None:
    fs, root = proxied_sftp(sftp_backend, sftp_proxy, tmp_path, timeout="-1")
    assert fs.transfer_timeout is None
    fs.pipe_file(f"{root}/a.bin", b"a")
    assert fs.cat_file(f"{root}/a.bin") == b"a"


# -- HDFS ---------------------------------------------------------------------------------------
@pytest.mark.hdfs
@pytest.mark.parametrize(
    ("engine", "client", "keys"),
    [
        ("hdfs-native", ("hdfs_native", "Client"), {"dfs.client.socket-timeout"}),
        (
            "pyarrow",
            ("pyarrow.fs", "HadoopFileSystem"),
            {"dfs.client.socket-timeout", "dfs.datanode.socket.write.timeout", "ipc.client.rpc-timeout.ms"},
        ),
    ],
)
def test_the_transfer_timeout_reaches_each_hdfs_engine(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
    client: tuple[str, str],
    keys: set[str],
) -> None:
    """Each engine's client is built with Hadoop's socket timeouts in milliseconds, and still works."""
    import importlib

    from conformance.backends.hdfs import HDFS_NATIVE, HDFS_PYARROW

    spec = HDFS_NATIVE if engine == "hdfs-native" else HDFS_PYARROW
    backend: BackendUnderTest = request.getfixturevalue(spec.fixture_name)
    module = importlib.import_module(client[0])
    real = getattr(module, client[1])
    built: list[tuple[tuple[object, ...], dict[str, object]]] = []

    def spy(*args: object, **kwargs: object) -> object:
        built.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, client[1], spy)
    timeout = 37  # an unusual value: no cached filesystem was built with it
    environ = {**backend.environ, "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": str(timeout)}
    fs, root = resolve(backend.fresh_url(), environ=environ, **backend.storage_options)
    assert built, f"{engine}: the client was not built (a cached filesystem was reused)"
    args, kwargs = built[-1]
    config = kwargs["extra_conf"] if engine == "pyarrow" else args[1]
    assert isinstance(config, dict)
    assert {key: config.get(key) for key in keys} == dict.fromkeys(keys, str(timeout * 1000))
    fs.pipe_file(f"{root}/a.bin", b"a" * MIB)
    assert fs.cat_file(f"{root}/a.bin") == b"a" * MIB
    fs.rm(root, recursive=True)
