"""HDFS-specific behaviour on the real MiniDFSCluster (hdfs-native engine).

Multi-block files, HDFS errors as builtin OSErrors with readable messages, empty directories,
MLFLOW_KERBEROS_USER (simple auth), MLFLOW_PYARROW_EXTRA_CONF carrying a viewfs mount table,
``hdfs:/path`` through the Hadoop configuration's fs.defaultFS, and the delete-root parity choice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

import artifact_fs
from artifact_fs.backends import hdfs
from artifact_fs.store import ArtifactStore
from conformance.harness import BackendUnderTest

pytestmark = pytest.mark.hdfs

MIB = 1024 * 1024


@pytest.fixture
def fresh(backend_hdfs_native: BackendUnderTest) -> tuple[hdfs.HdfsNativeFileSystem, str, str]:
    """A fresh root: (filesystem, path inside it, artifact URI)."""
    url = backend_hdfs_native.fresh_url()
    fs, path = artifact_fs.url_to_fs(url, **backend_hdfs_native.storage_options)
    assert isinstance(fs, hdfs.HdfsNativeFileSystem)
    return fs, path, url


def test_a_file_spanning_several_blocks_round_trips(
    fresh: tuple[hdfs.HdfsNativeFileSystem, str, str],
) -> None:
    fs, root, _ = fresh
    data = os.urandom(3 * MIB + 12345)
    path = f"{root}/model.bin"
    with fs.open(path, "wb", block_size=512 * 1024) as handle:
        handle.write(data)
    info = fs.info(path)
    assert info["size"] == len(data)
    assert info["blocksize"] == MIB  # the cluster's small blocks: this file has four
    assert fs.cat_file(path) == data
    assert fs.cat_file(path, MIB - 10, MIB + 10) == data[MIB - 10 : MIB + 10]
    assert fs.cat_file(path, -100) == data[-100:]
    with fs.open(path, "rb") as handle:
        handle.seek(2 * MIB + 5)
        assert handle.read(1000) == data[2 * MIB + 5 : 2 * MIB + 1005]


def test_errors_are_builtin_and_carry_no_java_stack_trace(
    fresh: tuple[hdfs.HdfsNativeFileSystem, str, str],
) -> None:
    fs, root, _ = fresh
    fs.pipe_file(f"{root}/file", b"x")
    fs.pipe_file(f"{root}/dir/child", b"y")
    with pytest.raises(FileNotFoundError) as missing:
        fs.cat_file(f"{root}/missing")
    assert "\tat org.apache" not in str(missing.value)
    with pytest.raises(NotADirectoryError, match="ParentNotDirectoryException"):
        fs.pipe_file(f"{root}/file/below", b"z")
    with pytest.raises(FileExistsError):
        fs.open(f"{root}/file", "xb")
    with pytest.raises(OSError, match="PathIsNotEmptyDirectoryException"):
        fs.rmdir(f"{root}/dir")
    with pytest.raises(FileNotFoundError):
        fs.rm(f"{root}/missing")
    with pytest.raises(IsADirectoryError):
        fs.rm_file(f"{root}/dir")
    assert fs.cat_file(f"{root}/file") == b"x"  # "xb" left the existing file alone


def test_listing_a_file_gives_the_file_and_the_store_gives_nothing(
    fresh: tuple[hdfs.HdfsNativeFileSystem, str, str],
) -> None:
    fs, root, url = fresh
    fs.pipe_file(f"{root}/a.txt", b"abc")
    assert [entry["name"] for entry in fs.ls(f"{root}/a.txt")] == [f"{root}/a.txt"]
    assert ArtifactStore(url, engine="hdfs-native").list_artifacts("a.txt") == []


def test_log_artifacts_keeps_empty_directories(
    fresh: tuple[hdfs.HdfsNativeFileSystem, str, str], tmp_path: Path
) -> None:
    fs, root, url = fresh
    source = tmp_path / "source"
    (source / "empty").mkdir(parents=True)
    (source / "sub").mkdir()
    (source / "sub" / "f.txt").write_text("hi")
    store = ArtifactStore(url, engine="hdfs-native")
    store.log_artifacts(str(source), "out")
    listed = {(info.path, info.is_dir) for info in store.list_artifacts("out")}
    assert listed == {("out/empty", True), ("out/sub", True)}
    assert fs.isdir(f"{root}/out/empty")
    (tmp_path / "down").mkdir()
    downloaded = Path(store.download_artifacts("out", str(tmp_path / "down")))
    assert (downloaded / "empty").is_dir()
    assert (downloaded / "sub" / "f.txt").read_text() == "hi"


def test_deleting_the_root_removes_it(fresh: tuple[hdfs.HdfsNativeFileSystem, str, str]) -> None:
    """Parity choice: like Local and SFTP the root goes too (MLflow's HDFS keeps it, empty)."""
    fs, root, url = fresh
    store = ArtifactStore(url, engine="hdfs-native")
    fs.pipe_file(f"{root}/a/b.txt", b"1")
    store.delete_artifacts()
    assert not fs.exists(root)
    assert store.list_artifacts() == []


def test_recursive_find_is_one_listing(fresh: tuple[hdfs.HdfsNativeFileSystem, str, str]) -> None:
    fs, root, _ = fresh
    for name in ("a/1", "a/b/2", "c/3", "4"):
        fs.pipe_file(f"{root}/{name}", name.encode())
    fs.makedirs(f"{root}/empty")
    assert fs.find(root) == [f"{root}/{n}" for n in ("4", "a/1", "a/b/2", "c/3")]
    assert f"{root}/empty" in fs.find(root, withdirs=True)


def test_kerberos_user_applies_as_the_simple_auth_user(
    backend_hdfs_native: BackendUnderTest, fresh: tuple[hdfs.HdfsNativeFileSystem, str, str]
) -> None:
    """MLFLOW_KERBEROS_USER names the HDFS user (pyarrow's user=); hdfs-native sends HADOOP_USER_NAME."""
    fs, root, url = fresh
    fs.makedirs(root)
    fs.client.set_permission(root, 0o777)
    script = textwrap.dedent(
        f"""
        from artifact_fs.store import ArtifactStore
        store = ArtifactStore({url!r})
        with store.open("owned.txt", "wb") as handle:
            handle.write(b"mine")
        """
    )
    environ = {
        **os.environ,
        "MLFLOW_KERBEROS_USER": "alice",
        "HADOOP_USER_NAME": "alice",
        hdfs.ENGINE_VARIABLE: "hdfs-native",
    }
    subprocess.run([sys.executable, "-c", script], env=environ, check=True, timeout=60)
    assert fs.info(f"{root}/owned.txt")["owner"] == "alice"

    environ["HADOOP_USER_NAME"] = "bob"
    refused = subprocess.run(
        [sys.executable, "-c", script], check=False, env=environ, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0
    assert "HADOOP_USER_NAME=alice" in refused.stderr


def test_extra_conf_carries_a_viewfs_mount_table(
    backend_hdfs_native: BackendUnderTest, fresh: tuple[hdfs.HdfsNativeFileSystem, str, str]
) -> None:
    fs, root, _ = fresh
    cluster = f"c{uuid.uuid4().hex[:8]}"
    namenode = backend_hdfs_native.details["namenode_url"]
    environ = {
        "MLFLOW_PYARROW_EXTRA_CONF": (
            f"fs.viewfs.mounttable.{cluster}.link./data={namenode}{root},"
            f"fs.viewfs.mounttable.{cluster}.linkFallback={namenode}/"
        ),
        hdfs.ENGINE_VARIABLE: "hdfs-native",
    }
    view, view_path = artifact_fs.backends.resolve(f"viewfs://{cluster}/data/run/artifacts", environ)
    view.pipe_file(f"{view_path}/through-viewfs.txt", b"v")
    assert fs.cat_file(f"{root}/run/artifacts/through-viewfs.txt") == b"v"


def test_hdfs_colon_path_uses_the_default_filesystem_of_the_hadoop_configuration(
    backend_hdfs_native: BackendUnderTest,
    fresh: tuple[hdfs.HdfsNativeFileSystem, str, str],
    tmp_path: Path,
) -> None:
    fs, root, _ = fresh
    (tmp_path / "core-site.xml").write_text(
        "<?xml version='1.0'?><configuration><property><name>fs.defaultFS</name>"
        f"<value>{backend_hdfs_native.details['namenode_url']}</value></property></configuration>"
    )
    environ = {"HADOOP_CONF_DIR": str(tmp_path), hdfs.ENGINE_VARIABLE: "hdfs-native"}
    default_fs, path = artifact_fs.backends.resolve(f"hdfs:{root}/artifacts", environ)
    assert path == f"{root}/artifacts"
    default_fs.pipe_file(f"{path}/x.txt", b"d")
    assert fs.cat_file(f"{root}/artifacts/x.txt") == b"d"
