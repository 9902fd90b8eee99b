"""Small helpers shared by the conformance test families."""

from __future__ import annotations

import os
import random
from collections.abc import Callable


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Reproducible incompressible data."""
    return random.Random(seed).randbytes(size)


def run_in_fork(child: Callable[[], bool]) -> None:
    """Run ``child`` in a forked process that ends with ``os._exit`` (no cleanup, no finalizers,
    like a killed worker); fail with whatever it raised or a false result."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_end)
            os.write(write_end, b"ok" if child() else b"the child's check failed")
            code = 0
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent
            os.write(write_end, repr(exc).encode()[:1000])
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert message == b"ok", message.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0
