"""Kerberos for HDFS: MLFLOW_KERBEROS_TICKET_CACHE checked before either engine connects.

Both clients fail late and unclearly on a bad ticket cache: libhdfs's JVM prints a Java stack trace
to stderr and pyarrow raises a bare "HDFS connection failed"; hdfs-native names a GSSAPI status.
The cache file (MIT's format, which ``kinit`` and Java write) is read here instead: a missing
cache, an expired ticket and a cache for a principal other than ``MLFLOW_KERBEROS_USER`` are each a
one-line ``PermissionError`` saying which, and the cache's principal is what hdfs-native needs.
"""

from __future__ import annotations

import errno
import io
import os
import re
import socket
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO
from xml.etree import ElementTree

from artifact_fs import settings

FILE_PREFIX = "FILE:"


@dataclass(frozen=True)
class TicketCache:
    """What a ticket cache file says: its default principal and when its tickets end."""

    path: str
    principal: str
    """``name[/instance]@REALM``."""
    tgt_end: float | None
    """When the TGT for the principal's realm expires (seconds since the epoch), None without one."""

    @property
    def short_name(self) -> str:
        """The principal's first component: the user Hadoop maps it to with default rules."""
        return self.principal.split("@", 1)[0].split("/", 1)[0]


def refusal_error(message: str) -> PermissionError:
    """One line, ``Kerberos: <what is wrong and what to do>``."""
    return PermissionError(errno.EACCES, f"Kerberos: {message}")


def read_ticket_cache(location: str) -> TicketCache | None:
    """The cache at ``location`` (a path or ``FILE:path``); None for a cache that is no file
    (``KEYRING:``, ``KCM:``, ``DIR:``), which only the Kerberos library can read."""
    if ":" in location and not location.startswith(FILE_PREFIX) and not location.startswith("/"):
        return None
    path = location.removeprefix(FILE_PREFIX)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        return _parse(io.BytesIO(data), len(data), path)
    except FileNotFoundError as exc:
        raise refusal_error(
            f"no ticket cache at {path}; run kinit -c {path} <principal> "
            "(MLFLOW_KERBEROS_TICKET_CACHE names the cache)"
        ) from exc
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise refusal_error(f"{path} is not a Kerberos ticket cache") from exc


def _parse(handle: BinaryIO, size: int, path: str) -> TicketCache:
    def take(count: int) -> bytes:
        data = handle.read(count)
        if len(data) != count:
            raise ValueError("truncated ticket cache")
        return data

    def number(fmt: str) -> int:
        return int(struct.unpack(">" + fmt, take(struct.calcsize(fmt)))[0])

    def octets() -> bytes:
        return take(number("I"))

    def principal() -> str:
        number("I")  # name type
        count = number("I")
        realm = octets().decode()
        return "/".join(octets().decode() for _ in range(count)) + "@" + realm

    version = number("H")
    if version not in (0x0503, 0x0504):
        raise ValueError(f"unsupported ticket cache version {version:#x}")
    if version == 0x0504:
        take(number("H"))  # header tags (KDC time offset)
    default = principal()
    realm = default.rsplit("@", 1)[-1]
    tgt_end = None
    while handle.tell() < size:
        principal()  # client
        server = principal()
        number("H")  # key type
        octets()  # key
        _authtime, _start, end, _renew = (number("I") for _ in range(4))
        take(1 + 4)  # is_skey, flags
        for _ in range(number("I")):  # addresses
            number("H")
            octets()
        for _ in range(number("I")):  # authorization data
            number("H")
            octets()
        octets()  # ticket
        octets()  # second ticket
        if server == f"krbtgt/{realm}@{realm}":
            tgt_end = float(end)
    return TicketCache(path=path, principal=default, tgt_end=tgt_end)


