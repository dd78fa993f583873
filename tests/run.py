"""Run the test suite on a throwaway PostgreSQL cluster, and the vendor-dependent tests on SQLite.

Usage: ``python -m tests.run [--database sqlite|postgres|all] [--workers N]
[--alongside COMMAND] [pytest arguments...]`` (``make test`` runs it with
``--alongside`` the newest-Django slice).

``--database all`` (the default) runs every test on PostgreSQL and, on SQLite,
only the tests marked ``db_vendor`` (behaviour that depends on the database:
locking, the SQL dialect, several processes writing; ``tests/README.md``). Most
tests exercise the same ORM calls on both and ran twice for nothing. Where
PostgreSQL's binaries are missing (a developer's machine), the SQLite pass runs
everything instead, so nothing is left out. ``--database sqlite`` or
``postgres`` runs the given tests (all by default) on that database only.

A whole-suite run uses every core (pytest-xdist, ``--workers auto``): each
worker process has its own Redis, emulator, servers and test database
(pytest-django gives each worker its own database, ``test_…_gw0``; the SQLite
file lives in the worker's own temp dir), so tests share nothing across
workers. Files are kept together on one worker (``--dist loadfile``) so a
module's server starts once, and handed out in collection order, where the
modules marked ``slow`` come first (``tests/conftest.py``): a long module
started last would otherwise finish alone while the other cores idle.
A run of chosen tests stays in one process unless ``--workers`` says otherwise.

The passes of a whole-suite run share nothing (own clusters, Redis servers,
emulators, temp dirs, free ports), and most of the suite waits (paced sending,
outages, subprocess start-up) rather than computes, so they overlap:

1. at once: the PostgreSQL pass on every core and, beside it in one process
   after another, the ``--alongside`` commands, the SQLite pass, and the tests
   marked ``stops_postgres`` on a second cluster of their own (they stop their
   server, which would break every other test sharing it);
2. then the tests marked ``serial`` (they bound wall-clock time) alone, with
   nothing else running.

The PostgreSQL pass streams its output; the others' output is printed when the
PostgreSQL pass has ended, each under its own heading. ``--durations`` is
printed for each pass.

Django reads ``DATABASE_URL`` when its settings are imported, and pytest-django
imports them before any conftest runs, so the database of a pass must be chosen
before pytest starts. This launcher therefore runs one pytest process per pass:
a PostgreSQL pass gets a fresh cluster (``initdb`` in a temp dir, see
``devstack.postgres_cluster``) and its ``DATABASE_URL`` in the environment. The
clusters are stopped and deleted afterwards, also on Ctrl-C or SIGTERM.

Exit status: 0 when every pass passed (pytest's "no tests collected", 5, counts
as passed), otherwise the first failing pass's status, in the order printed in
the summary.

Without PostgreSQL's server binaries a developer's run skips the PostgreSQL
pass with a notice, but under ``CI=true`` it fails: the exactly-once,
cancel-race and multi-worker tests only run on PostgreSQL, and a CI machine
that silently lacks it would report green without ever running them.
"""

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from devstack.postgres_cluster import PostgresCluster, find_bindir

REPO_ROOT = Path(__file__).resolve().parent.parent
NO_TESTS_COLLECTED = 5
INTERRUPTED = 130
VENDOR_MARKER = "db_vendor"
SERIAL_MARKER = "serial"
STOPS_POSTGRES_MARKER = "stops_postgres"
SLOWEST_SHOWN = 25

# Variables that would make a test run depend on the developer's shell: tests
# choose their own database, and the Twilio fixtures set credentials that only
# ever reach the local emulator.
_ISOLATED_PREFIXES = ("TWILIO_",)
_ISOLATED_NAMES = {"DATABASE_URL", "REDIS_URL"}


def running_in_ci() -> bool:
    """``CI=true`` (or 1/yes), as GitHub Actions, GitLab CI and ``.ci/run`` set it."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def base_environment() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _ISOLATED_NAMES and not name.startswith(_ISOLATED_PREFIXES)
    }
    env.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")
    env.setdefault("DJANGO_DEBUG", "0")
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


class _Terminated(Exception):
    """Raised from the SIGTERM handler so ``finally`` blocks clean up."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


