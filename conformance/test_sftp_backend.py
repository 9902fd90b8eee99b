"""SFTP specifics on OpenSSH: atomic writes under a kill, host-key checking, ~/.ssh/config, errors."""

from __future__ import annotations

import errno
import os
import time
import warnings
from pathlib import Path

import pytest

import artifact_fs
from artifact_fs.backends import sftp
from artifact_fs.paths import RESERVED_PREFIX
from conformance.harness import BackendUnderTest
from conformance.servers.launcher import free_port
from conformance.test_ftp_backend import kill_mid_upload, wait_for

pytestmark = pytest.mark.sftp


@pytest.fixture
def running(request: pytest.FixtureRequest) -> BackendUnderTest:
    from conformance.backends.sftp import SFTP

    return request.getfixturevalue(SFTP.fixture_name)  # type: ignore[no-any-return]


def on_disk(backend: BackendUnderTest, root: str) -> Path:
    server = backend.details["server"]
    if server.kind == "asyncssh":  # chrooted: server paths live under the chroot directory
        return Path(server.workdir) / "root" / root.lstrip("/")
    return Path(root)


def test_the_server_is_openssh_when_root(running: BackendUnderTest) -> None:
    """CI runs as root, so the suite must have used OpenSSH, not the fallback."""
    if os.geteuid() == 0:
        assert running.details["server"].kind == "openssh"


def test_a_killed_upload_leaves_no_visible_file(running: BackendUnderTest) -> None:
    url = running.fresh_url()
    fs, root = artifact_fs.url_to_fs(url, **running.storage_options)
    fs.makedirs(root, exist_ok=True)
    kill_mid_upload(url + "/model.bin", running.storage_options)

    directory = on_disk(running, root)
    leftovers = [name for name in os.listdir(directory) if name.startswith(RESERVED_PREFIX)]
    assert leftovers, "the upload should have been under way"
    wait_for(lambda: (directory / leftovers[0]).stat().st_size >= 3 * 1024 * 1024)
    assert not fs.exists(f"{root}/model.bin")
    assert fs.ls(root) == []  # the abandoned temporary file is hidden
    fs.pipe_file(f"{root}/model.bin", b"complete")
    assert fs.cat_file(f"{root}/model.bin") == b"complete"
    fs.rm(root, recursive=True)
    assert not fs.exists(root)


def test_a_failed_write_discards_the_temporary_file(running: BackendUnderTest) -> None:
    fs, root = artifact_fs.url_to_fs(running.fresh_url(), **running.storage_options)
    fs.pipe_file(f"{root}/keep.bin", b"previous")
    with pytest.raises(RuntimeError), fs.open(f"{root}/keep.bin", "wb") as f:
        f.write(b"y" * (1024 * 1024))
        raise RuntimeError("interrupted")
    assert fs.cat_file(f"{root}/keep.bin") == b"previous"
    assert os.listdir(on_disk(running, root)) == ["keep.bin"]


def test_a_file_dropped_without_close_is_discarded(running: BackendUnderTest) -> None:
    import gc

    fs, root = artifact_fs.url_to_fs(running.fresh_url(), **running.storage_options)
    f = fs.open(f"{root}/dropped.bin", "wb")
    f.write(b"never closed")
    del f
    gc.collect()
    assert not fs.exists(f"{root}/dropped.bin")
    assert os.listdir(on_disk(running, root)) == []


def test_errors_name_the_action_and_the_path(running: BackendUnderTest) -> None:
    fs, root = artifact_fs.url_to_fs(running.fresh_url(), **running.storage_options)
    with pytest.raises(FileNotFoundError, match="SFTP read .*missing.bin") as caught:
        fs.cat_file(f"{root}/missing.bin")
    assert caught.value.filename == f"{root}/missing.bin"


def test_host_key_checking_accepts_a_known_host(running: BackendUnderTest) -> None:
    fs, root = artifact_fs.url_to_fs(running.fresh_url(), **running.storage_options)
    fs.pipe_file(f"{root}/trusted.txt", b"known host")
    assert fs.cat_file(f"{root}/trusted.txt") == b"known host"


