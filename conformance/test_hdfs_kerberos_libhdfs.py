"""The HDFS conformance suite through libhdfs (pyarrow, MLflow's client) on the Kerberized cluster.

libhdfs's in-process JVM is a simple-auth or a Kerberos client for its whole life, and this process
already has (or will have) a simple-auth one: the ``hdfs-kerberos-pyarrow`` deployment runs in a
child pytest with a Kerberos client's environment, against this session's cluster and KDC (see
``conformance/backends/hdfs.py``). Its summary is printed; any failure fails this test with the
child's report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conformance.backends.hdfs import KerberizedDeployment, kerberos_child_environ

pytestmark = [pytest.mark.hdfs_kerberos, pytest.mark.timeout(1500)]
REPO = Path(__file__).resolve().parent.parent
PARENT_ONLY = ("conformance/test_hdfs_kerberos_libhdfs.py", "conformance/test_hdfs_kerberos_errors.py")


def test_the_suite_passes_through_libhdfs_on_kerberos(kerberized_hdfs: KerberizedDeployment) -> None:
    environ = kerberos_child_environ(kerberized_hdfs)
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "hdfs_kerberos",
        "conformance",
    ]
    argv += [f"--ignore={path}" for path in PARENT_ONLY]
    child = subprocess.run(
        argv, check=False, cwd=REPO, env=environ, capture_output=True, text=True, timeout=1400
    )
    report = child.stdout.strip().splitlines()
    print("\n".join(report[-15:]))
    assert child.returncode == 0, (
        "child pytest (hdfs-kerberos-pyarrow) failed:\n"
        + "\n".join(report[-80:])
        + ("\n" + child.stderr[-3000:])
    )
    assert " passed" in report[-1] and "skipped" not in report[-1], report[-1]