class Processes:
    """Every child process running now, so that SIGTERM reaches all of them, and a
    flag that stops new ones from starting once the run is being interrupted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self.stopping = threading.Event()

    def run(self, argv: list[str], env: dict[str, str], output: Path | None = None) -> int:
        """Run ``argv`` to its end (output to ``output``, else to ours); its exit status."""
        if self.stopping.is_set():
            return INTERRUPTED
        with open(output, "wb") if output else _no_file() as sink:
            process = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT if sink else None,
            )
            with self._lock:
                self._running.add(process)
            try:
                status = self._wait(process)
            finally:
                with self._lock:
                    self._running.discard(process)
        if status < 0:  # killed by a signal: report it the way shells do
            status = 128 - status
        return status

    def _wait(self, process: subprocess.Popen) -> int:
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:
                # The child (same process group) got the Ctrl-C too and is tearing
                # down its fixtures: wait for it instead of orphaning it.
                self.stopping.set()
            except _Terminated:
                self.terminate()

    def terminate(self) -> None:
        self.stopping.set()
        with self._lock:
            for process in self._running:
                process.terminate()


@contextmanager
def _no_file() -> Iterator[None]:
    yield None


def pytest_status(status: int) -> int:
    return 0 if status == NO_TESTS_COLLECTED else status


def parallel_args(workers: str) -> list[str]:
    """pytest-xdist's options for ``workers`` ("0": one process, as plain pytest).

    ``--no-loadscope-reorder``: files go out in collection order (slow modules
    first, see ``tests/conftest.py``) instead of by their number of tests, which
    sends the few-but-long modules last.
    """
    if workers in ("0", ""):
        return []
    return ["-n", workers, "--dist", "loadfile", "--no-loadscope-reorder"]


def with_marker(pytest_args: list[str], marker: str) -> list[str]:
    """Select ``marker`` (an expression) in addition to any ``-m`` expression given."""
    args = list(pytest_args)
    for index, arg in enumerate(args[:-1]):
        if arg == "-m":
            args[index + 1] = f"({args[index + 1]}) and {marker}"
            return args
    return ["-m", marker, *args]


class Cluster:
    """A throwaway PostgreSQL cluster started on first use and stopped by ``close``;
    thread-safe, as passes of both lanes may ask for it."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self._lock = threading.Lock()
        self._cluster: PostgresCluster | None = None

    def url(self) -> str:
        with self._lock:
            if self._cluster is None:
                self._cluster = PostgresCluster(self.bindir).start()
            return self._cluster.url

    def close(self) -> None:
        with self._lock:
            if self._cluster is not None:
                self._cluster.stop()
                self._cluster = None


@dataclass
class Pass:
    """One pytest run (or ``--alongside`` command) and what came of it."""

    label: str
    argv: list[str]
    cluster: Cluster | None = None  # a PostgreSQL pass's database server
    probe: bool = False  # pytest is asked beforehand whether it selects any test
    # An --alongside command gets the caller's environment, as if run from make;
    # a pytest pass gets base_environment() (no DATABASE_URL, REDIS_URL, TWILIO_*).
    callers_environment: bool = False
    status: int | None = None
    output: Path | None = None

    def run(self, processes: Processes, output: Path | None = None) -> int:
        """Run to the end; output to ``output`` or, without one, to ours under a heading."""
        self.output = output
        if output is None:
            print(f"\n===== {self.label} =====", flush=True)
        env = dict(os.environ) if self.callers_environment else base_environment()
        if self.cluster is not None:
            env["DATABASE_URL"] = self.cluster.url()
        self.status = processes.run(self.argv, env, output)
        if self.argv[1:3] == ["-m", "pytest"]:
            self.status = pytest_status(self.status)
        return self.status

    def selects_nothing(self, processes: Processes) -> bool:
        """Whether this pytest pass would collect no test (its selection is empty)."""
        argv = [*self.argv, "--collect-only", "-q", "-p", "no:xdist"]
        return processes.run(argv, base_environment(), Path(os.devnull)) == NO_TESTS_COLLECTED

    def show_output(self) -> None:
        print(f"\n===== {self.label} (ran alongside) =====", flush=True)
        if self.output is not None and self.output.exists():
            sys.stdout.buffer.write(self.output.read_bytes())
            sys.stdout.flush()

    def result(self) -> str:
        if self.status is None:
            return "not run"
        return "passed" if self.status == 0 else f"FAILED (exit {self.status})"


