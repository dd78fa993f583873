"""Shared pytest configuration: fixture plugins and a safe environment.

Run the suite with ``make test`` (``tests/README.md``: every test on a throwaway
PostgreSQL, the ``db_vendor`` ones on SQLite too, a slice on the newest Django) or
``.venv/bin/python -m tests.run [--database sqlite|postgres] [pytest args]``.
A bare ``pytest`` works too (SQLite, with ``tests.settings``: pytest-django imports
the settings before this file, so the test-only secret key is set there).
"""

import os

# For code and subprocesses that read the environment after start-up; the
# Django settings of this process were already loaded by pytest-django.
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

pytest_plugins = [
    "tests.support.fixtures_services",
    "tests.support.fixtures_emulator",
    "tests.support.fixtures_graphql",
    "tests.support.fixtures_sending",
    "tests.support.fixtures_live",
]


def _flush_retrying_deadlocks() -> None:
    """Let the flush that ends a transactional test retry when PostgreSQL breaks a deadlock.

    A server a test started (uvicorn, the app's database threads, a socket's
    session re-check) may still be running one query that joins two tables as the
    test ends. Django's flush is one ``TRUNCATE`` of many tables, taking their
    locks one by one, while that query takes its share locks one by one too: each
    can end up waiting for the other. PostgreSQL then fails one of them, and when
    it picks the flush, the rows stay and the next test on that worker starts on
    a dirty database (a duplicate username, say). Retrying after a short pause,
    once the other query has finished, is what a person would do; any other
    error is raised as before.
    """
    import time

    from django.db import OperationalError
    from django.db.backends.base.operations import BaseDatabaseOperations

    original = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        for attempt in range(5):
            try:
                return original(self, sql_list)
            except OperationalError as error:
                if "deadlock detected" not in str(error) or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush


_flush_retrying_deadlocks()
