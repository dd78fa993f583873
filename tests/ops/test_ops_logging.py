"""``LOG_FORMAT=json``: one JSON object per log line, extra fields included; a typo stops
the process at start with a message naming the variable."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import logging, django
django.setup()
logging.getLogger("notification.send").warning(
    "sms_batch claimed=%d", 3, extra={"notification_id": 7, "twilio_sid": "SM123"}
)
"""


def run(log_format: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "1",
        "LOG_FORMAT": log_format,
        "PYTHONPATH": str(REPO_ROOT),
    }
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_json_log_lines_carry_the_message_and_extra_fields():
    result = run("json")
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["level"] == "WARNING"
    assert line["logger"] == "notification.send"
    assert line["message"] == "sms_batch claimed=3"
    assert (line["notification_id"], line["twilio_sid"]) == (7, "SM123")
    assert line["time"]


def test_plain_stays_the_default_format():
    result = run("plain")
    assert result.returncode == 0, result.stderr
    assert "WARNING notification.send sms_batch claimed=3" in result.stderr


def test_an_unknown_log_format_stops_the_process_naming_the_variable():
    result = run("xml")
    assert result.returncode != 0
    assert "LOG_FORMAT must be 'plain' or 'json'" in result.stderr