def pytest_pass(label: str, pytest_args: list[str], workers: str = "0", **kw) -> Pass:
    argv = [sys.executable, "-m", "pytest", *parallel_args(workers), *pytest_args]
    return Pass(label, argv, **kw)


@dataclass
class Plan:
    """What runs: ``main`` (streams its output), ``beside`` it one after another,
    then ``alone`` (nothing else running)."""

    main: list[Pass] = field(default_factory=list)
    beside: list[Pass] = field(default_factory=list)
    alone: list[Pass] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)

    def passes(self) -> list[Pass]:
        return [*self.main, *self.beside, *self.alone]


def plan_passes(
    database: str, bindir: Path | None, workers: str, pytest_args: list[str], alongside: list[str]
) -> Plan:
    """Which pytest runs a ``tests.run`` invocation makes, and which of them overlap.

    On each database the passes' marker expressions split the selection without
    overlap or gap (``not serial and not stops_postgres``, ``stops_postgres and not
    serial``, ``serial``), so each test runs once per database it is meant for.
    """
    plan = Plan()
    plan.beside = [
        Pass(f"alongside: {command}", shlex.split(command), callers_environment=True)
        for command in alongside
    ]
    sqlite_label, sqlite_args = "SQLite pass", pytest_args
    if database == "all" and bindir is not None:
        # PostgreSQL runs everything; SQLite adds what differs by vendor.
        sqlite_label = f"SQLite pass (tests marked {VENDOR_MARKER}; PostgreSQL runs them all)"
        sqlite_args = with_marker(pytest_args, VENDOR_MARKER)
    postgres_label = f"PostgreSQL pass ({bindir})"
    if bindir is not None:
        plan.clusters.append(Cluster(bindir))
    if workers in ("0", ""):  # chosen tests: one process per database, one after the other
        if database in ("sqlite", "all"):
            plan.main.append(pytest_pass(sqlite_label, sqlite_args))
        if bindir is not None:
            plan.main.append(pytest_pass(postgres_label, pytest_args, cluster=plan.clusters[0]))
        return plan

    not_serial = f"not {SERIAL_MARKER}"
    serial = f"tests marked {SERIAL_MARKER}, alone"
    if bindir is None:  # SQLite only (no PostgreSQL here, or --database sqlite)
        plan.main.append(pytest_pass(sqlite_label, with_marker(sqlite_args, not_serial), workers))
        plan.alone.append(
            pytest_pass(
                f"{sqlite_label}: {serial}", with_marker(sqlite_args, SERIAL_MARKER), probe=True
            )
        )
        return plan

    shared, own = plan.clusters[0], Cluster(bindir)
    plan.clusters.append(own)
    not_either = f"{not_serial} and not {STOPS_POSTGRES_MARKER}"
    plan.main.append(
        pytest_pass(postgres_label, with_marker(pytest_args, not_either), workers, cluster=shared)
    )
    if database == "all":
        plan.beside.append(pytest_pass(sqlite_label, with_marker(sqlite_args, not_serial)))
    plan.beside.append(
        pytest_pass(
            f"PostgreSQL: tests marked {STOPS_POSTGRES_MARKER}, on a cluster of their own",
            with_marker(pytest_args, f"{STOPS_POSTGRES_MARKER} and {not_serial}"),
            cluster=own,
        )
    )
    plan.alone.append(
        pytest_pass(
            f"PostgreSQL: {serial}", with_marker(pytest_args, SERIAL_MARKER), cluster=shared
        )
    )
    if database == "all":
        plan.alone.append(
            pytest_pass(f"SQLite: {serial}", with_marker(sqlite_args, SERIAL_MARKER), probe=True)
        )
    return plan


