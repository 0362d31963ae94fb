"""Resident memory of `vetline import x-archive` on a multi-GB X archive zip, against the same
import of a small archive in the same run (the peer): a streaming importer's peak RSS should not
grow with the file. Target (issue 5): under 500 MB for an archive of several GB.

    python bench/platform_import_memory_bench.py [--gigabytes 2.0] [--parts 3]

Generates the zip in a temporary directory, streaming, in ZIP64 mode with stored (uncompressed)
members so generation is fast: ``data/account.js`` and ``data/tweets.js``,
``data/tweets-part1.js``, … each one ``window.YTD.tweets.partN = [ … ]`` with real-shaped tweet
entries of about 3 KB. Migrates a fresh SQLite database there, loads the demo organisation,
registers an X account, then runs each import as a child process and takes its peak resident
set size from the kernel (``wait4`` → ``ru_maxrss``). Screening is off, as in the other import
benchmarks. Writes bench/results/platform_import_memory.json.
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
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLI = "import sys; from vetline.cli import main; main(sys.argv[1:])"
TARGET_MB = 500


def _tweet(n: int, filler: str, base: int) -> dict[str, Any]:
    created = dt.datetime(2015, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=n)
    return {
        "tweet": {
            "edit_info": {"initial": {"editTweetIds": [str(base + n)], "editable": "false"}},
            "retweeted": False,
            "source": '<a href="https://mobile.twitter.com" rel="nofollow">Twitter Web App</a>',
            "entities": {
                "hashtags": [{"text": "markets", "indices": ["0", "8"]}],
                "symbols": [],
                "user_mentions": [
                    {"name": "Bob", "screen_name": f"bob{n % 1000}", "id_str": str(n % 1000)}
                ],
                "urls": [],
            },
            "display_text_range": ["0", "280"],
            "favorite_count": str(n % 50),
            "in_reply_to_status_id_str": str(base + n - 1) if n % 5 == 0 and n else None,
            "id_str": str(base + n),
            "truncated": False,
            "retweet_count": "0",
            "id": str(base + n),
            "created_at": created.strftime("%a %b %d %H:%M:%S +0000 %Y"),
            "favorited": False,
            "full_text": f"#markets update {n}: {filler}",
            "lang": "en",
        }
    }


def write_archive(path: Path, size_bytes: int, parts: int, base: int) -> int:
    """An X archive zip of about ``size_bytes`` of tweets over ``parts`` files; the count."""
    filler = ("Quarterly outlook for the income fund; rates, fees and risks explained. " * 40)[
        :2400
    ]
    per_part = size_bytes // parts
    count = 0
    account = [{"account": {"accountId": "42", "username": "acme", "accountDisplayName": "A"}}]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        z.writestr("data/account.js", b"window.YTD.account.part0 = " + json.dumps(account).encode())
        for part in range(parts):
            name = "data/tweets.js" if part == 0 else f"data/tweets-part{part}.js"
            with z.open(name, "w", force_zip64=True) as fh:
                fh.write(f"window.YTD.tweets.part{part} = [\n".encode())
                written = 0
                first = True
                while written < per_part:
                    entry = json.dumps(_tweet(count, filler, base), indent=2).encode()
                    chunk = (b"" if first else b",\n") + entry
                    fh.write(chunk)
                    written += len(chunk)
                    first = False
                    count += 1
                fh.write(b"\n]")
    return count


def _run_measured(args: list[str], env: dict[str, str]) -> tuple[int, float, float, str, str]:
    """(exit code, peak RSS in MB, seconds, stdout, stderr tail) of a child process, reaped
    with wait4 so ru_maxrss is the child's own peak."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", CLI, *args], env=env, cwd=ROOT, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return (
            proc.returncode,
            usage.ru_maxrss / 1024,
            seconds,
            out.read().decode(),
            err.read().decode()[-2000:],
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--parts", type=int, default=3)
    parser.add_argument("--peer-megabytes", type=float, default=20.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vetline-platform-import-bench-") as tmp:
        env = {
            **os.environ,
            "VETLINE_DATA_DIR": tmp,
            "VETLINE_ENV": "test",
            "DJANGO_SETTINGS_MODULE": "vetline.settings",
        }
        for key in ("DATABASE_URL", "REDIS_URL"):
            env.pop(key, None)
        for step in (["migrate", "--verbosity", "0"], ["manage", "load_demo"]):
            code, _, _, _, err = _run_measured(step, env)
            if code:
                raise SystemExit(f"setup step {step} failed ({code}): {err}")
        account = subprocess.run(
            [
                sys.executable,
                "-c",
                "import django; django.setup(); from vetline.accounts.models import "
                "SocialAccount as A, AccountKind; from vetline.identity.models import Person; "
                "a, _ = A.objects.get_or_create(network='x', handle='@bench-import', defaults="
                "{'kind': AccountKind.CORPORATE, 'owner': Person.objects.order_by('id').first()});"
                " print(a.pk)",
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

        results: dict[str, Any] = {}
        for name, size, parts, base in (
            ("peer_small_archive", int(args.peer_megabytes * 1024**2), 1, 10**15),
            ("large_archive", int(args.gigabytes * 1024**3), args.parts, 2 * 10**15),
        ):
            path = Path(tmp) / f"{name}.zip"
            print(f"writing {size / 1024**2:,.0f} MB of tweets to {path.name}", flush=True)
            t0 = time.perf_counter()
            tweets = write_archive(path, size, parts, base)
            generated = time.perf_counter() - t0
            print(f"importing {tweets:,} tweets ({generated:.0f}s to generate)", flush=True)
            code, peak_mb, seconds, out, err = _run_measured(
                ["import", "x-archive", str(path), "--account", account, "--no-screen", "--quiet"],
                env,
            )
            if code or f"{tweets:,} entries: {tweets:,} archived" not in out:
                raise SystemExit(
                    f"import of {name} did not archive every tweet ({code}): {out} {err}"
                )
            results[name] = {
                "zip_mb": round(path.stat().st_size / 1024**2, 1),
                "tweet_files": parts,
                "tweets": tweets,
                "peak_rss_mb": round(peak_mb, 1),
                "seconds": round(seconds, 1),
                "tweets_per_s": round(tweets / seconds),
                "summary": out.strip(),
            }
            print(json.dumps(results[name]), flush=True)
            path.unlink()

    large, small = results["large_archive"], results["peer_small_archive"]
    report = {
        "benchmark": "X archive import resident memory (zip, ZIP64, stored; screening off)",
        "database": "sqlite",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        **results,
        "peak_rss_ratio_large_to_small": round(large["peak_rss_mb"] / small["peak_rss_mb"], 3),
        "file_size_ratio_large_to_small": round(large["zip_mb"] / small["zip_mb"], 1),
        "target_peak_rss_mb": TARGET_MB,
        "target_met": large["peak_rss_mb"] < TARGET_MB,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    out_path = ROOT / "bench" / "results" / "platform_import_memory.json"
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
