"""Run the test suite on SQLite, then on a throwaway PostgreSQL cluster.

Usage: ``python -m tests.run [--database sqlite|postgres|all] [pytest arguments...]``
(``make test`` runs it with no arguments).

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
    args, pytest_args = parser.parse_known_args(argv)
    signal.signal(signal.SIGTERM, _raise_terminated)

    results: dict[str, str] = {}
    first_failure = 0
    try:
        if args.database in ("sqlite", "all"):
            status = run_pytest("SQLite pass", base_environment(), pytest_args)
            results["SQLite"] = "passed" if status == 0 else f"FAILED (exit {status})"
            first_failure = first_failure or status
            if status in (2, INTERRUPTED):  # interrupted: stop here
                return first_failure

        if args.database in ("postgres", "all"):
            bindir = find_bindir()
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
                    status = run_pytest(label, env, pytest_args)
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
