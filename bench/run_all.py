"""Run every bench/bench_*.py in turn (what `make bench` does) and say which missed its goal.

Each benchmark is its own process, so one's imports and caches never warm another's. A benchmark
exits non-zero when it misses its goal; this script runs the rest anyway and exits non-zero at
the end if any did.

    python bench/run_all.py [NAME_FILTER]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    wanted = argv[0] if argv else ""
    scripts = sorted(path for path in HERE.glob("bench_*.py") if wanted in path.stem)
    if not scripts:
        print(f"no bench/bench_*.py matches {wanted!r}", file=sys.stderr)
        return 2
    failed: list[str] = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        print(f"-- {script.name}: exit {code} after {time.perf_counter() - start:.0f} s\n", flush=True)
        if code != 0:
            failed.append(script.name)
    if failed:
        print(f"missed or failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all {len(scripts)} benchmarks met their goals")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
