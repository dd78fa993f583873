"""The app in someone else's Django project, set up as the README says, in a process of its own.

Its own settings module (``tests.host_project.settings``): only the app, its
URLs, its GraphQL parts merged into the host's schema and the Twilio
credentials; the locmem backend sends.
"""

import json
import os
import subprocess
import sys

from tests.fixtures_services import REPO_ROOT


def run_host_project(tmp_path, redis_url: str) -> dict:
    env = dict(os.environ)
    for name in list(env):
        if name.startswith(("TWILIO_", "DJANGO_")) or name in ("DATABASE_URL", "REDIS_URL"):
            del env[name]
    env.update(
        DJANGO_SETTINGS_MODULE="tests.host_project.settings",
        HOST_DATABASE=str(tmp_path / "host.sqlite3"),
        HOST_REDIS_URL=redis_url,
        PYTHONPATH=str(REPO_ROOT),
    )
    finished = subprocess.run(
        [sys.executable, "-m", "tests.host_project.scenario"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_a_host_project_migrates_merges_the_schema_creates_and_sends_through_locmem(
    tmp_path, redis_url
):
    result = run_host_project(tmp_path, redis_url)
    payload = result["created"]["data"]["createSmsNotification"]
    assert payload["errors"] == []
    assert payload["notification"]["status"] == "PENDING"
    assert result["shop_name"] == "Acme"  # the host's own field, next to the app's
    assert len(result["probe_errors"]) == 2
    assert not [m for m in result["probe_errors"] if "Did you mean" in m], result["probe_errors"]
    assert result["sent"] == 1
    assert result["outbox"] == [{"to": "+14155550100", "body": "Hello from the host"}]
    assert (result["status"], result["delivery_status"]) == ("sent", "sent")
    assert result["sid"].startswith("SM") and len(result["sid"]) == 34
