"""Benchmark of self-healing in scaled time: how long sending stalls after a fault ends.

Run: ``make bench-heal`` or ``.venv/bin/python bench/heal.py`` (about 3 minutes).

It starts everything it needs and removes it afterwards: a throwaway PostgreSQL
cluster, a Redis that can be SIGKILLed and restarted on its port
(``tests.support.outage_support``), the emulator as a separate process draining at 50
segments/s (callbacks off), and real ``sms_worker`` and ``sms_scheduler
--interval 1`` processes with ``TWILIO_SMS_INTERVAL=4`` (scaled time: production
runs every 300 s with a 10 s poll). Nobody restarts a process or runs a command.

Each scenario sends a campaign of 400 one-segment messages; once 100 have
left, the fault: Redis SIGKILLed and back 2 s later with its data (append-only
file) or empty; every database connection of the worker terminated
(``pg_terminate_backend``); the emulator stopped for 10 s (connections
refused) and started again on its port. Printed per scenario: seconds from the
fault's end to the next message accepted by the emulator, beside the bound
that applies and the floor measured in the same run (the largest gap between
two accepted messages before the fault), then duplicates and messages not sent.
"""

import argparse
import collections
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.common import ACCOUNT_SID, AUTH_TOKEN, bench_environment  # noqa: E402

RATE, INTERVAL, POLL, TARGET_SECONDS = 50, 4, 1, 1
REDIS_DOWN_SECONDS, TWILIO_DOWN_SECONDS = 2, 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=400)
    args = parser.parse_args()

    import subprocess

    from devstack.ports import free_port
    from devstack.postgres_cluster import PostgresCluster
    from devstack.subprocesses import stop_process
    from tests.support.fixtures_emulator import start_emulator_process
    from tests.support.outage_support import RestartableRedis

    with ExitStack() as stack:
        database_url = stack.enter_context(PostgresCluster()).url
        env = bench_environment(database_url, "redis://unset")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            cwd=REPO_ROOT,
            env=env,
            check=True,
        )
        env.update(
            TWILIO_SMS_RATE=str(RATE),
            TWILIO_SMS_INTERVAL=str(INTERVAL),
            TWILIO_SMS_QUEUE_TARGET=str(TARGET_SECONDS),
            TWILIO_SMS_CLAIM_TIMEOUT="2",
            TWILIO_REQUEST_TIMEOUT="5",
            LOG_LEVEL="WARNING",
        )
        import os

        os.environ.update(env)
        import django

        django.setup()
        from notification.models import Notification, NotificationStatusChoices
        from tests.support.outage_support import terminate_other_backends
        from tests.support.pacing_support import sending_stack
        from tests.support.sending_helpers import create_due_sms
        from tests.support.waiting import wait_until

        Status = NotificationStatusChoices
        emulator_port = free_port()

        def emulator():
            return start_emulator_process(
                "--port", str(emulator_port), "--drain-rate", str(RATE), "--no-callbacks",
                account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, env=env,
            )  # fmt: skip

        def settled() -> bool:
            return not Notification.objects.filter(
                status__in=[Status.PENDING, Status.PROCESSING]
            ).exists()

        def scenario(name: str, bound: str, keep_data: bool, fault: Callable) -> None:
            Notification.objects.all().delete()
            with RestartableRedis(keep_data=keep_data) as redis, ExitStack() as inner:
                first = inner.enter_context(emulator())
                run_env = {**env, "REDIS_URL": redis.url, **first.env}
                with sending_stack(run_env) as processes:
                    create_due_sms(args.messages)
                    wait_until(lambda: len(first.messages()) >= 100, 60, "the campaign")
                    before_fault = first.messages()
                    ended, now_emulator = fault(redis, first, inner)
                    wait_until(settled, 180, "sending to finish by itself")
                    alive = all(p.poll() is None for p in [*processes.workers, processes.scheduler])
                    messages = now_emulator.messages()
                    if now_emulator is not first:
                        messages = before_fault + messages
            queued = sorted(m["queued_at"] for m in before_fault)
            floor = max(b - a for a, b in zip(queued, queued[1:], strict=False))
            after = [m["queued_at"] for m in messages if m["queued_at"] > ended]
            stall = min(after) - ended if after else float("nan")
            counts = collections.Counter(m["body"] for m in messages)
            duplicates = sum(n - 1 for n in counts.values())
            statuses = collections.Counter(Notification.objects.values_list("status", flat=True))
            print(
                f"  {name:<40} {stall:6.2f} s   (bound {bound}; floor {floor:.2f} s)   "
                f"duplicates {duplicates}, not sent {args.messages - statuses[Status.SENT]}, "
                f"processes alive: {'yes' if alive else 'NO'}"
            )

        def redis_restart(redis, first, inner):
            redis.kill()
            time.sleep(REDIS_DOWN_SECONDS)
            redis.start()
            return time.time(), first

        def cut_database(redis, first, inner):
            terminate_other_backends()
            return time.time(), first

        def twilio_outage(redis, first, inner):
            stop_process(first.process)
            time.sleep(TWILIO_DOWN_SECONDS)
            second = inner.enter_context(emulator())
            return time.time(), second

        print(
            f"{args.messages} messages per scenario; emulator {RATE} segments/s (separate "
            f"process), TWILIO_SMS_INTERVAL={INTERVAL}, sms_scheduler --interval {POLL}, one "
            "sms_worker; seconds from the fault's end to the next accepted message:"
        )
        scenario(
            f"Redis SIGKILL, back after {REDIS_DOWN_SECONDS} s with data",
            "backoff 2 s + one interval",
            True,
            redis_restart,
        )
        scenario(
            f"Redis SIGKILL, back after {REDIS_DOWN_SECONDS} s empty",
            "backoff 2 s + one poll: the healed entry is due at once",
            False,
            redis_restart,
        )
        scenario(
            "worker's DB connection cut",
            "a reconnect; the next run if it ended the run",
            False,
            cut_database,
        )
        scenario(
            f"Twilio unreachable for {TWILIO_DOWN_SECONDS} s",
            "retry backoff of refused rows, 15-30 s",
            False,
            twilio_outage,
        )


if __name__ == "__main__":
    main()
