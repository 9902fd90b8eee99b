"""Run every benchmark, print one ratio table: ``.venv/bin/python benchmarks/run.py [--quick] [suites]``.

Each benchmark stores its peers' medians and ``ratio_vs_<peer>`` (ours / theirs; below 1 is faster) in
pytest-benchmark's ``extra_info``; this script runs the suites once (``--benchmark-json``) and prints
those ratios beside issue #13's targets. ``--quick`` sets ``AF_BENCH_SCALE=quick`` (``sizes.py``).
Extra pytest arguments follow ``--`` (``-- -k parquet``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SUITES = ["test_store_local.py", "test_s3.py", "test_server.py", "test_integrity.py"]
TARGETS: dict[tuple[str, str], float] = {
    ("s3-small-upload", "ratio_vs_best"): 0.8,
    ("s3-small-download", "ratio_vs_best"): 0.8,
    ("s3-large-upload", "ratio_vs_boto3_tuned"): 1.0,
    ("s3-large-download", "ratio_vs_boto3_tuned"): 1.0,
    ("s3-list-10000", "ratio_vs_boto3_paginator"): 1.0,
    ("s3-list-2000", "ratio_vs_boto3_paginator"): 1.0,
    ("served-s3-small-upload", "ratio_vs_best"): 1.3,
    ("served-s3-small-download", "ratio_vs_best"): 1.3,
    ("served-s3-large-upload", "ratio_vs_boto3_tuned"): 1.2,
    ("served-s3-large-download", "ratio_vs_boto3_tuned"): 1.2,
    ("proxied-s3-large-download", "ratio_vs_boto3_tuned"): 1.2,
    ("s3-large-upload-digests", "ratio_digests_on_vs_off"): 1.10,
    ("s3-large-download-digests", "ratio_digests_on_vs_off"): 1.10,
    ("served-s3-list-10000", "ratio_vs_boto3_paginator"): 1.0,
    ("served-s3-list-2000", "ratio_vs_boto3_paginator"): 1.0,
    ("s3-parquet-one-column", "bytes_vs_column"): 1.2,
    ("s3-parquet-one-column", "ratio_vs_pyarrow_s3"): 1.0,
    ("local-small-upload", "ratio_vs_mlflow"): 1.0,
    ("local-small-download", "ratio_vs_mlflow"): 1.0,
    ("client-small-upload", "ratio_vs_mlflow_proxied"): 0.3,
    ("client-small-download", "ratio_vs_mlflow_proxied"): 0.3,
}
"""Issue #13's "what it must show", as (scenario, ratio) -> the largest acceptable value."""


def rows(report: dict[str, Any]) -> list[tuple[str, str, float, float | None]]:
    """``(scenario, ratio name, value, target)`` for every ratio every benchmark reported."""
    table = []
    for bench in report.get("benchmarks", []):
        info = bench.get("extra_info", {})
        scenario = str(info.get("scenario") or bench["name"])
        for key, value in sorted(info.items()):
            if key.startswith(("ratio_", "bytes_vs_")):
                table.append((scenario, key, float(value), TARGETS.get((scenario, key))))
    return table


def format_table(report: dict[str, Any]) -> str:
    """A Markdown table of every ratio, with the target and whether it is met."""
    lines = ["| scenario | ratio | value | target | met |", "|---|---|---:|---:|---|"]
    for scenario, key, value, target in rows(report):
        shown = "" if target is None else f"<= {target:g}"
        met = "" if target is None else ("yes" if value <= target else "**no**")
        lines.append(f"| {scenario} | {key} | {value:.2f} | {shown} | {met} |")
    machine = report.get("machine_info", {})
    lines.append("")
    lines.append(
        f"machine: {machine.get('cpu', {}).get('brand_raw', '?')}, {os.cpu_count()} cores, "
        f"Python {machine.get('python_version', '?')}; scale {os.environ.get('AF_BENCH_SCALE', 'full')}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes and rounds (sizes.py)")
    parser.add_argument("--json", type=Path, help="keep pytest-benchmark's JSON here")
    parser.add_argument("suites", nargs="*", default=SUITES, help="benchmark files (default: all)")
    argv = sys.argv[1:] if argv is None else argv
    # Everything after ``--`` is pytest's (argparse would take ``-k expr`` as two more suites).
    cut = argv.index("--") if "--" in argv else len(argv)
    args, extra = parser.parse_known_args(argv[:cut])
    extra += argv[cut + 1 :]
    if args.quick:
        os.environ["AF_BENCH_SCALE"] = "quick"
    output = args.json or Path(tempfile.mkdtemp()) / "benchmarks.json"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--benchmark-only",
        f"--benchmark-json={output}",
        f"--rootdir={HERE.parent}",
        *(str(HERE / suite) for suite in args.suites),
        *extra,
    ]
    completed = subprocess.run(command, cwd=HERE.parent, check=False)
    if output.exists():
        print(format_table(json.loads(output.read_text())))
    return completed.returncode


if __name__ == "__main__":
    raise SystemExit(main())
