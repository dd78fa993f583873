"""The PostgreSQL statement timeout: set on the web process's connections only.

Each check runs in a fresh Python process, as the servers do: one imports
``config.asgi`` (what uvicorn serves), the other only sets Django up (what the RQ
workers and management commands do).
"""

import json
import subprocess
import sys

import pytest

from tests.support.fixtures_services import REPO_ROOT

pytestmark = pytest.mark.postgres

PROBE = """
import json, sys
import django
if sys.argv[1] == "web":
    import config.asgi  # noqa: F401  (what uvicorn imports)
else:
    django.setup()
from django.db import connection
from django.db.utils import OperationalError
with connection.cursor() as cursor:
    cursor.execute("SHOW statement_timeout")
    timeout = cursor.fetchone()[0]
    try:
        cursor.execute("SELECT pg_sleep(1.5)")
        canceled = False
    except OperationalError as error:
        canceled = "statement timeout" in str(error)
print(json.dumps({"timeout": timeout, "canceled": canceled}))
"""


def probe(env: dict[str, str], role: str) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, role],
        cwd=REPO_ROOT,
        env={**env, "DATABASE_STATEMENT_TIMEOUT": "0.5"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_web_requests_statements_are_canceled_past_the_timeout(subprocess_env):
    assert probe(subprocess_env, "web") == {"timeout": "500ms", "canceled": True}


def test_workers_and_commands_keep_no_statement_timeout(subprocess_env):
    assert probe(subprocess_env, "worker") == {"timeout": "0", "canceled": False}
