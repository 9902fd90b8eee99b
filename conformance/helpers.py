"""Small helpers shared by the conformance test families."""

from __future__ import annotations

import os
import random
import select
import signal
from collections.abc import Callable


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Reproducible incompressible data."""
    return random.Random(seed).randbytes(size)


def run_in_fork(child: Callable[[], bool], timeout: float = 60.0) -> None:
    """Run ``child`` in a forked process that ends with ``os._exit`` (no cleanup, no finalizers,
    like a killed worker); fail with whatever it raised or a false result. A child that does not
    answer within ``timeout`` seconds is killed, never left behind."""
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
        ready, _, _ = select.select([pipe], [], [], timeout)
        if not ready:  # a lock held by another thread at fork time stays locked in the child forever
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"the forked child hung for {timeout:.0f}s (a deadlock after fork)")
        message = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert message == b"ok", message.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0
