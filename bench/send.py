"""Benchmark of the SMS send job against the Twilio emulator (a separate process).

Run: ``make bench-send`` or ``.venv/bin/python bench/send.py [--database postgres|sqlite]``.

It starts everything it needs and removes it afterwards: a throwaway PostgreSQL
cluster (``devstack.postgres_cluster``; ``--database sqlite`` uses a temp file
instead, which serialises writers), a throwaway Redis (status events), the
emulator (``manage.py twilio_emulator``, callbacks off, fast drain so Twilio's
queue limit never interferes) and worker processes running the scheduled job's
paced run (``run_paced``: recover, claim, dispatch, write, batches overlapped;
``TWILIO_SMS_RATE`` is the emulator's drain rate, so the pacing target never binds).

Each figure is printed beside its peer or floor, measured in the same run:

* **against django-spire** (0 ms latency, ``--messages`` SMS, default 3,000):
  one worker of ours (``TWILIO_SMS_BATCH_SIZE`` 100, ``TWILIO_SMS_CONCURRENCY`` 8)
  beside django-spire 1.3's own SMS job (``bench/spire_peer.py``, run in its own
  virtualenv under ``.bench/``, its own database in the same cluster), the two
  alternating for ``--rounds`` rounds; plus our SQL statements per batch and CPU
  milliseconds per message (``time.process_time`` of the worker process, every
  thread), and the peer's. When the peer cannot be installed (no PyPI the first
  time, no Python >= 3.12) it prints "peer unavailable: <why>" and the floor
  instead: the simplest correct loop (for each due row: ``messages.create``, save
  its status), in our own project;
* **at 200 ms** (Twilio's real latency): ``--slow-messages`` SMS at concurrency 8
  beside the sequential figure (concurrency 1) of the same code; concurrency 8
  allows at most 8×; and the same SMS one ``run_batch`` after another (no overlap);
* **the queue estimate** per claim at 1,000 to 30,000 hand-offs in the window: the
  database's sums beside the same rows read into Python for ``combine``;
* messages/s for 1 and 4 worker processes at 0 and 200 ms, SQL statements per
  batch for several batch sizes (they must not grow), and throughput at 200 ms for
  concurrency 1, 4, 8, 16.

Workers are started first and wait for a "go" line, so Python/Django start-up
is not part of the timings.
"""

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.common import (  # noqa: E402
    bench_environment,
    migrate_and_start_emulator,
    start_database_and_redis,
)

#: The peer: django-spire's release the issue measured, in its own virtualenv.
SPIRE_REQUIREMENT = "django-spire==1.3.0"
SPIRE_VENV = REPO_ROOT / ".bench" / "spire-venv"
PEER_SCRIPT = REPO_ROOT / "bench" / "spire_peer.py"
#: Segments per second the emulator drains (and our workers are told it drains).
DRAIN_RATE = 1_000_000

# --- worker mode (a child process) ---------------------------------------------


def worker_main() -> None:
    """Wait for "go" on stdin, drain the due SMS, print timings and counts as JSON.

    What drains them is the job's paced run (``run_paced``, batches overlapped),
    or with ``BENCH_LOOP=batches`` one ``run_batch`` after another (no overlap:
    ``send_sms_batch --until-empty``), to show what the overlap buys in one run.
    """
    import django

    django.setup()
    from django.db import connection

    from notification.backends.twilio import build_twilio_client
    from notification.guardrails import screen
    from notification.send.batch import run_batch
    from notification.send.dispatch import status_callback_url
    from notification.send.run import run_paced

    connection.ensure_connection()
    status_callback_url()  # imports the URLconf: start-up, as a long-lived worker pays once
    # What a run pays once before its first claim, outside the timings like the URLconf:
    # the allowed countries' SMS prices (one Pricing API request per country: 200 ms
    # at 200 ms latency) and the SDK's lazily imported Message resource (~30 ms).
    screen.prepare()
    build_twilio_client().messages  # noqa: B018 (the import is the point)
    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    # The heap a work horse of ``sms_worker`` inherits (``SmsWorker.fork_work_horse``).
    gc.freeze()
    print("ready", flush=True)
    sys.stdin.readline()
    start, cpu = time.time(), time.process_time()
    sent = batches = 0
    with connection.execute_wrapper(count):
        if os.environ.get("BENCH_LOOP") == "batches":
            while (report := run_batch()).claimed:
                sent += report.sent
                batches += 1
        else:
            run = run_paced(deadline=time.monotonic() + 3600)
            sent, batches = run.sent, run.batches - 1  # its last top-up found nothing due
    cpu = time.process_time() - cpu
    print(
        json.dumps(
            {
                "start": start,
                "end": time.time(),
                "sent": sent,
                "batches": batches,
                "sql": statements,
                "cpu": cpu,
            }
        )
    )