def execute(plan: Plan, processes: Processes, *, sequential: bool = False) -> None:
    """Run the plan: ``main`` and ``beside`` at once (``sequential``: one after the
    other, each streaming its output), then ``alone``; statuses land in the passes.
    Stops starting passes once one was interrupted."""
    if sequential:
        plan = Plan(main=[*plan.main, *plan.beside], alone=plan.alone, clusters=plan.clusters)
    with tempfile.TemporaryDirectory(prefix="tests-run-") as logs:

        def beside() -> None:
            for index, item in enumerate(plan.beside):
                item.run(processes, Path(logs) / f"{index}.log")
            for item in plan.alone:
                if item.probe and item.selects_nothing(processes):
                    item.status = 0
                    item.label += ": none selected"

        lane = threading.Thread(target=beside, name="beside", daemon=True)
        lane.start()
        try:
            for item in plan.main:
                if processes.stopping.is_set():
                    break
                if item.run(processes) in (2, INTERRUPTED):
                    processes.stopping.set()
        finally:
            if lane.is_alive():
                waiting = ", ".join(i.label for i in plan.beside if i.status is None)
                print(f"\n===== waiting for the passes alongside: {waiting}", flush=True)
            while lane.is_alive():
                try:
                    lane.join(0.5)
                except KeyboardInterrupt:  # the children got it too and are ending
                    processes.stopping.set()
                except _Terminated:
                    processes.terminate()
            for item in plan.beside:
                if item.status is not None:
                    item.show_output()
        for item in plan.alone:
            if item.status is None and not processes.stopping.is_set():
                item.run(processes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run pytest on SQLite and on a throwaway PostgreSQL cluster.",
        epilog="Unrecognised arguments are passed to pytest.",
    )
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres", "all"],
        default="all",
        help="which pass(es) to run (default: all; postgres only where its binaries exist)",
    )
    parser.add_argument(
        "--workers",
        default=None,
        help="pytest-xdist workers per pass: a number, or auto (one per core); default: "
        "auto for the whole suite, 0 (one process) when tests or options are given",
    )
    parser.add_argument(
        "--alongside",
        action="append",
        default=[],
        metavar="COMMAND",
        help="a command run beside the test passes (make test: the newest-Django slice); "
        "its output is printed afterwards and its exit status counts like a pass's",
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="run the passes one after another instead of beside the PostgreSQL pass "
        "(slower; to compare, or on a machine too busy for the overlap)",
    )
    args, pytest_args = parser.parse_known_args(argv)
    signal.signal(signal.SIGTERM, _raise_terminated)
    workers = args.workers if args.workers is not None else ("0" if pytest_args else "auto")
    pytest_args = [f"--durations={SLOWEST_SHOWN}", *pytest_args]
    bindir = find_bindir() if args.database in ("postgres", "all") else None

    if bindir is None and args.database in ("postgres", "all"):
        message = "PostgreSQL server binaries (initdb, pg_ctl) not found"
        if args.database == "postgres" or running_in_ci():
            why = " (CI=true: the PostgreSQL pass is required)" if running_in_ci() else ""
            print(f"error: {message}{why}", file=sys.stderr)
            return 1
        print(f"\n===== PostgreSQL pass SKIPPED: {message} =====", flush=True)

    plan = plan_passes(args.database, bindir, workers, pytest_args, args.alongside)
    processes = Processes()
    try:
        execute(plan, processes, sequential=args.sequential)
    except (KeyboardInterrupt, _Terminated):
        processes.terminate()
        return INTERRUPTED
    finally:
        for cluster in plan.clusters:
            cluster.close()
        ran = [item for item in plan.passes() if item.status is not None]
        if ran:
            print("\n===== test passes: " + ", ".join(f"{i.label}: {i.result()}" for i in ran))
    if processes.stopping.is_set():
        return INTERRUPTED
    return next((item.status for item in plan.passes() if item.status), 0)


if __name__ == "__main__":
    sys.exit(main())
