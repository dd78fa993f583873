"""What the compliance and cost guardrails cost per send batch: SQL queries and ms.

Run: ``make bench-guardrails`` or ``.venv/bin/python bench/guardrails.py
[--database postgres|sqlite]``. It starts a throwaway PostgreSQL (or a SQLite
file), Redis and the emulator (a separate process, 0 ms latency, fast drain) and
times ``run_batch`` of 100 one-segment messages in this process, in the same run:

* ``off``: every guardrail off (``SMS_ALLOWED_COUNTRIES=*``, ``SMS_QUIET_HOURS=""``,
  no spend limit): the floor; prices are still looked up (cached) and recorded;
* ``defaults``: the allow-list and quiet hours as shipped, transactional messages;
* ``all on``: marketing messages in a zone where it is daytime (each row's quiet
  hours evaluated), daily and monthly spend limits (the spend sum and its lock);
* ``half held``: as ``all on``, with half the messages in a zone where it is night
  (the holds are written: one more pair of UPDATEs) and the claim reading on.

Each figure is the median of ``--batches`` batches, after one warm-up batch.
"""

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.common import bench_environment, migrate_and_start_emulator  # noqa: E402

ZONES = ("Asia/Tokyo", "Europe/Paris", "America/New_York", "America/Los_Angeles")
BATCH = 100


def day_and_night_zones() -> tuple[str, str]:
    from notification.guardrails.quiet_hours import hold_for

    now = datetime.now(UTC)
    day = [z for z in ZONES if hold_for(now, "+14155550100", z) is None]
    night = [z for z in ZONES if hold_for(now, "+14155550100", z) is not None]
    if not day or not night:
        raise RuntimeError("no day/night pair of zones right now; try again in an hour")
    return day[0], night[0]


def fresh_batch(marketing: bool, zones: list[str]) -> None:
    from notification.models import Notification, SmsNotification

    Notification.objects.all().delete()
    publish = datetime.now(UTC) - timedelta(seconds=5)
    notes = Notification.objects.bulk_create(
        Notification(
            title=f"n{i}",
            body=f"message {i}",
            publish_datetime=publish,
            category="marketing" if marketing else "transactional",
        )
        for i in range(BATCH)
    )
    SmsNotification.objects.bulk_create(
        SmsNotification(
            notification=n,
            to_phone_number=f"+1415555{i:04d}",
            segments=1,
            recipient_time_zone=zones[i % len(zones)] if zones else "",
        )
        for i, n in enumerate(notes)
    )


def measure(settings_values: dict, marketing: bool, zones: list[str], batches: int):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, override_settings

    from notification.sending.batch import run_batch

    timings, queries, sent, held = [], [], 0, 0
    with override_settings(**settings_values):
        for index in range(batches + 1):
            fresh_batch(marketing, zones)
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                report = run_batch(batch_segments=BATCH)
                elapsed = (time.perf_counter() - started) * 1000
            if index == 0:
                continue  # warm-up: connections, the price cache
            timings.append(elapsed)
            queries.append(len(captured.captured_queries))
            sent, held = report.sent, report.held
    return statistics.median(timings), statistics.median(queries), sent, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--batches", type=int, default=15)
    args = parser.parse_args()

    with ExitStack() as stack:
        if args.database == "postgres":
            from devstack.postgres_cluster import PostgresCluster

            database_url = stack.enter_context(PostgresCluster()).url
        else:
            directory = stack.enter_context(tempfile.TemporaryDirectory())
            database_url = f"sqlite:///{directory}/bench.sqlite3"
        from devstack.redis_server import RedisServer

        redis_url = stack.enter_context(RedisServer()).url
        env = {**bench_environment(database_url, redis_url), "TWILIO_SMS_CONCURRENCY": "8"}
        emulator = migrate_and_start_emulator(stack, env, drain_rate=1_000_000)

        import django

        django.setup()
        from django.conf import settings

        settings.DEBUG = True  # let CaptureQueriesContext see queries in this process
        day, night = day_and_night_zones()
        off = {"SMS_ALLOWED_COUNTRIES": "*", "SMS_QUIET_HOURS": ""}
        limits = {"SMS_DAILY_SPEND_LIMIT": 1_000_000, "SMS_MONTHLY_SPEND_LIMIT": 1_000_000}
        cases = [
            ("off", off, False, []),
            ("defaults", {}, False, []),
            ("all on", limits, True, [day]),
            ("half held", limits, True, [day, night]),
        ]
        print(f"database: {args.database}; emulator: {emulator.base_url} (separate process)")
        print(f"batch: {BATCH} one-segment messages; median of {args.batches} batches")
        print(f"{'guardrails':>11} {'sent':>5} {'held':>5} {'queries':>8} {'ms':>8} {'vs off':>8}")
        floor = None
        for name, values, marketing, zones in cases:
            ms, queries, sent, held = measure(values, marketing, zones, args.batches)
            floor = floor or ms
            print(f"{name:>11} {sent:>5} {held:>5} {queries:>8.0f} {ms:>8.1f} {ms / floor:>7.2f}x")


if __name__ == "__main__":
    main()
