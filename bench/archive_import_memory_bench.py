"""Resident memory of `vetline archive import` on a multi-GB JSONL file, against the same import
of a small file in the same run (the peer): a streaming import's peak RSS should not grow with
the file. Target (issue 4): under 500 MB for a file of several GB.

    python bench/archive_import_memory_bench.py [--gigabytes 2.0] [--item-kb 4]

Generates the file in a temporary directory, migrates a fresh SQLite database there, loads the
demo organisation (for an account), then runs each import as a child process and takes its peak
resident set size from the kernel (``wait4`` → ``ru_maxrss``). Screening is off, as in the ingest
benchmark. Writes bench/results/archive_import_memory.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLI = "import sys; from vetline.cli import main; main(sys.argv[1:])"
TARGET_MB = 500


def _write_jsonl(path: Path, size_bytes: int, item_kb: int) -> int:
    """Items of about ``item_kb`` KB each (text plus a raw payload), until ``size_bytes``."""
    prefix = path.stem
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    filler = ("Quarterly outlook for the income fund; rates, fees and risks explained. " * 200)[
        : item_kb * 1024 // 2
    ]
    written = count = 0
    with path.open("wb", buffering=4 * 1024 * 1024) as fh:
        while written < size_bytes:
            line = json.dumps(
                {
                    "remote_id": f"{prefix}-{count:010d}",
                    "kind": "post" if count % 4 else "reply",
                    "direction": "outbound" if count % 2 else "inbound",
                    "text": f"{count} {filler}",
                    "author": f"@user{count % 5000}",
                    "participants": [f"@user{count % 5000}", "@harborpoint"],
                    "conversation_id": f"c{count // 20}",
                    "network_timestamp": (base + dt.timedelta(seconds=count)).isoformat(),
                    "raw": {"id": count, "body": filler[: item_kb * 1024 // 3]},
                },
                separators=(",", ":"),
            ).encode()
            fh.write(line + b"\n")
            written += len(line) + 1
            count += 1
    return count


def _run(args: list[str], env: dict[str, str]) -> tuple[int, float, float, str]:
    """(exit code, peak RSS in MB, seconds, stdout) of a child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024, time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--item-kb", type=int, default=4)
    parser.add_argument("--peer-megabytes", type=float, default=20.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vetline-import-bench-") as tmp:
        env = {
            **os.environ,
            "VETLINE_DATA_DIR": tmp,
            "VETLINE_ENV": "test",
            "DJANGO_SETTINGS_MODULE": "vetline.settings",
        }
        for key in ("DATABASE_URL", "REDIS_URL"):
            env.pop(key, None)
        for step in (["migrate", "--verbosity", "0"], ["manage", "load_demo"]):
            code, _, _, _ = _run(step, env)
            if code:
                raise SystemExit(f"setup step {step} failed ({code})")
        account = subprocess.run(
            [
                sys.executable,
                "-c",
                "import django; django.setup(); from vetline.accounts.models import "
                "SocialAccount as A; print(A.objects.order_by('id').first().pk)",
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

        results: dict[str, Any] = {}
        for name, size in (
            ("peer_small_file", int(args.peer_megabytes * 1024**2)),
            ("large_file", int(args.gigabytes * 1024**3)),
        ):
            path = Path(tmp) / f"{name}.jsonl"
            print(f"writing {size / 1024**2:,.0f} MB to {path.name}", flush=True)
            items = _write_jsonl(path, size, args.item_kb)
            print(f"importing {items:,} items", flush=True)
            code, peak_mb, seconds, out = _run(
                ["archive", "import", str(path), "--account", account, "--no-screen", "--quiet"],
                env,
            )
            if code or f"{items:,} items: {items:,} archived" not in out:
                raise SystemExit(f"import of {name} did not archive every item ({code}): {out}")
            results[name] = {
                "file_mb": round(path.stat().st_size / 1024**2, 1),
                "items": items,
                "peak_rss_mb": round(peak_mb, 1),
                "seconds": round(seconds, 1),
                "items_per_s": round(items / seconds),
                "summary": out.strip(),
            }
            print(json.dumps(results[name]), flush=True)
            path.unlink()

    large, small = results["large_file"], results["peer_small_file"]
    report = {
        "benchmark": "archive import resident memory (JSONL, screening off)",
        "database": "sqlite",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        **results,
        "peak_rss_ratio_large_to_small": round(large["peak_rss_mb"] / small["peak_rss_mb"], 3),
        "file_size_ratio_large_to_small": round(large["file_mb"] / small["file_mb"], 1),
        "target_peak_rss_mb": TARGET_MB,
        "target_met": large["peak_rss_mb"] < TARGET_MB,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    out_path = ROOT / "bench" / "results" / "archive_import_memory.json"
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
