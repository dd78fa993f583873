"""Benchmark of a ``/metrics`` scrape at 100,000 message rows.

Run: ``make bench-metrics`` or ``.venv/bin/python bench/metrics_scrape.py
[--database postgres|sqlite] [--rows 100000]``.

It starts a throwaway PostgreSQL cluster (or a SQLite file) and Redis, migrates,
creates ``--rows`` notification/SMS pairs in a realistic mix (most delivered,
a due backlog in three priorities, some scheduled for later, failed and
``unknown`` ones), lets the database refresh its statistics (``ANALYZE``, as
autovacuum would), then times, in the same run:

* the floor: ``SELECT 1`` and one ``SELECT count(*)`` over the SMS table;
* each of the collector's grouped queries (the backlog's includes the held rows by
  reason) and the spend aggregate;
* an uncached reading (``collect_state``: the three queries, the last-run GET and
  django-rq's collector) and a whole uncached ``GET /metrics`` (readiness checks
  cached, exposition included);
* a cached ``GET /metrics`` (what scrapes cost within ``METRICS_CACHE_SECONDS``).

Target: an uncached scrape well under 100 ms at 100,000 rows on the 2-core machine.
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.common import bench_environment, start_database_and_redis  # noqa: E402

TOKEN = "bench-metrics-token"


def timed(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, max) milliseconds of ``repeat`` runs after one warm-up."""
    run()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples)


def create_rows(count: int) -> None:
    """``count`` pairs: 70% delivered (priced over the last 40 days), 15% due
    (low/normal/high; one in 15 of them held by quiet hours), 5% later, 7% failed, 3% unknown."""
    from django.utils import timezone

    from notification.models import Notification, SmsNotification

    now = timezone.now()
    chunk = 5000
    for start in range(0, count, chunk):
        notifications, sms = [], []
        for i in range(start, min(start + chunk, count)):
            bucket = i % 100
            if bucket < 70:
                status, delivery, publish, priority = "delivered", "delivered", -3600, 20
            elif bucket < 85:
                status, delivery, publish, priority = "pending", "", -(i % 600), (10, 20, 30)[i % 3]
            elif bucket < 90:
                status, delivery, publish, priority = "pending", "", 86_400, 20
            elif bucket < 97:
                status, delivery, publish, priority = "failed", "undelivered", -7200, 20
            else:
                status, delivery, publish, priority = "unknown", "", -1800, 20
            notifications.append(
                Notification(
                    title=f"n{i}",
                    body=f"message {i}",
                    status=status,
                    priority=priority,
                    publish_datetime=now + timedelta(seconds=publish),
                    status_message="Held: quiet hours (21:00-08:00)" if bucket == 84 else "",
                )
            )
            sms.append((delivery, i))
        created = Notification.objects.bulk_create(notifications)
        SmsNotification.objects.bulk_create(
            SmsNotification(
                notification=n,
                to_phone_number=f"+1415555{i % 10000:04d}",
                delivery_status=delivery,
                twilio_sid=f"SM{i:032x}" if delivery else None,
                segments=1,
                # Priced over the last 40 days: the spend sums read this month's.
                estimated_price=Decimal("0.0079") if delivery else None,
                priced_datetime=now - timedelta(days=i % 40) if delivery else None,
                # 1% of the due backlog held by quiet hours (sms_held_messages).
                next_attempt_datetime=now + timedelta(hours=1) if i % 100 == 84 else None,
            )
            for n, (delivery, i) in zip(created, sms, strict=True)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--explain", action="store_true", help="print each query's plan")
    args = parser.parse_args()

    with ExitStack() as stack:
        database_url, redis_url = start_database_and_redis(stack, args.database)
        import os

        os.environ.update({**bench_environment(database_url, redis_url), "METRICS_TOKEN": TOKEN})
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client
        from django.utils import timezone

        from notification.ops import metrics as collector
        from notification.send.claim import due_sms

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        create_rows(args.rows)
        print(f"database: {args.database}; {args.rows:,} notification/SMS pairs created in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        with connection.cursor() as cursor:
            # What autovacuum does after a bulk insert: statistics and the visibility
            # map (index-only scans depend on it).
            cursor.execute("VACUUM ANALYZE" if args.database == "postgres" else "ANALYZE")

        def sql(text: str) -> Callable[[], object]:
            def run() -> object:
                with connection.cursor() as cursor:
                    cursor.execute(text)
                    return cursor.fetchall()

            return run

        from django.db.models import Count

        now = time.time()

        def old_due_join() -> object:
            # The first design: the send job's due_sms() join, grouped (kept for comparison).
            return list(
                due_sms(timezone.now())
                .order_by()
                .values_list("notification__priority")
                .annotate(n=Count("pk"))
            )

        client = Client(SERVER_NAME="127.0.0.1")

        def scrape() -> object:
            response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
            assert response.status_code == 200, response.status_code
            return response

        def uncached_scrape() -> object:
            collector.clear_cache()
            return scrape()

        count_sql = "SELECT count(*) FROM notification_smsnotification"

        def statuses() -> object:
            return list(collector._notification_statuses(now))

        rows = [
            ("floor: SELECT 1", sql("SELECT 1")),
            ("floor: count(*) of the SMS table", sql(count_sql)),
            ("SMS by delivery status", lambda: list(collector._delivery_statuses())),
            ("notifications by status (+ unknown)", statuses),
            ("due backlog by priority", lambda: list(collector._pending(now))),
            ("  (first design: one due_sms join)", old_due_join),
            ("spend of the day and month", lambda: list(collector._spend())),
            ("collect_state (uncached reading)", collector.collect_state),
            ("GET /metrics, uncached", uncached_scrape),
            ("GET /metrics, cached", scrape),
        ]
        print(f"\n{'what':<40} {'median ms':>10} {'max ms':>8}   ({args.repeat} runs each)")
        for name, run in rows:
            median, worst = timed(run, args.repeat)
            print(f"{name:<40} {median:>10.2f} {worst:>8.2f}")
        if args.explain and args.database == "postgres":
            from django.test.utils import CaptureQueriesContext

            with CaptureQueriesContext(connection) as captured:
                collector.collect_state()
            for query in captured.captured_queries:
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN ANALYZE " + query["sql"])
                    print("\n" + query["sql"][:160])
                    print("\n".join(row[0] for row in cursor.fetchall()))
        size = len(scrape().content)
        print(f"\nexposition size: {size:,} bytes; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