def check_ticket_cache(location: str, user: str | None, now: float | None = None) -> TicketCache | None:
    """The cache, refused with one clear line when it cannot authenticate ``user``.

    ``user`` (MLFLOW_KERBEROS_USER) must name the cache's principal: ``alice`` or
    ``alice@REALM`` for ``alice@REALM`` (libhdfs looks the user up in the cache; hdfs-native would
    silently connect as the cache's principal).
    """
    cache = read_ticket_cache(location)
    if cache is None:
        return None
    if user and user not in {cache.principal, cache.principal.rsplit("@", 1)[0]}:
        raise refusal_error(
            f"MLFLOW_KERBEROS_USER={user!r} does not match the ticket cache {cache.path}, which holds "
            f"{cache.principal}; set MLFLOW_KERBEROS_USER to that principal or kinit as {user}"
        )
    now = time.time() if now is None else now
    if cache.tgt_end is None:
        raise refusal_error(
            f"the ticket cache {cache.path} holds no ticket-granting ticket for {cache.principal}; "
            f"run kinit -c {cache.path} {cache.principal}"
        )
    if cache.tgt_end <= now:
        ended = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(cache.tgt_end))
        raise refusal_error(
            f"the ticket for {cache.principal} in {cache.path} expired at {ended}; "
            f"run kinit -c {cache.path} {cache.principal} again"
        )
    return cache


def client_wants_kerberos(extra_conf: Mapping[str, str] | None, conf_dir: str | None) -> bool:
    """Whether the client's Hadoop configuration (extra_conf, else core-site.xml) says Kerberos."""
    key = "hadoop.security.authentication"
    if extra_conf and key in extra_conf:
        return extra_conf[key].strip().lower() == "kerberos"
    if not conf_dir:
        return False
    try:
        tree = ElementTree.parse(os.path.join(conf_dir, "core-site.xml"))
    except (OSError, ElementTree.ParseError):
        return False
    for prop in tree.getroot().iter("property"):
        if (prop.findtext("name") or "").strip() == key:
            return (prop.findtext("value") or "").strip().lower() == "kerberos"
    return False


def default_ticket_cache() -> str:
    """Where Kerberos libraries (and Java) look without MLFLOW_KERBEROS_TICKET_CACHE."""
    return settings.KRB5CCNAME.get() or f"/tmp/krb5cc_{os.getuid()}"


def login(
    kerb_ticket: str | None, user: str | None, extra_conf: Mapping[str, str] | None, conf_dir: str | None
) -> str | None:
    """Check the ticket cache a client will use; the principal it holds (None without Kerberos).

    With MLFLOW_KERBEROS_TICKET_CACHE that cache is checked; without it, when the client's
    configuration asks for Kerberos, the default cache is (so a missing ``kinit`` is named here,
    not by a Java stack trace).
    """
    if kerb_ticket:
        cache = check_ticket_cache(kerb_ticket, user)
    elif client_wants_kerberos(extra_conf, conf_dir):
        cache = check_ticket_cache(default_ticket_cache(), user)
    else:
        return None
    return cache.principal if cache is not None else None


SIMPLE_AUTH_HEADER = b"hrpc\x09\x00\x00"
"""Hadoop RPC's connection header: "hrpc", version 9, service class 0, auth protocol NONE."""
SIMPLE_AUTH_REFUSED = re.compile(rb"SIMPLE authentication is not enabled[ -~]*?(\]|(?=[^ -~])|\Z)")


def simple_auth_refusal(host: str | None, port: int | None, timeout: float = 5.0) -> str | None:
    """The NameNode's own refusal of simple authentication, or None when it gives none.

    A Kerberized NameNode answers a simple-auth connection header at once with an
    ``AccessControlException`` ("SIMPLE authentication is not enabled.  Available:[TOKEN, KERBEROS]")
    and hangs up; hdfs-native reports only the hang-up ("RPC listener disconnected"). Called after a
    failure only: a NameNode with simple authentication reads the closed write side as a client
    that left, and says nothing.
    """
    if not host or not port:
        return None
    answer = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(SIMPLE_AUTH_HEADER)
            connection.shutdown(socket.SHUT_WR)
            while chunk := connection.recv(4096):
                answer += chunk
    except OSError:
        pass
    # The message up to its list of mechanisms' "]" (protobuf bytes follow it).
    refused = SIMPLE_AUTH_REFUSED.search(answer)
    return " ".join(refused.group().decode().split()) if refused else None


def wants_kerberos(where: str, refusal: str, when: str = "") -> PermissionError:
    """The one line for a Kerberized cluster met by a simple-auth client (``where`` redacted)."""
    return refusal_error(
        f"the HDFS cluster {where} wants Kerberos ({refusal}) and this client uses simple "
        "authentication: set hadoop.security.authentication=kerberos in HADOOP_CONF_DIR's "
        f"core-site.xml and MLFLOW_KERBEROS_TICKET_CACHE to a ticket cache from kinit{when}"
    )
