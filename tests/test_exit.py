"""At exit, with pyarrow in use, artifact_fs frees unreachable objects before the interpreter shuts
down (``artifact_fs._collect_before_exit``): pyarrow's ``PythonFile`` around an fsspec file left to
the shutdown's own collection could abort the process after the script had finished."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import sys
{imports}

class Cycle:
    def __del__(self):
        print("freed while finalizing:", sys.is_finalizing(), flush=True)

cycle = Cycle()
cycle.me = cycle  # only the cyclic collector frees it
del cycle
"""


@pytest.mark.parametrize(
    ("imports", "expected"),
    [
        ("import artifact_fs\nimport pyarrow", "freed while finalizing: False"),
        ("import artifact_fs.gc\nimport pyarrow", "freed while finalizing: False"),  # its subpackage
        ("import pyarrow", "freed while finalizing: True"),  # the shutdown's collection, without us
    ],
    ids=["artifact_fs-and-pyarrow", "with-artifact_fs.gc-imported", "pyarrow-alone"],
)
def test_garbage_is_freed_before_the_interpreter_shuts_down(imports: str, expected: str) -> None:
    script = SCRIPT.format(imports=imports)
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == expected
    assert completed.stderr == ""  # e.g. no "Exception ignored in atexit callback"