def floor_main() -> None:
    """The naive floor: for each due row, ``messages.create``, save its status."""
    import django

    django.setup()
    from django.db import connection

    from bench.common import FROM_NUMBER
    from notification.backends.twilio import build_twilio_client
    from notification.models import Notification, NotificationStatusChoices, SmsNotification

    connection.ensure_connection()
    client = build_twilio_client()
    print("ready", flush=True)
    sys.stdin.readline()
    start, cpu = time.time(), time.process_time()
    sent = 0
    due = SmsNotification.objects.select_related("notification").filter(
        notification__status=NotificationStatusChoices.PENDING
    )
    for sms in due:
        created = client.messages.create(
            to=sms.to_phone_number, from_=FROM_NUMBER, body=sms.notification.body
        )
        SmsNotification.objects.filter(pk=sms.pk).update(
            twilio_sid=created.sid, delivery_status=created.status
        )
        Notification.objects.filter(pk=sms.notification_id).update(
            status=NotificationStatusChoices.SENT
        )
        sent += 1
    cpu = time.process_time() - cpu
    print(json.dumps({"start": start, "end": time.time(), "sent": sent, "cpu": cpu}))


# --- orchestration (the parent) ------------------------------------------------


@dataclass
class Run:
    sent: int
    seconds: float
    cpu: float = 0.0
    sql: int = 0
    batches: int = 0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds


def fresh_due_sms(count: int) -> None:
    """Replace every notification with ``count`` due SMS (the tests' bulk helper)."""
    from notification.models import Notification
    from tests.support.sending_helpers import create_due_sms

    Notification.objects.all().delete()
    create_due_sms(count)


def start_ready(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"{argv[1]} failed to start")
    return proc


