"""Benchmark of paced sending in scaled time: a campaign at the carrier's rate, HIGH on top.

Run: ``make bench-pacing`` or ``.venv/bin/python bench/pacing.py`` (about 2 minutes).

It starts everything it needs and removes it afterwards: a throwaway PostgreSQL
cluster, a throwaway Redis, the emulator as a separate process draining each
sender at 50 segments/s (``--rate``; callbacks off, the estimate runs on its own, or
``--callbacks on``: each message's callbacks go to a uvicorn serving the webhook, as
Twilio's would), and real
``sms_worker`` and ``sms_scheduler --interval 1`` processes with
``TWILIO_SMS_INTERVAL=10`` and ``TWILIO_SMS_QUEUE_TARGET=2``.

Scenario: 3,000 one-segment NORMAL notifications created at once, plus a HIGH
one every 5 s while the campaign runs (created through the ORM, as a Django
project does; a due HIGH row wakes sending the same way whichever path made it).

Printed: campaign time over the physical limit (segments / rate), start-up,
HIGH handover (created → request at the emulator) and HIGH wait in the emulator's
queue (p50/p99/max), 21611/30001 answers and duplicates; then the same campaign
with the previous design (one batch per interval, computed) and what the
defaults mean at 1 segment/s.
"""

import argparse
import collections
import math
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.common import bench_environment, migrate_and_start_emulator  # noqa: E402

RATE, INTERVAL, TARGET_SECONDS, BATCH = 50, 10, 2, 100


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def spread(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values):.2f} s, p99 {percentile(values, 0.99):.2f} s, "
        f"max {max(values):.2f} s (n={len(values)})"
    )


def duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def previous_design_seconds(segments: int, rate: float, interval: float, batch: int) -> float:
    """One batch of ``batch`` segments per scheduled run: the last batch's start plus its drain."""
    runs = math.ceil(segments / batch)
    return (runs - 1) * interval + min(batch, segments) / rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rate", type=int, default=RATE, help="segments/s the emulator drains")
    parser.add_argument(
        "--callbacks",
        choices=["off", "on"],
        default="off",
        help='on: the emulator sends each message\'s status callbacks ("sent" when it '
        "leaves the queue) to a uvicorn serving the webhook, so the estimate sees them",
    )
    args = parser.parse_args()
    rate = args.rate

    with ExitStack() as stack:
        from devstack.postgres_cluster import PostgresCluster
        from devstack.redis_server import RedisServer

        database_url = stack.enter_context(PostgresCluster()).url
        redis_url = stack.enter_context(RedisServer()).url
        env = {
            **bench_environment(database_url, redis_url),
            "TWILIO_SMS_RATE": str(rate),
            "TWILIO_SMS_INTERVAL": str(INTERVAL),
            "TWILIO_SMS_QUEUE_TARGET": str(TARGET_SECONDS),
            "TWILIO_SMS_BATCH_SIZE": str(BATCH),
        }
        emulator = migrate_and_start_emulator(
            stack, env, drain_rate=rate, callbacks=args.callbacks == "on"
        )
        if args.callbacks == "on":
            from bench.status import start_uvicorn
            from devstack.subprocesses import stop_process

            server, env["PUBLIC_BASE_URL"] = start_uvicorn(env)
            stack.callback(stop_process, server)

        import django

        django.setup()
        from notification.models import (
            Notification,
            NotificationPriorityChoices,
            NotificationStatusChoices,
        )
        from tests.support.pacing_support import sending_stack
        from tests.support.sending_helpers import create_due_sms, make_sms
        from tests.support.waiting import wait_until

        def settled() -> bool:
            return not Notification.objects.filter(
                status__in=[NotificationStatusChoices.PENDING, NotificationStatusChoices.PROCESSING]
            ).exists()

        print(
            f"emulator {rate} segments/s (separate process), callbacks {args.callbacks}, "
            f"TWILIO_SMS_INTERVAL={INTERVAL}, "
            f"TWILIO_SMS_QUEUE_TARGET={TARGET_SECONDS}, TWILIO_SMS_BATCH_SIZE={BATCH}; "
            "sms_worker + sms_scheduler --interval 1"
        )
        highs: dict[str, float] = {}
        with sending_stack(env):
            time.sleep(2)  # the first scheduled run (empty) is over: start from idle
            started = time.time()
            create_due_sms(args.messages)
            next_high = started + 5
            while not settled():
                if time.time() >= next_high:
                    body = f"HIGH {len(highs)}"
                    make_sms(body=body, priority=NotificationPriorityChoices.HIGH)
                    highs[body] = time.time()
                    next_high += 5
                time.sleep(0.05)
            wait_until(settled, 60, "the last HIGH one")

        messages = emulator.messages()
        requests = emulator.requests()
        campaign = [m for m in messages if m["body"].startswith("message ")]
        by_body = {m["body"]: m for m in messages}
        physical = args.messages / rate
        finished = max(m["leaves_queue_at"] for m in campaign) - started
        startup = min(m["queued_at"] for m in campaign) - started
        received = {r["body"]: r["received_ts"] for r in requests if r["body"] in highs}
        handover = [received[body] - created for body, created in highs.items()]
        queue_wait = [
            by_body[body]["leaves_queue_at"] - by_body[body]["queued_at"] for body in highs
        ]
        refused = [r for r in requests if r["error_code"] in (21611, 30001)]
        duplicates = sum(n - 1 for n in collections.Counter(r["body"] for r in requests).values())

        print(f"\nPaced campaign of {args.messages} segments")
        print(f"  campaign time (creation → last message leaves the queue): {finished:.1f} s")
        print(f"  physical limit (segments / rate): {physical:.1f} s")
        print(f"  ratio: {finished / physical:.2f} (start-up {startup:.1f} s)")
        print(f"  ratio without start-up: {(finished - startup) / physical:.2f}")
        print(f"  HIGH handover (created → request at the emulator): {spread(handover)}")
        print(f"  HIGH wait in the emulator's queue: {spread(queue_wait)}")
        print(f"  21611/30001 answers: {len(refused)}; duplicates: {duplicates}")

        deepest = max(m["leaves_queue_at"] - m["queued_at"] for m in campaign)
        print(
            f"  deepest queue a campaign message joined: {deepest:.2f} s "
            f"(target {TARGET_SECONDS} s; ratio {deepest / TARGET_SECONDS:.2f})"
        )
        if args.callbacks == "on":
            delivered = Notification.objects.filter(
                status=NotificationStatusChoices.DELIVERED
            ).count()
            print(f"  callbacks applied: {delivered} notifications delivered")
        previous = previous_design_seconds(args.messages, rate, INTERVAL, BATCH)
        print("\nPrevious design (one batch per interval), same campaign, computed")
        print(f"  campaign time: {previous:.0f} s ({previous / physical:.1f} x the physical limit)")

        print("\nDefaults (1 segment/s, interval 300 s, batch 100, target 15 s), computed")
        for recipients in (1000, 10_000):
            paced = recipients / 1.0
            old = previous_design_seconds(recipients, 1.0, 300, 100)
            print(
                f"  {recipients:>6} recipients: paced {duration(paced)} (+ up to 5 min until "
                f"the first run), previous design {duration(old)}"
            )


if __name__ == "__main__":
    main()
