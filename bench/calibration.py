"""False-alarm and detection rates of the numeric drift methods, written to docs/calibration.md.

    python bench/calibration.py [--jobs J] [--seed S] [--quick] [--output PATH]

Issue 4. Every default numeric setting and the proposed calibrated ones, on standard normal
data (false alarms, and mean shifts of 0.05, 0.1 and 0.5 standard deviations) and lognormal
data (false alarms), at n = 100, 1k, 2k, 10k, 100k and 1M values in both the reference and
the window. The design (fresh samples per repetition, Wilson intervals, sequential stopping,
checks against `detect_drift`) is in calibration_runs.py, the document in calibration_doc.py.

Budget: the full run is meant to finish within 40 minutes on a shared 2-core machine; most of
it goes to the cells near 50% at 1M (2400 repetitions each). --quick (n up to 10k, at most
200 repetitions) is a smoke check that prints the document.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from calibration_doc import format_sizes, render
from calibration_runs import SHIFTS, run_size

SIZES = (100, 1_000, 2_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (100, 1_000, 10_000)


def _machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def _git(*command: str) -> str:
    return subprocess.run(["git", *command], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parent).stdout


def _commit() -> str:
    # Other work may have changed detectors/ without committing: the document says so.
    try:
        commit = _git("rev-parse", "--short", "HEAD").strip()
        changed = _git("status", "--porcelain", "--", "../detectors").splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    if not changed:
        return commit
    paths = ", ".join(line[3:] for line in changed)
    return f"{commit}, with uncommitted changes to {paths}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes (default: 2, or 1 on one core)")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke check: n = {format_sizes(QUICK_SIZES)}, at most 200 "
                             "repetitions, printed unless --output is given")
    parser.add_argument("--max-reps", type=int, default=None,
                        help="repetitions per cell at most (default 2400, quick 200)")
    parser.add_argument("--verify-reps", type=int, default=2,
                        help="first repetitions of each size also checked with detect_drift")
    parser.add_argument("--skip-lognormal", action="store_true")
    parser.add_argument("--output", type=Path, default=None,
                        help="default docs/calibration.md (quick: standard output)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.max_reps is None:
        args.max_reps = 200 if args.quick else 2400
    if args.max_reps < 1:
        parser.error(f"--max-reps must be at least 1, got {args.max_reps}")
    output = args.output or (None if args.quick else
                             Path(__file__).resolve().parent.parent / "docs" / "calibration.md")
    sizes = QUICK_SIZES if args.quick else SIZES
    meta = {"command": "python bench/calibration.py " + " ".join(sys.argv[1:] if argv is None
                                                                  else argv),
            "seed": str(args.seed), "jobs": str(args.jobs), "max_reps": str(args.max_reps),
            "verify_reps": str(args.verify_reps), "machine": _machine(), "commit": _commit(),
            "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "load_start": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    started = time.perf_counter()
    plan = [("normal", n, range(len(SHIFTS))) for n in sizes]
    if not args.skip_lognormal:
        plan += [("lognormal", n, range(1)) for n in sizes]
    pool = ProcessPoolExecutor(max_workers=args.jobs) if args.jobs > 1 else None
    try:
        results = [run_size(distribution, n, list(shifts), seed=args.seed,
                            max_reps=args.max_reps, verify_reps=args.verify_reps,
                            jobs=args.jobs, pool=pool)
                   for distribution, n, shifts in plan]
    finally:
        if pool:
            pool.shutdown()
    meta["minutes"] = f"{(time.perf_counter() - started) / 60:.1f}"
    meta["load_end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    meta["checked"] = str(sum(r.checked for r in results))
    text = render(results, meta)
    if output is None:
        print(text)
    else:
        output.write_text(text)
        print(f"wrote {output} in {meta['minutes']} minutes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
