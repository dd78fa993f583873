"""Multi-process mode with real processes: forked "jobs" count Twilio requests in their
own files; compaction folds the exited ones into archives without changing any total,
and leaves a live process's files alone."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# Runs with PROMETHEUS_MULTIPROC_DIR set before prometheus-client is imported, as a
# worker process does; forks children like RQ's job processes.
SCRIPT = r"""
import glob, json, os, signal, sys, time
import django
django.setup()
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.parser import text_string_to_metric_families
from notification import instruments
from notification.ops import multiproc

directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]

def totals():
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    found = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            if s.name in ("sms_twilio_requests_total", "sms_twilio_request_duration_seconds_count"):
                found[s.name + json.dumps(s.labels, sort_keys=True)] = s.value
    return found

def job(outcome, code):
    pid = os.fork()
    if pid == 0:
        instruments.twilio_request(outcome, code, 0.2)
        os._exit(0)
    os.waitpid(pid, 0)

for round_ in range(2):
    for i in range(20):
        job("accepted", None)
    job("rejected", 30003)
    # A job still running: its files must survive compaction.
    read, write = os.pipe()
    live = os.fork()
    if live == 0:
        instruments.twilio_request("ambiguous", None, 0.2)
        os.write(write, b"x")
        time.sleep(60)
        os._exit(0)
    os.read(read, 1)
    before = totals()
    files_before = len(glob.glob(os.path.join(directory, "*.db")))
    with multiproc.exclusive(directory):
        removed = multiproc.compact(directory)
    after = totals()
    live_files = glob.glob(os.path.join(directory, f"*_{live}.db"))
    os.kill(live, signal.SIGKILL)
    os.waitpid(live, 0)
    print(json.dumps({"before": before, "after": after, "removed": removed,
                      "files_before": files_before,
                      "files_after": len(glob.glob(os.path.join(directory, "*.db"))),
                      "live_files": len(live_files)}))
"""


def test_compaction_folds_exited_processes_and_keeps_every_total(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "PYTHONPATH": str(REPO_ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rounds = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert len(rounds) == 2
    accepted = 'sms_twilio_requests_total{"code": "", "outcome": "accepted"}'
    for number, data in enumerate(rounds, start=1):
        # Nothing lost or counted twice by folding.
        assert data["after"] == data["before"]
        assert data["after"][accepted] == 20 * number
        # The live job's files stay; the 21 exited jobs' files are gone.
        assert data["live_files"] >= 1
        assert data["removed"] >= 21 * 2
        # Left: this process's, the live job's and one archive per type.
        assert data["files_after"] <= 12, data
    # The directory does not grow with the number of jobs.
    assert rounds[1]["files_after"] <= rounds[0]["files_after"]
    # The killed live job of round 1 is folded in round 2: its request still counts.
    ambiguous = 'sms_twilio_requests_total{"code": "", "outcome": "ambiguous"}'
    assert rounds[1]["after"][ambiguous] == 2