def test_an_unknown_host_key_is_refused_quickly(running: BackendUnderTest, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    options = {**running.storage_options, "known_hosts": str(empty)}
    started = time.monotonic()
    with pytest.raises(PermissionError, match="host key .* is not trusted"):
        artifact_fs.url_to_fs(running.fresh_url(), **options)
    assert time.monotonic() - started < 5


def test_host_keys_are_checked_even_without_a_known_hosts_option(
    running: BackendUnderTest, tmp_path: Path
) -> None:
    """No option and an empty ~/.ssh: the connection is refused (sshfs alone would accept any key)."""
    options = {k: v for k, v in running.storage_options.items() if k != "known_hosts"}
    with pytest.raises(PermissionError, match="not trusted"):
        artifact_fs.resolve(running.fresh_url(), environ={"HOME": str(tmp_path)}, **options)


def test_host_key_checking_opt_out_warns_and_connects(running: BackendUnderTest) -> None:
    options = {k: v for k, v in running.storage_options.items() if k != "known_hosts"}
    with pytest.warns(sftp.HostKeyCheckingDisabledWarning):
        fs, root = artifact_fs.url_to_fs(running.fresh_url(), check_host_key=False, **options)
    fs.pipe_file(f"{root}/unchecked.txt", b"x")
    assert fs.cat_file(f"{root}/unchecked.txt") == b"x"


def test_known_hosts_from_the_environment(running: BackendUnderTest) -> None:
    fs, root = artifact_fs.resolve(
        running.fresh_url(),
        environ={"ARTIFACT_FS_SFTP_KNOWN_HOSTS": running.details["known_hosts"]},
        client_keys=running.storage_options["client_keys"],
    )
    fs.pipe_file(f"{root}/env.txt", b"env")
    assert fs.cat_file(f"{root}/env.txt") == b"env"


def test_bad_password_fails_quickly_with_permission_error(running: BackendUnderTest) -> None:
    server = running.details["server"]
    url = f"sftp://{server.user}:wrong@127.0.0.1:{server.port}{server.root}"
    started = time.monotonic()
    with pytest.raises(PermissionError, match="login"), warnings.catch_warnings():
        warnings.simplefilter("ignore", sftp.PasswordInURIWarning)
        artifact_fs.url_to_fs(url, known_hosts=running.details["known_hosts"], client_keys=[])
    assert time.monotonic() - started < 5


def test_a_password_in_the_uri_works_with_a_warning(running: BackendUnderTest) -> None:
    server = running.details["server"]
    url = f"sftp://{server.user}:{server.password}@127.0.0.1:{server.port}{server.root.rstrip('/')}/pw"
    with pytest.warns(sftp.PasswordInURIWarning, match=r"\*\*\*"):
        fs, root = artifact_fs.url_to_fs(url, known_hosts=running.details["known_hosts"], client_keys=[])
    fs.pipe_file(f"{root}/by-password.txt", b"password auth")
    assert fs.cat_file(f"{root}/by-password.txt") == b"password auth"


def test_a_refused_port_fails_quickly(running: BackendUnderTest) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError, match="127.0.0.1"):
        artifact_fs.url_to_fs(f"sftp://someone@127.0.0.1:{free_port()}/x", **running.storage_options)
    assert time.monotonic() - started < 5


def test_ssh_config_supplies_host_port_user_and_key(running: BackendUnderTest) -> None:
    """As MLflow reads ~/.ssh/config: an alias resolves to HostName, Port, User and IdentityFile."""
    server = running.details["server"]
    url = f"sftp://sftp-suite{server.root.rstrip('/')}/via-config"
    fs, root = artifact_fs.resolve(url, environ={"HOME": str(running.details["home"])})
    fs.pipe_file(f"{root}/config.txt", b"from ssh config")
    assert fs.cat_file(f"{root}/config.txt") == b"from ssh config"
    fs.rm(root, recursive=True)


def test_ranged_reads_fetch_only_the_range(running: BackendUnderTest) -> None:
    fs, root = artifact_fs.url_to_fs(running.fresh_url(), **running.storage_options)
    data = os.urandom(1024 * 1024)
    fs.pipe_file(f"{root}/blob.bin", data)
    assert fs.cat_file(f"{root}/blob.bin", 1000, 1010) == data[1000:1010]
    assert fs.cat_file(f"{root}/blob.bin", -5) == data[-5:]
    with fs.open(f"{root}/blob.bin", "rb", block_size=4096) as f:
        f.seek(500_000)
        assert f.read(10) == data[500_000:500_010]
        assert f.cache.total_requested_bytes <= 4096 + 10  # type: ignore[attr-defined]


def test_a_reader_never_mixes_two_versions_of_a_replaced_file(running: BackendUnderTest) -> None:
    """Writes rename a new file over the old one; a reader's later ranges must not read the new one."""
    fs, root = artifact_fs.url_to_fs(running.fresh_url(), **running.storage_options)
    path = f"{root}/replaced.bin"
    fs.pipe_file(path, b"a" * 4096)
    with fs.open(path, "rb", block_size=1024, cache_type="none") as reader:
        assert reader.read(1024) == b"a" * 1024
        fs.pipe_file(path, b"b" * 8192)
        with pytest.raises(OSError, match="changed while it was being read") as raised:
            reader.read(1024)
    assert raised.value.errno == errno.ESTALE
    with fs.open(path, "rb") as fresh:
        assert fresh.read() == b"b" * 8192
