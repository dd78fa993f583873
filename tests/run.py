"""Run the test suite on a throwaway PostgreSQL cluster, and the vendor-dependent tests on SQLite.

Usage: ``python -m tests.run [--database sqlite|postgres|all] [--workers N] [pytest arguments...]``
(``make test`` runs it with no arguments).

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
module's server starts once. A run of chosen tests stays in one process
unless ``--workers`` says otherwise. Tests marked ``serial`` (they bound wall-clock
time) run after the parallel part, alone. ``--durations`` is printed for each pass.

Django reads ``DATABASE_URL`` when its settings are imported, and pytest-django
imports them before any conftest runs, so the database of a pass must be chosen
before pytest starts. This launcher therefore runs one pytest process per pass:
the PostgreSQL pass gets a fresh cluster (``initdb`` in a temp dir, see
``devstack.postgres_cluster``) and its ``DATABASE_URL`` in the environment. The
cluster is stopped and deleted afterwards, also on Ctrl-C or SIGTERM.

Exit status: 0 when every pass passed (pytest's "no tests collected", 5, counts
as passed), otherwise the first failing pass's status.

Without PostgreSQL's server binaries a developer's run skips the PostgreSQL
pass with a notice, but under ``CI=true`` it fails: the exactly-once,
cancel-race and multi-worker tests only run on PostgreSQL, and a CI machine
that silently lacks it would report green without ever running them.
"""

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from devstack.postgres_cluster import PostgresCluster, find_bindir

REPO_ROOT = Path(__file__).resolve().parent.parent
NO_TESTS_COLLECTED = 5
INTERRUPTED = 130
VENDOR_MARKER = "db_vendor"
SERIAL_MARKER = "serial"
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


def run_pass(label: str, env: dict[str, str], pytest_args: list[str], workers: str) -> int:
    """One database's pass: in parallel, then the ``serial`` tests alone (if any).

    A test that bounds wall-clock time (scaled-time pacing) would otherwise share the
    cores with another worker's servers and fail for a reason that is not its own.
    """
    if workers in ("0", ""):
        return run_pytest(label, env, pytest_args)
    parallel = run_pytest(
        label, env, [*parallel_args(workers), *with_marker(pytest_args, f"not {SERIAL_MARKER}")]
    )
    if parallel in (2, INTERRUPTED):
        return parallel
    alone = run_pytest(
        f"{label}: tests marked {SERIAL_MARKER}, one at a time",
        env,
        with_marker(pytest_args, SERIAL_MARKER),
    )
    return parallel or alone


def run_pytest(label: str, env: dict[str, str], pytest_args: list[str]) -> int:
    print(f"\n===== {label} =====", flush=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", *pytest_args], cwd=REPO_ROOT, env=env
    )
    while True:
        try:
            status = process.wait()
            break
        except KeyboardInterrupt:
            # pytest (same process group) got the Ctrl-C too and is tearing
            # down its fixtures: wait for it instead of orphaning it.
            continue
        except _Terminated:
            process.terminate()
    if status < 0:  # killed by a signal: report it the way shells do
        status = 128 - status
    return 0 if status == NO_TESTS_COLLECTED else status


def parallel_args(workers: str) -> list[str]:
    """pytest-xdist's options for ``workers`` ("0": one process, as plain pytest)."""
    if workers in ("0", ""):
        return []
    return ["-n", workers, "--dist", "loadfile"]


def with_marker(pytest_args: list[str], marker: str) -> list[str]:
    """Select ``marker`` (an expression) in addition to any ``-m`` expression given."""
    args = list(pytest_args)
    for index, arg in enumerate(args[:-1]):
        if arg == "-m":
            args[index + 1] = f"({args[index + 1]}) and {marker}"
            return args
    return ["-m", marker, *args]


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
    args, pytest_args = parser.parse_known_args(argv)
    signal.signal(signal.SIGTERM, _raise_terminated)
    workers = args.workers if args.workers is not None else ("0" if pytest_args else "auto")
    pytest_args = [f"--durations={SLOWEST_SHOWN}", *pytest_args]
    postgres_bindir = find_bindir() if args.database in ("postgres", "all") else None

    results: dict[str, str] = {}
    first_failure = 0
    try:
        if args.database in ("sqlite", "all"):
            label, sqlite_args = "SQLite pass", pytest_args
            if args.database == "all" and postgres_bindir is not None:
                # PostgreSQL runs everything; SQLite adds what differs by vendor.
                label = f"SQLite pass (tests marked {VENDOR_MARKER}; PostgreSQL runs them all)"
                sqlite_args = with_marker(pytest_args, VENDOR_MARKER)
            status = run_pass(label, base_environment(), sqlite_args, workers)
            results["SQLite"] = "passed" if status == 0 else f"FAILED (exit {status})"
            first_failure = first_failure or status
            if status in (2, INTERRUPTED):  # interrupted: stop here
                return first_failure

        if args.database in ("postgres", "all"):
            bindir = postgres_bindir
            if bindir is None:
                message = "PostgreSQL server binaries (initdb, pg_ctl) not found"
                if args.database == "postgres" or running_in_ci():
                    why = " (CI=true: the PostgreSQL pass is required)" if running_in_ci() else ""
                    print(f"error: {message}{why}", file=sys.stderr)
                    results["PostgreSQL"] = "FAILED (no server binaries)"
                    return first_failure or 1
                print(f"\n===== PostgreSQL pass SKIPPED: {message} =====", flush=True)
                results["PostgreSQL"] = "skipped (no server binaries)"
            else:
                with PostgresCluster(bindir) as cluster:
                    env = base_environment() | {"DATABASE_URL": cluster.url}
                    label = f"PostgreSQL pass ({bindir}, port {cluster.port})"
                    status = run_pass(label, env, pytest_args, workers)
                results["PostgreSQL"] = "passed" if status == 0 else f"FAILED (exit {status})"
                first_failure = first_failure or status
    except (KeyboardInterrupt, _Terminated):
        return INTERRUPTED
    finally:
        if results:
            print("\n===== test passes: " + ", ".join(f"{k} {v}" for k, v in results.items()))
    return first_failure


if __name__ == "__main__":
    sys.exit(main())
