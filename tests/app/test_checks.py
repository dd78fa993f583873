"""The app's system checks (``notification/checks.py``): each fires on a bad setting,
and all are silent on this project's settings and on the minimal host project's."""

import os
import subprocess
import sys

import pytest
from django.core.checks import run_checks

from tests.app.test_host_project import copy_host_project
from tests.support.fixtures_services import REPO_ROOT
from tests.support.settings_helpers import sms_settings

LOCKOUT = "notification.throttle.login.LoginLockoutBackend"
MODEL = "django.contrib.auth.backends.ModelBackend"


def ids(include_deployment_checks: bool = False) -> list[str]:
    """The ids of the app's check messages under the current settings."""
    messages = run_checks(include_deployment_checks=include_deployment_checks)
    return sorted(m.id for m in messages if (m.id or "").startswith("notification."))


def test_silent_on_the_test_settings():
    assert ids() == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"RQ_QUEUES": {"default": {"URL": "redis://x"}}}, "notification.E001"),
        ({"SMS_QUEUE_NAME": "texts"}, "notification.E001"),
        ({"AUTHENTICATION_BACKENDS": [MODEL, LOCKOUT]}, "notification.E002"),
        ({"AUTHENTICATION_BACKENDS": [MODEL]}, "notification.W001"),
        ({"CHANNEL_LAYERS": {}}, "notification.W002"),
        ({"SMS_BACKEND": "notification.backends.nowhere.Backend"}, "notification.E003"),
        ({"SMS_BACKEND": "notification.conf.AppSettings"}, "notification.E003"),
        ({"TWILIO_SMS_INTERVAL": 0}, "notification.E004"),
        ({"TWILIO_SMS_RATE": -1.0}, "notification.E004"),
        ({"TWILIO_SMS_BATCH_SIZE": "100"}, "notification.E004"),
        ({"GRAPHQL_MAX_DEPTH": -1}, "notification.E004"),
        ({"SMS_QUIET_HOURS": "9pm-8am"}, "notification.E005"),
        ({"SMS_QUIET_HOURS": "08:00-08:00"}, "notification.E005"),
        ({"SMS_QUIET_HOURS_BY_REGION": "US-FL"}, "notification.E005"),
        ({"SMS_ALLOWED_COUNTRIES": "US,XX"}, "notification.E006"),
        ({"SMS_ALLOWED_COUNTRIES": "USA"}, "notification.E006"),
        ({"DEFAULT_PHONE_REGION": "ZZ", "SMS_ALLOWED_COUNTRIES": "*"}, "notification.E006"),
        ({"SMS_PRICE_TABLE": "US=cheap"}, "notification.E007"),
        ({"SMS_SCHEDULE": "notification.jobs.nowhere.SCHEDULE"}, "notification.E007"),
    ],
)
def test_each_check_fires_on_a_bad_setting(overrides, expected):
    with sms_settings(**overrides):
        found = ids()
    assert found == [expected], found


def test_a_zero_turns_an_optional_limit_off_without_an_error():
    with sms_settings(GRAPHQL_MAX_DEPTH=0, SMS_DAILY_SPEND_LIMIT=0, LOGIN_MAX_FAILURES=0):
        assert ids() == []


def test_every_message_has_a_hint():
    bad = {
        "RQ_QUEUES": {},
        "AUTHENTICATION_BACKENDS": [MODEL],
        "CHANNEL_LAYERS": {},
        "SMS_BACKEND": "nowhere.Backend",
        "TWILIO_SMS_INTERVAL": 0,
        "SMS_QUIET_HOURS": "x",
        "SMS_ALLOWED_COUNTRIES": "XX",
        "SMS_PRICE_TABLE": "x",
        "DEBUG": False,
        "PUBLIC_BASE_URL": "http://sms.example.com",
    }
    with sms_settings(**bad):
        messages = [
            m
            for m in run_checks(include_deployment_checks=True)
            if (m.id or "").startswith("notification.")
        ]
    assert {m.id for m in messages} == {
        *(f"notification.E00{n}" for n in (1, 3, 4, 5, 6, 7)),
        *(f"notification.W00{n}" for n in (1, 2, 3)),
    }
    assert all(m.hint for m in messages), messages


def test_public_base_url_must_be_https_with_debug_off_under_deploy():
    with sms_settings(DEBUG=False, PUBLIC_BASE_URL="http://sms.example.com"):
        assert ids() == []  # a deployment check: plain ``check`` stays quiet
        assert "notification.W003" in ids(include_deployment_checks=True)
    with sms_settings(DEBUG=True, PUBLIC_BASE_URL="http://127.0.0.1:8000"):
        assert "notification.W003" not in ids(include_deployment_checks=True)
    with sms_settings(DEBUG=False, PUBLIC_BASE_URL="https://sms.example.com"):
        assert "notification.W003" not in ids(include_deployment_checks=True)


def _manage_check(settings_module: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TWILIO_"))}
    environment.update(DJANGO_SETTINGS_MODULE=settings_module, **env)
    return subprocess.run(
        [sys.executable, "-m", "django", "check", "--fail-level", "WARNING", *args],
        env=environment,
        cwd=env.get("PYTHONPATH", str(REPO_ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_projects_own_settings_check_clean():
    checked = _manage_check("config.settings", DJANGO_DEBUG="true", PYTHONPATH=str(REPO_ROOT))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The README's production environment, with --deploy, is covered with Django's
    # own deployment checks in tests/graphql/test_hostile_round_two.py.


def test_the_host_project_checks_clean_also_with_deploy(tmp_path):
    host = copy_host_project(tmp_path / "host")
    env = {
        "PYTHONPATH": str(host),
        "HOST_DATABASE": str(tmp_path / "host.sqlite3"),
        "HOST_REDIS_URL": "redis://127.0.0.1:6379/0",  # not connected to by ``check``
    }
    checked = _manage_check("tests.host_project.settings", **env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    deployed = _manage_check("tests.host_project.settings", "--deploy", **env)
    # Django's own deployment warnings concern the host's choices (its SECRET_KEY,
    # HSTS, cookies); the app's own checks add none.
    assert "notification." not in deployed.stdout + deployed.stderr, deployed.stderr


def test_a_typo_in_the_host_projects_dict_is_reported_with_the_closest_key(tmp_path):
    host = copy_host_project(tmp_path / "host")
    settings_file = host / "tests" / "host_project" / "settings.py"
    settings_file.write_text(
        settings_file.read_text() + '\nSMS_NOTIFICATIONS["TWILIO_SMS_RAET"] = 2.0\n'
    )
    checked = _manage_check(
        "tests.host_project.settings",
        PYTHONPATH=str(host),
        HOST_DATABASE=str(tmp_path / "host.sqlite3"),
        HOST_REDIS_URL="redis://127.0.0.1:6379/0",
    )
    assert checked.returncode != 0
    assert "notification.E008" in checked.stderr
    assert "Did you mean 'TWILIO_SMS_RATE'?" in checked.stderr


def test_an_environment_variable_out_of_range_stops_the_project_naming_it():
    """The same rule as E004 (``notification.conf.out_of_range``), as the process starts."""
    checked = _manage_check(
        "config.settings",
        DJANGO_DEBUG="true",
        PYTHONPATH=str(REPO_ROOT),
        TWILIO_SMS_CONCURRENCY="65",
    )
    assert checked.returncode != 0
    assert "TWILIO_SMS_CONCURRENCY must be a number from 1 to 64, got '65'" in checked.stderr
