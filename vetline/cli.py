"""The ``vetline`` command: one entry point for the things operators and people need.

vetline serve [--bind HOST:PORT] [--workers N]   web server (gunicorn)
vetline worker                                    background jobs (Huey consumer)
vetline stream [--shard I/N]                      continuous capture where networks stream
vetline demo                                      migrate, load the demo org, run both
vetline policy evaluate FILE.jsonl | install-packs | import FILE --as EMAIL | export NAME
vetline archive import FILE --account ID | verify | …
vetline import FORMAT FILE --account ID           a platform's data export (docs/importers.md)
vetline migrate | createadmin | vault | demo-logins | check | manage ARGS…
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from typing import Any


def _django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vetline.settings")
    import django

    django.setup()


def _manage(*argv: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vetline.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["vetline", *argv])


def serve(bind: str, workers: int) -> None:
    """Run gunicorn in this process (production-grade WSGI server, no reload)."""
    _django_setup()
    from django.conf import settings
    from gunicorn.app.base import BaseApplication

    from vetline.wsgi import application

    if settings.PRODUCTION:
        _manage("collectstatic", "--noinput", "-v", "0")

    class _App(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            self.cfg.set("threads", 4)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("accesslog", "-")
            self.cfg.set("timeout", 120)

        def load(self) -> Any:
            return application

    _App().run()


def demo(bind: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "vetline.settings"}
    _manage("migrate", "--noinput", "-v", "0")
    _manage("load_demo")
    worker = subprocess.Popen([sys.executable, "-m", "vetline.cli", "worker"], env=env)
    stream = subprocess.Popen([sys.executable, "-m", "vetline.cli", "stream"], env=env)
    host, _, port = bind.rpartition(":")
    print("\n" + "=" * 72)
    print(f"  Vetline demo is starting at http://{host or '127.0.0.1'}:{port}/")
    print(f"  Background worker: running (pid {worker.pid})")
    print(f"  Streaming capture: running (pid {stream.pid})")
    print("=" * 72)
    _manage("demo_logins")
    print("=" * 72 + "\n  Ctrl-C stops the web server and the worker.\n")

    def _stop(*_: object) -> None:
        worker.terminate()
        stream.terminate()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    try:
        serve(bind, workers=2)
    finally:
        worker.terminate()
        stream.terminate()
        worker.wait(timeout=10)
        stream.wait(timeout=20)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vetline", description="Vetline command line")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the web server")
    p_serve.add_argument("--bind", default=os.environ.get("VETLINE_BIND", "127.0.0.1:8000"))
    p_serve.add_argument(
        "--workers", type=int, default=int(os.environ.get("VETLINE_WEB_WORKERS", "2"))
    )
    sub.add_parser("worker", help="run the background job worker")
    p_stream = sub.add_parser("stream", help="run continuous (streaming) capture")
    p_stream.add_argument("--shard", default="0/1", help="INDEX/COUNT of the accounts to stream")
    p_demo = sub.add_parser("demo", help="set up the demo organisation and run everything")
    p_demo.add_argument("--bind", default=os.environ.get("VETLINE_BIND", "127.0.0.1:8000"))
    sub.add_parser("migrate", help="create or upgrade the database schema")
    p_admin = sub.add_parser("createadmin", help="create the first Administrator")
    p_admin.add_argument("--email", required=True)
    p_admin.add_argument("--name", required=True)
    p_vault = sub.add_parser("vault", help="credentials vault key management")
    p_vault.add_argument("operation", choices=["generate-key", "rotate"])
    sub.add_parser("demo-logins", help="print the demo sign-ins and current TOTP codes")
    p_policy = sub.add_parser(
        "policy", help="policies: evaluate FILE.jsonl | install-packs | import FILE | export NAME"
    )
    p_policy.add_argument("args", nargs=argparse.REMAINDER)
    p_archive = sub.add_parser(
        "archive", help="archive: import FILE --account ID | verify | sign | …"
    )
    p_archive.add_argument("args", nargs=argparse.REMAINDER)
    p_import = sub.add_parser(
        "import",
        help="import a platform data export: FORMAT FILE --account ID "
        "(x-archive, facebook, instagram, linkedin, mastodon, bluesky)",
    )
    p_import.add_argument("args", nargs=argparse.REMAINDER)
    sub.add_parser("check", help="run Django's system checks (add --deploy in production)")
    p_manage = sub.add_parser("manage", help="any Django management command")
    p_manage.add_argument("args", nargs=argparse.REMAINDER)

    args, rest = parser.parse_known_args(argv)
    if args.command == "serve":
        serve(args.bind, args.workers)
    elif args.command == "worker":
        _manage("run_huey", *rest)
    elif args.command == "stream":
        _manage("stream", "--shard", args.shard, *rest)
    elif args.command == "demo":
        demo(args.bind)
    elif args.command == "migrate":
        _manage("migrate", *rest)
    elif args.command == "createadmin":
        _manage("createadmin", "--email", args.email, "--name", args.name)
    elif args.command == "vault":
        _manage("vault", args.operation)
    elif args.command == "demo-logins":
        _manage("demo_logins")
    elif args.command == "archive":
        _manage("archive", *args.args, *rest)
    elif args.command == "import":
        _manage("platform_import", *args.args, *rest)
    elif args.command == "policy":
        _manage("policy", *args.args, *rest)
    elif args.command == "check":
        _manage("check", *rest)
    else:
        _manage(*args.args)


if __name__ == "__main__":
    main()
