"""Benchmark of a reconciliation pass against the Twilio emulator (a separate process).

Run: ``make bench-reconcile`` or ``.venv/bin/python bench/reconcile.py [--rows N]``.

A throwaway PostgreSQL and Redis, the emulator as its own process (callbacks off,
so every status is left for reconciliation to find). ``--rows`` SMS are sent by
the real batch code; Twilio delivers them. Then, timed, at 0 ms and 200 ms of
emulator latency:

* **fetch pass**: the rows are ``sent`` without a final status, so the pass
  fetches each one and applies ``delivered``;
* **list pass**: the same rows made ``unknown`` without a sid (their answers
  "lost"), so the pass lists Twilio's messages to each number and adopts the match.

Beside each figure, its floor measured in the same run: the same number of bare
SDK calls (``messages(sid).fetch()``, ``messages.list(...)``) with no database,
so the pass's own cost is the difference. A pass makes its calls one after the
other; the interval (900 s) and ``MAX_ROWS`` (500 per kind) bound what one pass does.
"""

import argparse
import sys
import time
from contextlib import ExitStack
from datetime import timedelta
from functools import partial
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.common import bench_environment, migrate_and_start_emulator  # noqa: E402


def send_all(count: int) -> None:
    from notification.models import Notification
    from notification.send.batch import run_batch
    from tests.support.sending_helpers import create_due_sms

    Notification.objects.all().delete()
    create_due_sms(count)
    while run_batch().claimed:
        pass


def lose_answers() -> None:
    """Every row becomes what a lost create answer leaves: unknown, no sid."""
    from notification.models import Notification, NotificationStatusChoices, SmsNotification

    SmsNotification.objects.update(twilio_sid=None, delivery_status="")
    Notification.objects.update(status=NotificationStatusChoices.UNKNOWN)


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bare_fetches(sids: list[str]) -> None:
    from notification.backends.twilio import get_twilio_client

    client = get_twilio_client()
    for sid in sids:
        client.messages(sid).fetch()


def bare_lists(numbers: list[str], since) -> None:
    from notification.backends.twilio import get_twilio_client

    client = get_twilio_client()
    for number in numbers:
        client.messages.list(to=number, from_="+15005550006", date_sent_after=since)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200)
    args = parser.parse_args()

    with ExitStack() as stack:
        from devstack.postgres_cluster import PostgresCluster
        from devstack.redis_server import RedisServer

        database_url = stack.enter_context(PostgresCluster()).url
        redis_url = stack.enter_context(RedisServer()).url
        env = bench_environment(database_url, redis_url)
        emulator = migrate_and_start_emulator(stack, env, drain_rate=1_000_000)

        import django

        django.setup()
        from django.utils import timezone

        from notification.models import SmsNotification

        print(f"PostgreSQL; emulator {emulator.base_url} (separate process); {args.rows} rows")
        print(
            f"{'latency':>8} {'pass':>6} {'seconds':>8} {'rows/s':>7} {'floor s':>8} {'result':>24}"
        )
        for latency_ms in (0, 200):
            emulator.reset()  # Twilio forgets the previous round's messages
            send_all(args.rows)
            rows = list(SmsNotification.objects.values_list("twilio_sid", "to_phone_number"))
            since = timezone.now() - timedelta(minutes=10)
            emulator.configure(latency_ms=latency_ms)

            # Past SMS_RECONCILE_AFTER, within the look-back of rows handed over.
            floor = timed(partial(bare_fetches, [sid for sid, _ in rows]))
            seconds, report = timed_pass(timezone.now() + timedelta(hours=1))
            show(latency_ms, "fetch", seconds, args.rows, floor, f"updated={report.updated}")

            lose_answers()
            floor = timed(partial(bare_lists, [to for _, to in rows], since))
            # Later again: the fetch pass stamped its changes with its own "now".
            seconds, report = timed_pass(timezone.now() + timedelta(hours=2))
            result = f"adopted={report.adopted} resent={report.resent}"
            show(latency_ms, "list", seconds, args.rows, floor, result)


def timed_pass(now):
    from notification.reconciliation.passes import reconcile

    start = time.perf_counter()
    report = reconcile(now=now)
    return time.perf_counter() - start, report


def show(latency_ms: int, kind: str, seconds: float, rows: int, floor: float, result: str) -> None:
    print(
        f"{latency_ms:>6}ms {kind:>6} {seconds:>8.2f} {rows / seconds:>7.1f} {floor:>8.2f} "
        f"{result:>24}"
    )


if __name__ == "__main__":
    main()
