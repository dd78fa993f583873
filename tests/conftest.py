"""Shared pytest configuration: fixture plugins and a safe environment.

Run the suite with ``make test`` (SQLite, then a throwaway PostgreSQL) or
``.venv/bin/python -m tests.run [--database sqlite|postgres] [pytest args]``.
A bare ``pytest`` works too (SQLite) once ``DJANGO_DEBUG=1`` or a
``DJANGO_SECRET_KEY`` is set: pytest-django imports the settings before this file.
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
