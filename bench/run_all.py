"""Run every benchmark in bench/ (each writes its own JSON to bench/results/).

.venv/bin/python -m bench.run_all            # all of them, default sizes
.venv/bin/python -m bench.run_all integrity  # only those whose name contains "integrity"
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    wanted = sys.argv[1:]
    scripts = sorted(p for p in HERE.glob("*_bench.py"))
    failures = 0
    for script in scripts:
        if wanted and not any(w in script.stem for w in wanted):
            continue
        print(f"== {script.stem}", flush=True)
        failures += subprocess.call([sys.executable, str(script)], cwd=HERE.parent) != 0
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
