"""A real Kerberos KDC for the tests: MIT Kerberos's ``krb5kdc`` (Debian's krb5-kdc) on 127.0.0.1.

``scripts/install/06-kerberos.sh`` installs krb5-kdc, krb5-admin-server (``kadmin.local``) and
krb5-user (``kinit``). The fixture writes its own ``krb5.conf`` / ``kdc.conf`` into a temporary
directory (``KRB5_CONFIG`` / ``KRB5_KDC_PROFILE``; /etc/krb5.conf is never read or changed), creates
the realm's database with ``kdb5_util``, starts ``krb5kdc -n`` on a free TCP port below 32768, and
makes principals with random keys and their keytabs with ``kadmin.local``. Tickets come from
``kinit -k -t <keytab>`` into file ticket caches. Clients talk TCP only (``udp_preference_limit =
1``). The clock skew stays Kerberos's default (5 minutes): it bounds how old an authenticator may be
when the NameNode checks it, and a loaded test machine can take more than a second between a client
making one and the NameNode reading it. A shorter skew made MLflow's libhdfs client (a new Kerberos
login for every call) fail now and then, and pyarrow reports that failure as "not found", so MLflow
saw an empty tree. Expired tickets need no short skew: artifact_fs refuses them from the cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conformance.servers.launcher import ServerProcess, ServerStartError, tcp_open

REALM = "ARTIFACTFS.TEST"
TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit")


def tool(name: str) -> str:
    """The path of an MIT Kerberos tool (``/usr/sbin`` is often not on a user's PATH)."""
    found = shutil.which(name) or next(
        (str(Path(d) / name) for d in ("/usr/sbin", "/usr/bin") if (Path(d) / name).is_file()), None
    )
    if found is None:
        raise ServerStartError(
            f"{name} is missing: the Kerberos tests need MIT Kerberos (krb5-kdc, krb5-admin-server, "
            "krb5-user); run scripts/install/06-kerberos.sh as root"
        )
    return found


@dataclass
class Kdc:
    """A running KDC and the files a client needs to use it."""

    server: ServerProcess
    directory: Path
    realm: str = REALM

    @property
    def krb5_conf(self) -> Path:
        return self.directory / "krb5.conf"

    @property
    def environ(self) -> dict[str, str]:
        """What every Kerberos tool and library of the test run reads (never /etc/krb5.conf)."""
        return {"KRB5_CONFIG": str(self.krb5_conf), "KRB5_KDC_PROFILE": str(self.directory / "kdc.conf")}

    def run(self, *argv: str, timeout: float = 30.0) -> str:
        result = subprocess.run(
            argv,
            env={**os.environ, **self.environ},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise ServerStartError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def principal(self, name: str) -> str:
        return f"{name}@{self.realm}"

    def add_principals(self, keytab: Path, *names: str) -> Path:
        """Create ``names`` with random keys and write all their keys to ``keytab``."""
        queries = [f"addprinc -randkey {self.principal(n)}" for n in names]
        queries.append(f"ktadd -k {keytab} " + " ".join(self.principal(n) for n in names))
        for query in queries:
            self.run(tool("kadmin.local"), "-r", self.realm, "-q", query)
        return keytab

    def kinit(self, name: str, keytab: Path, cache: Path, lifetime: str | None = None) -> Path:
        """A file ticket cache holding ``name``'s TGT (``lifetime`` as kinit's ``-l``, e.g. ``2s``)."""
        argv = [tool("kinit"), "-k", "-t", str(keytab), "-c", f"FILE:{cache}"]
        if lifetime is not None:
            argv += ["-l", lifetime]
        self.run(*argv, self.principal(name))
        return cache

    def stop(self) -> None:
        self.server.stop()


def _write_configuration(directory: Path, port: int, realm: str) -> None:
    (directory / "krb5.conf").write_text(
        f"""[libdefaults]
    default_realm = {realm}
    dns_lookup_realm = false
    dns_lookup_kdc = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
    forwardable = true
    ticket_lifetime = 1h

[realms]
    {realm} = {{
        kdc = 127.0.0.1:{port}
    }}

[domain_realm]
    localhost = {realm}
    127.0.0.1 = {realm}
"""
    )
    (directory / "kdc.conf").write_text(
        f"""[kdcdefaults]
    kdc_ports = {port}
    kdc_tcp_ports = {port}

[realms]
    {realm} = {{
        database_name = {directory / "principal"}
        key_stash_file = {directory / "stash"}
        acl_file = {directory / "kadm5.acl"}
        max_life = 1h
        max_renewable_life = 0
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }}

[logging]
    kdc = STDERR
"""
    )


def start_kdc(log_dir: Path, directory: Path, timeout: float = 30.0) -> Kdc:
    """Create the realm in ``directory`` and start its KDC on a free port of 127.0.0.1."""
    binaries = {name: tool(name) for name in TOOLS}
    directory.mkdir(parents=True, exist_ok=True)
    kdc = Kdc(server=None, directory=directory)  # type: ignore[arg-type]

    def command(ports: dict[str, int]) -> list[str]:
        _write_configuration(directory, ports["port"], REALM)
        for stale in directory.glob("principal*"):
            stale.unlink()
        kdc.run(binaries["kdb5_util"], "-r", REALM, "create", "-s", "-P", os.urandom(12).hex())
        return [binaries["krb5kdc"], "-n", "-r", REALM]

    kdc.server = ServerProcess(
        name="krb5kdc",
        command=command,
        ready=lambda ports: tcp_open(ports["port"]),
        log_dir=log_dir,
        env=kdc.environ,
        timeout=timeout,
    )
    kdc.server.start()
    return kdc
