"""The ``tocsin`` command: run the stack, serve one service, classify JSON Lines."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from services.common.settings import REPO_ROOT, Settings
from services.common.telemetry import setup_logging

GC_THRESHOLDS = (20_000, 20, 20)
"""Collect cycles less often than Python's (700, 10, 10): the services allocate many short-
lived objects per message (parsed models, rows), which reference counting frees, so young
collections found little; at the default the cycle collector took about a fifth of the alert
engine's time (`bench.alerting`-style batches of 20: 26-31 → 22-24 ms)."""


def _serve(name: str) -> None:
    import uvicorn

    gc.set_threshold(*GC_THRESHOLDS)

    settings = Settings()
    setup_logging()
    if name == "ingest":
        from services.ingest.main import create_app as ingest_app

        app, port = ingest_app(settings), settings.ingest_port
    elif name == "classify":
        from services.classify.main import create_app as classify_app

        app, port = classify_app(settings), settings.classify_port  # type: ignore[assignment]
    else:
        from services.notify.main import create_app as notify_app

        app, port = notify_app(settings), settings.notify_port
    uvicorn.run(app, host=settings.host, port=port, log_config=None, access_log=False)


def _classify() -> int:
    """JSON Lines in, one classification per line out, in order; a bad line gets an error line."""
    from services.classify.classifier import Classifier

    classifier = Classifier()
    status = 0
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            text = item["text"]
            if not isinstance(text, str):
                raise TypeError("'text' must be a string")
        except (ValueError, KeyError, TypeError) as exc:
            reason = "missing field 'text'" if isinstance(exc, KeyError) else str(exc)
            print(json.dumps({"line": number, "error": reason}), flush=True)
            status = 1
            continue
        result = classifier.classify(
            text,
            report_id=item.get("id"),
            title=item.get("title"),
            country_hint=item.get("country"),
        )
        sys.stdout.write(result.model_dump_json() + "\n")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tocsin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the embedded stack in the foreground")
    run.add_argument("--broker-port", type=int, default=9092)
    run.add_argument("--no-smtp-sink", action="store_true", help="use an SMTP server of your own")
    serve = sub.add_parser("serve", help="run one service")
    serve.add_argument("service", choices=["ingest", "classify", "notify"])
    sub.add_parser("classify", help="classify JSON Lines from stdin to stdout")
    sink = sub.add_parser("smtp-sink", help="a local SMTP server storing mail as .eml files")
    sink.add_argument("--dir", type=Path, default=REPO_ROOT / "var" / "mail")
    sink.add_argument("--port", type=int, default=1025)
    args = parser.parse_args(argv)

    try:
        if args.command == "run":
            from services.devstack.supervisor import run_stack

            return asyncio.run(run_stack(args.broker_port, smtp_sink=not args.no_smtp_sink))
        if args.command == "serve":
            _serve(args.service)
        elif args.command == "classify":
            return _classify()
        elif args.command == "smtp-sink":
            from services.devstack.smtp_sink import serve as serve_sink

            serve_sink(args.dir, port=args.port)
    except (ValidationError, ValueError) as exc:
        print(f"tocsin: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
