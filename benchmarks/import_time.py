"""Cold import time of the pieces another project takes without Lightning.

What is measured:
    For each module (``gan_modules.nets``, ``gan_modules.losses``, ``gan_modules.regularizers``,
    ``callbacks.metrics``, and ``torch`` alone as the floor none of them can go below), the wall-clock
    time of ``import <module>`` in a fresh Python interpreter (cold: nothing imported before it but
    the interpreter's own start-up), taken with ``time.perf_counter`` around the import statement
    inside that interpreter, so the interpreter's start-up is excluded. Each interpreter also reports
    whether ``lightning`` or ``jsonargparse`` ended up in ``sys.modules``.

How it is reported:
    The median, min and max over ``--repeats`` interpreters per module, interleaved (round-robin over
    the modules) so a varying background load is shared. The operating system's file cache is not
    flushed: "cold" means a fresh process, not a fresh disk.

Usage::

    python benchmarks/import_time.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("torch", "gan_modules.nets", "gan_modules.losses", "gan_modules.regularizers", "callbacks.metrics")
_PROBE = (
    "import sys, time, json\n"
    "start = time.perf_counter()\n"
    "import {module}\n"
    "elapsed = time.perf_counter() - start\n"
    "heavy = sorted(m for m in ('lightning', 'jsonargparse') if m in sys.modules)\n"
    "print(json.dumps({{'seconds': elapsed, 'imported': heavy}}))\n"
)


def cold_import(module: str) -> dict:
    """Imports ``module`` in a fresh interpreter; returns ``{"seconds": float, "imported": [heavy modules]}``."""
    out = subprocess.run([sys.executable, "-c", _PROBE.format(module=module)], cwd=ROOT, capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh interpreters per module")
    parser.add_argument("--modules", nargs="+", default=list(MODULES), help="modules to import")
    args = parser.parse_args()
    times: dict[str, list[float]] = {m: [] for m in args.modules}
    heavy: dict[str, set[str]] = {m: set() for m in args.modules}
    for _ in range(args.repeats):
        for module in args.modules:
            result = cold_import(module)
            times[module].append(result["seconds"])
            heavy[module].update(result["imported"])
    print("| module | median s | min s | max s | imports lightning / jsonargparse |\n| --- | --- | --- | --- | --- |")
    for module in args.modules:
        values = times[module]
        print(f"| `{module}` | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} | "
              f"{', '.join(sorted(heavy[module])) or 'no'} |")


if __name__ == "__main__":
    main()
