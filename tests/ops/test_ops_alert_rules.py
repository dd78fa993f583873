"""The shipped alert rules load in Prometheus and fire on the series they are about
(``promtool check rules`` and ``promtool test rules`` on ``deploy/prometheus``)."""

import subprocess
from pathlib import Path

from tests.support.prometheus_support import prometheus_binary

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def test_alert_rules_are_valid():
    result = subprocess.run(
        [prometheus_binary("promtool"), "check", "rules", "alerts.yml"],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 12 rules found" in result.stdout


def test_alert_rules_fire_on_what_they_watch():
    result = subprocess.run(
        [prometheus_binary("promtool"), "test", "rules", "alerts.test.yml"],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