def finish(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"a benchmark process failed ({proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def run_workers(env: dict[str, str], workers: int, extra_env: dict[str, str]) -> Run:
    """Start ``workers`` processes, release them together; return what they did."""
    procs = [
        start_ready([sys.executable, __file__, "--worker"], {**env, **extra_env})
        for _ in range(workers)
    ]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [finish(proc) for proc in procs]
    return Run(
        sent=sum(r["sent"] for r in results),
        seconds=max(r["end"] for r in results) - min(r["start"] for r in results),
        cpu=sum(r["cpu"] for r in results),
        sql=sum(r["sql"] for r in results),
        batches=sum(r["batches"] for r in results),
    )


def run_floor(env: dict[str, str], count: int) -> Run:
    fresh_due_sms(count)
    proc = start_ready([sys.executable, __file__, "--floor"], env)
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    result = finish(proc)
    return Run(result["sent"], result["end"] - result["start"], cpu=result["cpu"])


def peer_python() -> Path | None:
    """A working Python >= 3.12 for the peer's virtualenv (django-spire 1.3 requires it):
    ``SPIRE_PYTHON``, else pyenv's 3.13/3.12, else ``python3.13``/``python3.12`` on PATH."""
    candidates = [os.environ.get("SPIRE_PYTHON", "")]
    pyenv = Path.home() / ".pyenv" / "versions"
    if pyenv.is_dir():
        candidates += [
            str(path / "bin" / "python")
            for path in sorted(pyenv.iterdir(), reverse=True)
            if path.name.startswith(("3.13", "3.12"))
        ]
    candidates += [shutil.which(f"python3.{minor}") or "" for minor in (13, 12)]
    probe = "import sys; sys.exit(sys.version_info < (3, 12))"
    for candidate in filter(None, candidates):
        try:
            if subprocess.run([candidate, "-c", probe], capture_output=True).returncode == 0:
                return Path(candidate)
        except OSError:
            continue
    return None


def ensure_peer() -> tuple[Path | None, str]:
    """(the peer virtualenv's python, "") or (None, why it is unavailable).

    The first run installs django-spire and its pinned dependencies from PyPI
    (1–6 minutes: psycopg2 compiles); later runs reuse ``.bench/spire-venv``.
    """
    python = SPIRE_VENV / "bin" / "python"
    check = [str(python), "-c", "import django_spire, twilio, psycopg2"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, ""
    base = peer_python()
    if base is None:
        return None, "django-spire 1.3 needs Python >= 3.12 and none was found (SPIRE_PYTHON)"
    print(f"installing the peer ({SPIRE_REQUIREMENT}) into {SPIRE_VENV} with {base} ...")
    shutil.rmtree(SPIRE_VENV, ignore_errors=True)
    steps = [
        [str(base), "-m", "venv", str(SPIRE_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", SPIRE_REQUIREMENT],
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            return None, f"{' '.join(step[-2:])} timed out"
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return None, f"{' '.join(step[-2:])} failed: {last[0]}"
    if subprocess.run(check, capture_output=True).returncode != 0:
        return None, "django-spire installed but does not import"
    return python, ""


def peer_database(database_url: str, stack: ExitStack) -> str:
    """The peer's own database: a second database in the cluster, or its own SQLite file."""
    if database_url.startswith("sqlite"):
        directory = stack.enter_context(tempfile.TemporaryDirectory())
        return f"sqlite:///{directory}/spire.sqlite3"
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS spire_peer")
        conn.execute("CREATE DATABASE spire_peer")
    return database_url.rsplit("/", 1)[0] + "/spire_peer"


def run_peer(python: Path, database_url: str, emulator_url: str, count: int) -> Run:
    argv = [str(python), str(PEER_SCRIPT), "--database-url", database_url]
    argv += ["--emulator", emulator_url, "--messages", str(count)]
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO")}
    env.pop("PYTHONPATH", None)
    proc = start_ready(argv, env)
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    result = finish(proc)
    return Run(result["sent"], result["seconds"], cpu=result["cpu"], sql=result["sql"])


def queries_per_batch(batch_size: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notification.send.batch import run_batch

    fresh_due_sms(batch_size)
    with CaptureQueriesContext(connection) as captured:
        report = run_batch(batch_segments=batch_size)
    assert report.sent == batch_size, report
    return len(captured.captured_queries)


def span(values: list[float], fmt: str = ".0f") -> str:
    low, high = min(values), max(values)
    return f"{low:{fmt}}" if len(values) == 1 else f"{low:{fmt}}–{high:{fmt}}"


def against_peer(env, args, emulator, database_url: str, stack: ExitStack) -> None:
    count = args.messages
    peer, why = (None, "--peer none") if args.peer == "none" else ensure_peer()
    peer_url = peer_database(database_url, stack) if peer else ""
    name = "django-spire 1.3 job" if peer else "naive floor"
    if not peer:
        print(f"peer unavailable: {why}; comparing with the naive floor instead")
    print(f"\nAgainst {name}: {count} SMS at 0 ms latency, {args.rounds} alternating rounds")
    print("(ours: one worker, batch 100 segments, concurrency 8)")
    header = f"{'round':>5} {'ours msg/s':>10} {name + ' msg/s':>26} {'ratio':>6}"
    print(header)
    ours_runs: list[Run] = []
    ratios: list[float] = []
    other_runs: list[Run] = []
    for index in range(args.rounds):
        emulator.configure(latency_ms=0)
        fresh_due_sms(count)
        ours = run_workers(env, 1, {})
        assert ours.sent == count, (ours.sent, count)
        if peer:
            other = run_peer(peer, peer_url, emulator.base_url, count)
        else:
            other = run_floor(env, count)
        assert other.sent == count, (other.sent, count)
        ours_runs.append(ours)
        other_runs.append(other)
        ratios.append(ours.rate / other.rate)
        ratio = ours.rate / other.rate
        print(f"{index + 1:>5} {ours.rate:>10.0f} {other.rate:>26.0f} {ratio:>5.2f}×")
    print(
        f"range: ours {span([r.rate for r in ours_runs])} msg/s, {name} "
        f"{span([r.rate for r in other_runs])} msg/s, ratio {span(ratios, '.2f')}× (target ≥ 2×)"
    )
    # One round's ratio swings with the machine's other load (each side is measured
    # alone, seconds apart): the median over the rounds is the figure to compare.
    median, reached = statistics.median(ratios), sum(ratio >= 2 for ratio in ratios)
    print(f"ratio median {median:.2f}×; ≥ 2× in {reached} of {len(ratios)} rounds")
    sql = [r.sql / r.batches for r in ours_runs]
    print(
        f"ours: SQL per batch {span(sql, '.1f')} ({ours_runs[0].batches} batches of 100); "
        f"CPU ms per message {span([1000 * r.cpu / r.sent for r in ours_runs], '.2f')}"
    )
    peer_sql = [r.sql / r.sent for r in other_runs if r.sql]
    print(
        f"{name}: CPU ms per message {span([1000 * r.cpu / r.sent for r in other_runs], '.2f')}"
        + (f"; SQL per message {span(peer_sql, '.2f')}" if peer_sql else "")
    )


def at_real_latency(env, args, emulator) -> None:
    count, concurrency = args.slow_messages, 8
    emulator.configure(latency_ms=200)
    sequential_count = max(10, count // 5)
    print(f"\nAt 200 ms latency: {count} SMS at concurrency {concurrency}, beside sequential")
    fresh_due_sms(sequential_count)
    sequential = run_workers(env, 1, {"TWILIO_SMS_CONCURRENCY": "1"})
    fresh_due_sms(count)
    concurrent = run_workers(env, 1, {"TWILIO_SMS_CONCURRENCY": str(concurrency)})
    fresh_due_sms(count)
    apart = run_workers(
        env, 1, {"TWILIO_SMS_CONCURRENCY": str(concurrency), "BENCH_LOOP": "batches"}
    )
    ratio = concurrent.rate / sequential.rate
    print(
        f"sequential (concurrency 1, {sequential_count} SMS): {sequential.rate:.2f} msg/s; "
        f"concurrency {concurrency}: {concurrent.rate:.2f} msg/s = {ratio:.2f}× "
        f"= {100 * ratio / concurrency:.1f}% of the {concurrency}× it allows (target ≥ 95%)"
    )
    print(
        f"the same {count} SMS one batch after another (no overlap, send_sms_batch's loop): "
        f"{apart.rate:.2f} msg/s = {100 * apart.rate / sequential.rate / concurrency:.1f}%"
    )


def estimate_cost(sizes: tuple[int, ...] = (1_000, 10_000, 30_000)) -> None:
    """The queue estimate at each claim, by hand-offs in the validity window: the
    database's sums (``estimate_queue``) beside the same rows read into Python and
    fed to ``combine`` (what it did before), same rows, same result, same run."""
    from datetime import timedelta

    from django.db.models import Q
    from django.db.models.functions import Coalesce
    from django.utils import timezone

    from notification.conf import app_settings
    from notification.models import SmsNotification
    from notification.send.dispatch import current_sender
    from notification.send.wake import combine, estimate_queue

    sender = current_sender()
    print("\nQueue estimate per claim (in this process), by hand-offs in the window")
    print(f"{'hand-offs':>9} {'SQL sums ms':>12} {'rows to Python ms':>18}")
    for size in sizes:
        fresh_due_sms(size)
        now = timezone.now()
        SmsNotification.objects.update(
            sender=sender, sent_datetime=now - timedelta(seconds=5), delivery_status="queued"
        )

        def in_python(now=now) -> int:
            window = now - timedelta(seconds=app_settings.TWILIO_SMS_VALIDITY_PERIOD)
            rows = (
                SmsNotification.objects.filter(sender=sender)
                .filter(
                    Q(sent_datetime__gte=window)
                    | Q(delivery_status="", claimed_datetime__gte=window)
                )
                .annotate(at=Coalesce("sent_datetime", "claimed_datetime"))
                .values_list("at", "segments", "delivery_status")
            )
            return combine(list(rows), now, app_settings.TWILIO_SMS_RATE)

        timings = []
        for compute in (lambda now=now: estimate_queue(sender, now), in_python):
            compute()  # warm
            started = time.perf_counter()
            for _ in range(5):
                value = compute()
            timings.append((1000 * (time.perf_counter() - started) / 5, value))
        assert timings[0][1] == timings[1][1], timings
        print(f"{size:>9} {timings[0][0]:>12.1f} {timings[1][0]:>18.1f}")


def other_figures(env: dict[str, str], emulator) -> None:
    """Throughput for 1 and 4 workers, SQL per batch by batch size, concurrency scaling."""
    print("\nThroughput (batch 100 segments, concurrency 8)")
    print(f"{'latency':>8} {'workers':>8} {'messages':>9} {'seconds':>8} {'msg/s':>8}")
    for latency_ms, count in ((0, 1000), (200, 400)):
        emulator.configure(latency_ms=latency_ms)
        for workers in (1, 4):
            fresh_due_sms(count)
            run = run_workers(env, workers, {})
            assert run.sent == count, (run.sent, count)
            print(
                f"{latency_ms:>6}ms {workers:>8} {run.sent:>9} {run.seconds:>8.2f} {run.rate:>8.1f}"
            )

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
        run = run_workers(env, 1, {"TWILIO_SMS_CONCURRENCY": str(concurrency)})
        print(f"{concurrency:>11} {run.sent:>9} {run.seconds:>8.2f} {run.rate:>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--messages", type=int, default=3000, help="SMS per run at 0 ms")
    parser.add_argument("--slow-messages", type=int, default=200, help="SMS per run at 200 ms")
    parser.add_argument("--rounds", type=int, default=2, help="rounds against the peer")
    parser.add_argument(
        "--peer", choices=["spire", "none"], default="spire", help="none: the naive floor"
    )
    parser.add_argument(
        "--only",
        choices=["peer", "latency", "estimate", "all"],
        default="all",
        help="which sections",
    )
    args = parser.parse_args()

    with ExitStack() as stack:
        database_url, redis_url = start_database_and_redis(stack, args.database)
        env = {
            **bench_environment(database_url, redis_url),
            "TWILIO_SMS_BATCH_SIZE": "100",
            "TWILIO_SMS_CONCURRENCY": "8",
            # The emulator's drain rate: the paced run's target (15 s of it) never binds.
            "TWILIO_SMS_RATE": str(DRAIN_RATE),
        }
        emulator = migrate_and_start_emulator(stack, env, drain_rate=DRAIN_RATE)

        import django

        django.setup()
        from django.conf import settings

        settings.DEBUG = True  # let CaptureQueriesContext see queries in this process

        with open("/proc/loadavg") as loadavg:
            load = " ".join(loadavg.read().split()[:3])
        print(f"database: {args.database}; emulator: {emulator.base_url} (separate process)")
        print(f"load average at start: {load} ({os.cpu_count()} cores)")
        if args.only in ("peer", "all"):
            against_peer(env, args, emulator, database_url, stack)
        if args.only in ("latency", "all"):
            at_real_latency(env, args, emulator)
        if args.only in ("estimate", "all"):
            estimate_cost()
        if args.only != "all":
            return

        other_figures(env, emulator)


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker_main()
    elif "--floor" in sys.argv:
        floor_main()
    else:
        main()
