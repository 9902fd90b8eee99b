"""HDFS errors through the one table: what hdfs-native and libhdfs raise becomes a builtin error."""

from __future__ import annotations

import errno

import pytest

from artifact_fs import errors

STACK = (
    "\n\tat org.apache.hadoop.hdfs.server.namenode.INodeFile.valueOf(INodeFile.java:87)\n\tat x.y(Z.java:1)"
)


def _rpc_error(java_class: str, message: str) -> RuntimeError:
    """hdfs-native's text for a remote exception it has no builtin class for (escaped stack trace)."""
    escaped = (message + STACK).replace("\n", "\\n").replace("\t", "\\t")
    return RuntimeError(f'RPCError("{java_class}", "{escaped}")')


@pytest.mark.parametrize(
    ("java_class", "expected", "retryable"),
    [
        ("org.apache.hadoop.fs.ParentNotDirectoryException", NotADirectoryError, False),
        ("org.apache.hadoop.fs.PathIsNotEmptyDirectoryException", OSError, False),
        ("org.apache.hadoop.security.AccessControlException", PermissionError, False),
        ("org.apache.hadoop.hdfs.server.namenode.SafeModeException", OSError, True),
        ("org.apache.hadoop.ipc.StandbyException", ConnectionError, True),
        ("org.apache.hadoop.hdfs.SomethingNewException", OSError, False),
    ],
)
def test_a_remote_exception_is_its_row_named_without_the_stack_trace(
    java_class: str, expected: type[OSError], retryable: bool
) -> None:
    raised = _rpc_error(java_class, "/a/b (is not a directory)")
    translated = errors.translate(raised, "/a/b/c")
    assert type(translated) is expected
    simple_name = java_class.rsplit(".", 1)[-1]
    assert str(translated.strerror).startswith(f"{simple_name}: /a/b (is not a directory)")
    assert "\\tat" not in str(translated) and "\tat" not in str(translated)
    assert translated.filename == "/a/b/c"
    assert translated.__cause__ is raised
    assert errors.is_retryable(raised) is retryable


def test_a_non_empty_directory_carries_enotempty() -> None:
    translated = errors.translate(_rpc_error("org.apache.hadoop.fs.PathIsNotEmptyDirectoryException", "/d"))
    assert translated.errno == errno.ENOTEMPTY


def test_reading_a_directory_is_is_a_directory_error() -> None:
    raised = FileNotFoundError("Path is not a file: /a/dir" + STACK)
    translated = errors.translate(raised, "/a/dir")
    assert isinstance(translated, IsADirectoryError)
    assert translated.strerror == "Path is not a file: /a/dir"
    assert translated.__cause__ is raised


def test_a_missing_file_keeps_its_class_without_the_stack_trace() -> None:
    raised = FileNotFoundError("File does not exist: /a/missing" + STACK)
    translated = errors.translate(raised, "/a/missing")
    assert type(translated) is FileNotFoundError
    assert translated.errno == errno.ENOENT
    assert translated.strerror == "File does not exist: /a/missing"


def test_a_refused_namenode_connection_is_a_retryable_connection_error() -> None:
    raised = OSError("Connection refused (os error 111)")
    translated = errors.translate(raised, "/x")
    assert isinstance(translated, ConnectionRefusedError)
    assert errors.is_retryable(translated)


def test_a_plain_builtin_error_passes_unchanged() -> None:
    raised = FileNotFoundError(errno.ENOENT, "no such file or directory", "/x")
    assert errors.translate(raised, "/x") is raised
    other = RuntimeError("not an RPC error")
    assert type(errors.translate(other)) is OSError


def test_translating_raises_the_translated_error_from_the_original() -> None:
    raised = _rpc_error("org.apache.hadoop.fs.FileAlreadyExistsException", "/a exists")
    with pytest.raises(FileExistsError) as info, errors.translating("/a"):
        raise raised
    assert info.value.__cause__ is raised


def test_java_stack_traces_are_cut_raw_or_escaped() -> None:
    assert errors.without_java_stack_trace("m" + STACK) == "m"
    assert errors.without_java_stack_trace("m" + STACK.replace("\n", "\\n").replace("\t", "\\t")) == "m"
    assert errors.without_java_stack_trace("plain message") == "plain message"
