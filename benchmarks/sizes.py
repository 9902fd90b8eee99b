"""The benchmark sizes of issue #13, and a quick scale for small or busy machines.

``AF_BENCH_SCALE=quick`` (what ``benchmarks/run.py --quick`` sets) shrinks every data set and the
number of rounds so the whole suite fits a few minutes on two shared cores; ratios at the quick
scale are noisier and favour per-request overheads, so docs/performance.md says which scale a
table was measured at.
"""

from __future__ import annotations

import os

MIB = 1024 * 1024
QUICK = os.environ.get("AF_BENCH_SCALE", "full") == "quick"

SMALL_FILES = 200 if QUICK else 1000
SMALL_SIZE = 16 * 1024
LARGE_SIZE = (32 if QUICK else 256) * MIB
LISTED_OBJECTS = 2000 if QUICK else 10_000
ROUNDS = 3 if QUICK else 5
WARMUP_ROUNDS = 1
PARQUET_ROWS = 500_000 if QUICK else 3_300_000
"""8 float64 columns, uncompressed: 32 MB at the quick scale, 210 MB (26 MB a column) at full."""
