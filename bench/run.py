"""Run every benchmark module (bench/bench_*.py, each with a `main() -> int`) in turn.

Usage: python -m bench.run [NAME ...]   (NAME: a module suffix, e.g. `validation`)
Figures are ratios against a baseline run in the same command, so they mean something on any
machine; absolute numbers are printed beside them for context.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    wanted = set(argv if argv is not None else sys.argv[1:])
    modules = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    chosen = [m for m in modules if not wanted or m.removeprefix("bench_") in wanted]
    if not chosen:
        print(
            f"no benchmark matches {sorted(wanted)}; available: {[m.removeprefix('bench_') for m in modules]}"
        )
        return 2
    failures = 0
    for name in chosen:
        print(f"\n=== {name.removeprefix('bench_')} ===", flush=True)
        started = time.perf_counter()
        code = importlib.import_module(f"bench.{name}").main()
        print(
            f"--- {name} finished in {time.perf_counter() - started:.0f} s (exit {code})",
            flush=True,
        )
        failures += code != 0
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
