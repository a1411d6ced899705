"""``make bench``: start the stack, measure every stage and the raw reference in one run,
print the table and write ``var/bench/latest.json``. See docs/benchmarks.md."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import e2e, raw, stages
from bench.kafka import Progress, produce
from bench.payloads import raw_records
from bench.report import add_ratios, table, write
from bench.stack import Stack
from schemas import topics
from services.common.settings import REPO_ROOT

OUT = REPO_ROOT / "var" / "bench" / "latest.json"
PHASES = ("classifier", "raw", "ingest", "classify", "notify", "e2e")


def _say(text: str) -> None:
    print(f"bench | {time.strftime('%H:%M:%S')} {text}", flush=True)


def classifier_only(seconds: float) -> float:
    from bench.classifier import measure

    return measure(seconds)


async def run(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    results: dict[str, Any] = {}
    tag = uuid.uuid4().hex[:6]
    only = set(args.only or PHASES)

    if "classifier" in only:
        _say(f"classifier alone for {args.classifier_seconds:g}s")
        results["classifier_only_reports_per_s"] = classifier_only(args.classifier_seconds)
    if only == {"classifier"}:
        return results

    _say("starting the stack")
    await stack.start()
    _say(f"stack ready: broker {stack.bootstrap}, ingest :{stack.ingest_port}")

    if "raw" in only:
        _say(f"raw pass-through of {args.raw_count:,} messages")
        results["raw_passthrough_msgs_per_s"] = await raw.passthrough(
            stack.bootstrap, args.raw_count
        )

    # Only phases that wait on consumer groups need it (an unused one fails to stop).
    if only & {"ingest", "classify", "notify"}:
        async with Progress(stack.bootstrap) as progress:
            if "ingest" in only:
                # Ingest with the pipeline running behind it, as in production.
                _say(f"ingest, single reports, {args.clients} clients, {args.stage_seconds:g}s")
                results["ingest_single_reports_per_s"] = await stages.ingest(
                    stack, f"s{tag}", args.stage_seconds, args.clients, batch=0
                )
                _say(f"ingest, batches of {args.batch}, {args.batch_clients} clients")
                results["ingest_batch_reports_per_s"] = await stages.ingest(
                    stack, f"b{tag}", args.stage_seconds, args.batch_clients, batch=args.batch
                )
                _say("waiting for the pipeline to catch up")
                await stages.settle(progress)

            if "classify" in only:
                _say(f"classify stage on {args.stage_count:,} reports")
                count, rate = await stages.stage_rate(
                    progress,
                    stages.CLASSIFY_GROUP,
                    topics.REPORTS_RAW,
                    lambda: produce(
                        stack.bootstrap,
                        topics.REPORTS_RAW,
                        raw_records(f"c{tag}", args.stage_count),
                    ),
                    args.stage_count,
                )
                results["classify_stage_count"] = count
                results["classify_stage_msgs_per_s"] = rate
                await stages.settle(progress)

            if "notify" in only:
                _say(f"notify on {args.alerts:,} alerts")
                results.update(
                    await stages.notify_rate(
                        stack, progress, f"n{tag}", args.alerts, args.notify_within
                    )
                )
                await stages.settle(progress)

    for rate_per_s, suffix in ((100.0, ""), (1000.0, "_at_1000")) if "e2e" in only else ():
        await stages.quiet_sinks(stack)
        _say(f"end to end at {rate_per_s:,.0f} reports/s for {args.e2e_seconds:g}s")
        r = await e2e.measure(stack, f"e{int(rate_per_s)}{tag}", rate_per_s, args.e2e_seconds)
        results[f"e2e_p50_ms{suffix}"] = r.percentile(50)
        results[f"e2e_p95_ms{suffix}"] = r.percentile(95)
        results[f"e2e_p99_ms{suffix}"] = r.percentile(99)
        results[f"e2e_to_answer_p50_ms{suffix}"] = r.percentile(50, "to_answer_ms")
        results[f"e2e_to_answer_p99_ms{suffix}"] = r.percentile(99, "to_answer_ms")
        results[f"e2e_to_alert_p50_ms{suffix}"] = r.percentile(50, "to_alert_ms")
        results[f"e2e_to_alert_p99_ms{suffix}"] = r.percentile(99, "to_alert_ms")
        results[f"e2e_posted{suffix}"] = r.posted
        results[f"e2e_offered_fraction{suffix}"] = r.posted / r.planned
        results[f"e2e_delivered_fraction{suffix}"] = r.delivered / r.posted if r.posted else None

    peaks = stack.peak_rss_mb()
    for name, mb in peaks.items():
        results[f"rss_{name}_mb"] = mb
    results["max_rss_mb"] = max(mb for name, mb in peaks.items() if name != "broker")
    add_ratios(results)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--classifier-seconds", type=float, default=5.0)
    parser.add_argument("--raw-count", type=int, default=30_000)
    parser.add_argument("--stage-seconds", type=float, default=4.0, help="each ingest phase")
    parser.add_argument("--clients", type=int, default=32, help="single-report connections")
    parser.add_argument("--batch", type=int, default=500, help="reports per batch request")
    parser.add_argument("--batch-clients", type=int, default=4)
    parser.add_argument("--stage-count", type=int, default=5_000, help="reports for classify")
    parser.add_argument("--alerts", type=int, default=500, help="alerts for notify")
    parser.add_argument(
        "--notify-within", type=float, default=60.0, help="longest wait for their delivery"
    )
    parser.add_argument("--e2e-seconds", type=float, default=60.0)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=PHASES,
        help="measure these phases only (the table then has only their rows)",
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="tocsin-bench-"))
    stack = Stack(workdir)
    ok = False
    try:
        results = asyncio.run(run(args, stack))
        ok = True
    finally:
        stack.stop()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"bench: logs kept in {workdir}", file=sys.stderr)
    write(results, args.out)
    print()
    print(table(results))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
