"""Kerberos error details: the probe that names a Kerberized NameNode's hang-up, and clock skew."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from artifact_fs.backends.hdfs.kerberos import SIMPLE_AUTH_HEADER, simple_auth_refusal

# What a Kerberized Hadoop 3 NameNode answers to SIMPLE_AUTH_HEADER (recorded from MiniDFSCluster).
KERBERIZED_ANSWER = (
    b'\x00\x00\x00\x89\x87\x01\x08\xff\xff\xff\xff\x0f\x10\x02\x18\t"1org.apache.hadoop.security.'
    b"AccessControlException*BSIMPLE authentication is not enabled.  Available:[TOKEN, KERBEROS]"
    b"0\x0f:\x00@\x01"
)


@pytest.fixture
def namenode(request: pytest.FixtureRequest) -> Iterator[int]:
    """A one-connection server that reads the header and EOF, then sends ``request.param``."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            data = b""
            while chunk := connection.recv(64):
                data += chunk
            received.append(data)
            connection.sendall(request.param)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    thread.join(5)
    listener.close()
    assert received == [SIMPLE_AUTH_HEADER]


@pytest.mark.parametrize("namenode", [KERBERIZED_ANSWER], indirect=True)
def test_a_kerberized_namenode_refusal_is_quoted(namenode: int) -> None:
    assert simple_auth_refusal("127.0.0.1", namenode) == (
        "SIMPLE authentication is not enabled. Available:[TOKEN, KERBEROS]"
    )


@pytest.mark.parametrize("namenode", [b""], indirect=True)
def test_a_simple_auth_namenode_says_nothing(namenode: int) -> None:
    assert simple_auth_refusal("127.0.0.1", namenode) is None


def test_no_probe_without_an_explicit_port() -> None:
    assert simple_auth_refusal("nameservice1", None) is None


def test_an_unreachable_namenode_is_no_refusal() -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    assert simple_auth_refusal("127.0.0.1", port, timeout=1) is None


def test_a_clock_skew_is_named_as_such() -> None:
    """hdfs-native's GSSAPI error for a clock off by more than the realm's skew says to sync clocks."""
    from artifact_fs.errors import translate

    raw = RuntimeError(
        'GSSAPIError(MajorCodes(FAILURE), 2529639077, "Unspecified GSS failure.  Minor code may provide '
        'more information: Clock skew too great")'
    )
    error = translate(raw, "/")
    assert isinstance(error, PermissionError)
    assert "clock differs from the KDC's or the NameNode's" in str(error) and "NTP" in str(error)
