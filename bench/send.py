"""Benchmark of the SMS send job against the Twilio emulator (a separate process).

Run: ``make bench`` or ``.venv/bin/python bench/send.py [--database postgres|sqlite]``.

It starts everything it needs and removes it afterwards: a throwaway PostgreSQL
cluster (``devstack.postgres_cluster``; ``--database sqlite`` uses a temp file
instead, which serialises writers), a throwaway Redis (status events), the
emulator (``manage.py twilio_emulator``, callbacks off, fast drain so Twilio's
queue limit never interferes) and worker processes running the real batch code
(recover, claim, dispatch, write).

Measured:

* messages/s for one worker and for 4 worker processes, at 0 ms and 200 ms
  emulator latency (``TWILIO_SMS_BATCH_SIZE`` 100, ``TWILIO_SMS_CONCURRENCY`` 8);
* SQL queries per batch for several batch sizes (they must not grow);
* throughput at 200 ms latency for concurrency 1, 4, 8, 16 (it should scale).

Workers are started first and wait for a "go" line, so Python/Django start-up
is not part of the timings. Target: one worker sends 1,000 SMS in under 5 s at
0 ms latency.
"""

import argparse
import json
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.common import (  # noqa: E402
    bench_environment,
    migrate_and_start_emulator,
    start_database_and_redis,
)

# --- worker mode (a child process) ---------------------------------------------


def worker_main() -> None:
    """Wait for "go" on stdin, drain the due SMS, print timings as JSON."""
    import django

    django.setup()
    from django.db import connection

    from notification.sending.batch import run_batch

    connection.ensure_connection()
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.time()
    sent = batches = 0
    while True:
        report = run_batch()
        if not report.claimed:
            break
        sent += report.sent
        batches += 1
    print(json.dumps({"start": start, "end": time.time(), "sent": sent, "batches": batches}))


# --- orchestration (the parent) ------------------------------------------------


def fresh_due_sms(count: int) -> None:
    """Replace every notification with ``count`` due SMS (the tests' bulk helper)."""
    from notification.models import Notification
    from tests.sending_helpers import create_due_sms

    Notification.objects.all().delete()
    create_due_sms(count)


def run_workers(env: dict[str, str], workers: int, extra_env: dict[str, str]) -> tuple[int, float]:
    """Start ``workers`` processes, release them together; return (sent, seconds)."""
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker"],
            cwd=REPO_ROOT,
            env={**env, **extra_env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(workers)
    ]
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("a worker failed to start")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"a worker failed ({proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    sent = sum(r["sent"] for r in results)
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    return sent, seconds


def queries_per_batch(batch_size: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notification.sending.batch import run_batch

    fresh_due_sms(batch_size)
    with CaptureQueriesContext(connection) as captured:
        report = run_batch(batch_segments=batch_size)
    assert report.sent == batch_size, report
    return len(captured.captured_queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--messages", type=int, default=1000, help="SMS per run at 0 ms")
    parser.add_argument("--slow-messages", type=int, default=400, help="SMS per run at 200 ms")
    args = parser.parse_args()

    with ExitStack() as stack:
        database_url, redis_url = start_database_and_redis(stack, args.database)
        env = {
            **bench_environment(database_url, redis_url),
            "TWILIO_SMS_BATCH_SIZE": "100",
            "TWILIO_SMS_CONCURRENCY": "8",
        }
        emulator = migrate_and_start_emulator(stack, env, drain_rate=1_000_000)

        import django

        django.setup()
        from django.conf import settings

        settings.DEBUG = True  # let CaptureQueriesContext see queries in this process

        print(f"database: {args.database}; emulator: {emulator.base_url} (separate process)")
        print("\nThroughput (batch 100 segments, concurrency 8)")
        print(f"{'latency':>8} {'workers':>8} {'messages':>9} {'seconds':>8} {'msg/s':>8}")
        for latency_ms, count in ((0, args.messages), (200, args.slow_messages)):
            emulator.configure(latency_ms=latency_ms)
            for workers in (1, 4):
                fresh_due_sms(count)
                sent, seconds = run_workers(env, workers, {})
                assert sent == count, (sent, count)
                rate = sent / seconds
                print(f"{latency_ms:>6}ms {workers:>8} {sent:>9} {seconds:>8.2f} {rate:>8.1f}")

        print("\nSQL queries per batch (0 ms latency)")
        emulator.configure(latency_ms=0)
        print(f"{'batch size':>10} {'queries':>8}")
        for size in (10, 100, 500):
            print(f"{size:>10} {queries_per_batch(size):>8}")

        print("\nConcurrency scaling (200 ms latency, one worker)")
        emulator.configure(latency_ms=200)
        print(f"{'concurrency':>11} {'messages':>9} {'seconds':>8} {'msg/s':>8}")
        for concurrency in (1, 4, 8, 16):
            count = 20 * concurrency
            fresh_due_sms(count)
            sent, seconds = run_workers(env, 1, {"TWILIO_SMS_CONCURRENCY": str(concurrency)})
            print(f"{concurrency:>11} {sent:>9} {seconds:>8.2f} {sent / seconds:>8.1f}")


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker_main()
    else:
        main()
