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
    "tests.fixtures_services",
    "tests.fixtures_emulator",
    "tests.fixtures_graphql",
    "tests.fixtures_sending",
    "tests.fixtures_live",
]
