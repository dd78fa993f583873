"""The app in someone else's Django project, set up as the README says, in a process of its own.

Its own settings module (``tests.host_project.settings``): only the app, its
URLs, its GraphQL parts merged into the host's schema, the Twilio credentials
and a channel layer; the locmem backend sends.

The project is copied out of the repository and run from there, so the
``notification`` it imports is the installed package, never the checkout: an
editable install in ``make install``'s virtualenv, the built wheel in nox's
(``nox -s newest`` runs this on the newest Django and Python).
"""

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import django

from tests.support.fixtures_services import REPO_ROOT


def copy_host_project(destination: Path) -> Path:
    """``tests/host_project`` alone (as ``tests.host_project``), outside the checkout."""
    package = destination / "tests"
    shutil.copytree(REPO_ROOT / "tests" / "host_project", package / "host_project")
    (package / "__init__.py").write_text("")
    return destination


def run_host_project(tmp_path, redis_url: str) -> dict:
    env = dict(os.environ)
    for name in list(env):
        if name.startswith(("TWILIO_", "DJANGO_")) or name in ("DATABASE_URL", "REDIS_URL"):
            del env[name]
    env.update(
        DJANGO_SETTINGS_MODULE="tests.host_project.settings",
        HOST_DATABASE=str(tmp_path / "host.sqlite3"),
        HOST_REDIS_URL=redis_url,
        PYTHONPATH=str(copy_host_project(tmp_path / "host")),
    )
    finished = subprocess.run(
        [sys.executable, "-m", "tests.host_project.scenario"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_a_host_project_migrates_merges_the_schema_creates_sends_and_subscribes(
    tmp_path, redis_url
):
    result = run_host_project(tmp_path, redis_url)
    assert result["django"] == django.get_version()  # this run's Django (nox: the newest)
    # The installed app: the checkout's own folder through make install's editable
    # install, or the wheel's copy in site-packages (nox); never a copy beside the host.
    installed = Path(result["app_installed_at"]).resolve()
    assert installed == REPO_ROOT / "notification" or "site-packages" in installed.parts
    assert not installed.is_relative_to(tmp_path)
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
    # Subscribed over the app's websocket consumer, then Twilio's "delivered" callback.
    assert result["callback_status"] == 200
    current, changed = result["events"]
    notification_id = payload["notification"]["id"]
    assert current["notificationId"] == notification_id
    assert (current["status"], current["deliveryStatus"]) == ("SENT", "SENT")
    assert (changed["status"], changed["deliveryStatus"]) == ("DELIVERED", "DELIVERED")
    assert changed["notification"] == {"id": notification_id, "status": "DELIVERED"}
    # The probes work with the app's defaults; /metrics is off without METRICS_TOKEN.
    assert result["healthz"] == 200
    assert result["readyz"][0] == 200, result["readyz"]
    assert result["readyz"][1]["checks"]["channel_layer"]["ok"] is True
    assert result["metrics"] == 404


def test_the_host_project_configures_the_app_only_through_its_dict():
    """The dict is enough (the scenario above runs on it, ``check`` is clean): no
    top-level name of the app, which would be a deprecated one (check W004)."""
    from notification.conf import DEFAULTS

    tree = ast.parse((REPO_ROOT / "tests" / "host_project" / "settings.py").read_text())
    assigned = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert "SMS_NOTIFICATIONS" in assigned
    assert assigned & set(DEFAULTS) == set()
