"""Bulk create: 1,000 validated notifications beside the raw ORM loop, in one run.

    .venv/bin/python bench/bulk_create.py [--items 1000] [--rounds 7]
                                          [--database sqlite|postgres]

Starts its own Redis and a temporary SQLite database (or a throwaway PostgreSQL
cluster) and, in this process, times:

* ``create_sms_notifications`` of ``--items`` requests (every field validated by the
  model's rules, references looked up, two ``bulk_create``s in one transaction), to
  numbers written in E.164 as the API documents, new numbers each round;
* the floor: the raw ORM loop a host project would write without the app's
  validation, ``Notification.objects.create`` + ``SmsNotification.objects.create``
  per item in one transaction (``SmsNotification.save`` counts segments).

The two take turns, each round on an emptied table, so machine noise hits both alike.
Prints the median of each, wall-clock and this process's CPU time, and their ratios
(below 1: the validated bulk create is faster than the loop), with the load average:
on a shared machine absolute figures move with it, the CPU ratio much less.
"""

import argparse
import os
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.status import setup_django, throwaway_services  # noqa: E402

BODY = "Your order 42 has shipped and will arrive on Tuesday."


def requests(count: int, first: int) -> list:
    """``count`` requests to numbers from ``first`` on: each round texts new numbers, so
    no round finds another's in a cache."""
    from notification.create.creation import SmsNotificationRequest

    return [
        SmsNotificationRequest(
            title=f"Order {i}",
            body=BODY,
            to_phone_number=f"+1415555{i % 10000:04d}",
            url="https://example.com/orders/42",
        )
        for i in range(first, first + count)
    ]


def validated(count: int, first: int) -> tuple[float, float]:
    from notification.create.creation import create_sms_notifications

    batch = requests(count, first)
    started = time.perf_counter(), time.process_time()
    create_sms_notifications(batch)
    return time.perf_counter() - started[0], time.process_time() - started[1]


def orm_loop(count: int, first: int) -> tuple[float, float]:
    from django.db import transaction

    from notification.models import Notification, SmsNotification

    started = time.perf_counter(), time.process_time()
    with transaction.atomic():
        for i in range(count):
            notification = Notification.objects.create(
                title=f"Order {i}", body=BODY, url="https://example.com/orders/42"
            )
            SmsNotification.objects.create(
                notification=notification, to_phone_number=f"+1415555{i % 10000:04d}"
            )
    return time.perf_counter() - started[0], time.process_time() - started[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with ExitStack() as stack:
        env = throwaway_services(stack, args.database, "bench-bulk-")
        env["SMS_ALLOWED_COUNTRIES"] = "US"
        setup_django(env)
        from notification.models import Notification

        times: dict[str, list[tuple[float, float]]] = {
            "validated bulk create": [],
            "raw ORM loop": [],
        }
        for round_number in range(args.rounds + 1):  # the first round warms up
            for name, run in (("validated bulk create", validated), ("raw ORM loop", orm_loop)):
                Notification.objects.all().delete()
                elapsed = run(args.items, round_number * args.items)
                if round_number:
                    times[name].append(elapsed)
        load = os.getloadavg()[0]
        print(f"{args.items} items, {args.database}, {args.rounds} rounds, load {load:.1f}")
        medians = {
            name: [statistics.median(s[k] for s in samples) * 1000 for k in (0, 1)]
            for name, samples in times.items()
        }
        for name, (wall, cpu) in medians.items():
            print(f"  {name:22} median {wall:8.1f} ms, CPU {cpu:8.1f} ms")
        (wall, cpu), (loop_wall, loop_cpu) = medians.values()
        print(f"  ratio validated / loop: {wall / loop_wall:.2f} (CPU: {cpu / loop_cpu:.2f})")


if __name__ == "__main__":
    main()
