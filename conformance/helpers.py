"""Small helpers shared by the conformance test families."""

from __future__ import annotations

import pickle
import random
import subprocess
import sys
import textwrap
from typing import Any


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Reproducible incompressible data."""
    return random.Random(seed).randbytes(size)


def run_python(code: str, timeout: float = 120.0, **values: Any) -> None:
    """Run ``code`` in a fresh interpreter with ``values`` (pickled) bound as globals; fail with its
    output unless it exits 0.

    Fork and kill scenarios run there rather than in pytest's own process: a fork of a process with
    many threads (every backend's servers and clients) can deadlock on any lock held at fork time,
    which would test the test process instead of the backend.
    """
    prelude = "import os, pickle, sys\nglobals().update(pickle.loads(sys.stdin.buffer.read()))\n"
    result = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        input=pickle.dumps(values),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout.decode(errors='replace')[-3000:]}\n"
        f"stderr:\n{result.stderr.decode(errors='replace')[-3000:]}"
    )


FORK_AND_CHECK = """
def run_in_fork(child):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_end)
            os.write(write_end, b"ok" if child() else b"the child's check failed")
            code = 0
        except BaseException as exc:
            os.write(write_end, repr(exc).encode()[:1000])
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read()
    os.waitpid(pid, 0)
    if message != b"ok":
        sys.exit("forked child: " + message.decode(errors="replace"))
"""
"""Source of ``run_in_fork(child)`` for :func:`run_python` scripts: the child ends with ``os._exit``."""
