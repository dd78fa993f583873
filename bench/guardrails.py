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

Each figure is the median of ``--batches`` batches, after one warm-up round; the
cases take turns (one batch each per round) so the machine's load affects all alike.
"""

import argparse
import statistics
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.common import (  # noqa: E402
    bench_environment,
    migrate_and_start_emulator,
    start_database_and_redis,
)

ZONES = ("Asia/Tokyo", "Europe/Paris", "America/New_York", "America/Los_Angeles")
BATCH = 100


def day_and_night_zones() -> tuple[str, str]:
    from notification.guardrails.places import hold_for

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


def one_batch(settings_values: dict, marketing: bool, zones: list[str]):
    """(ms, queries, report) of one ``run_batch`` of ``BATCH`` fresh due messages."""
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, override_settings

    from notification.send.batch import run_batch

    with override_settings(SMS_NOTIFICATIONS={**settings.SMS_NOTIFICATIONS, **settings_values}):
        fresh_batch(marketing, zones)
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            report = run_batch(batch_segments=BATCH)
            elapsed = (time.perf_counter() - started) * 1000
    return elapsed, len(captured.captured_queries), report


def screening_ms(settings_values: dict, marketing: bool, zones: list[str]) -> float:
    """Best of 20: the guardrails' own work on one claim's 100 rows (screen + spend),
    read from the database once, without the send: what the claim step adds."""
    from django.conf import settings
    from django.db import transaction
    from django.test.utils import override_settings

    from notification.guardrails import costs as spend
    from notification.guardrails import screen
    from notification.send.claim import batch_candidates, recount_segments

    with override_settings(SMS_NOTIFICATIONS={**settings.SMS_NOTIFICATIONS, **settings_values}):
        fresh_batch(marketing, zones)
        now = datetime.now(UTC)
        rows = recount_segments(list(batch_candidates(now)[:BATCH]))
        best = float("inf")
        for _ in range(20):
            with transaction.atomic():
                started = time.perf_counter()
                if spend.limits_on():
                    spend.lock_spend()
                screened = screen.screen(rows, now)
                screen.limit_spend(screened.allowed, now)
                best = min(best, (time.perf_counter() - started) * 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--batches", type=int, default=15)
    args = parser.parse_args()

    with ExitStack() as stack:
        database_url, redis_url = start_database_and_redis(stack, args.database)
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
        # Rounds of one batch per case, so load on the machine drifts over all alike.
        samples: dict[str, list] = {name: [] for name, *_ in cases}
        for round_ in range(args.batches + 1):
            for name, values, marketing, zones in cases:
                sample = one_batch(values, marketing, zones)
                if round_:  # round 0 warms connections and the price cache
                    samples[name].append(sample)
        floor = statistics.median(ms for ms, _, _ in samples["off"])
        for name, *_ in cases:
            ms = statistics.median(m for m, _, _ in samples[name])
            queries = statistics.median(q for _, q, _ in samples[name])
            report = samples[name][-1][2]
            print(
                f"{name:>11} {report.sent:>5} {report.held:>5} {queries:>8.0f} {ms:>8.1f} "
                f"{ms / floor:>7.2f}x"
            )
        print("\nThe guardrails' own work per claim of 100 rows (best of 20, no sending)")
        for name, values, marketing, zones in cases:
            print(f"{name:>11} {screening_ms(values, marketing, zones):>8.2f} ms")


if __name__ == "__main__":
    main()
