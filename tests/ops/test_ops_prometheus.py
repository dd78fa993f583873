"""A real scrape: uvicorn and an RQ worker sharing ``PROMETHEUS_MULTIPROC_DIR``, scraped by the
real ``prometheus`` server with the bearer token, checked through Prometheus' HTTP API.

What it proves that the in-process tests cannot: the worker's counters (its Twilio
requests) reach the web process's ``/metrics`` on one host, the exposition is what
Prometheus itself accepts, a wrong token makes the target fail, and the shipped
alert rules load in a running server.
"""

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from django.utils import timezone

from devstack.ports import free_port
from devstack.subprocesses import stop_process
from notification.models import Notification
from tests.support.live_support import run_worker
from tests.support.prometheus_support import prometheus_binary
from tests.support.sending_helpers import make_sms
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow  # a real Prometheus scraping a stack: started first

TOKEN = "live-metrics-token-0123456789"
RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


@contextmanager
def run_prometheus(target: str, directory: Path) -> Iterator[str]:
    """A Prometheus server scraping ``target`` every second (job ``sms``, right token;
    job ``sms-wrong-token``); yields its API base URL."""
    port = free_port("127.0.0.1")
    scrape = {
        "metrics_path": "/metrics",
        "scrape_interval": "1s",
        "scrape_timeout": "900ms",
        "static_configs": [{"targets": [target]}],
    }
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": "sms", "authorization": {"credentials": TOKEN}, **scrape},
            {"job_name": "sms-wrong-token", "authorization": {"credentials": "nope"}, **scrape},
        ],
    }
    config_path = directory / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    log = open(directory / "prometheus.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            prometheus_binary("prometheus"),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api/v1"
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError((directory / "prometheus.log").read_text()[-3000:])
            try:
                return httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout=60, what="prometheus ready")
        yield api
    finally:
        stop_process(process)
        log.close()


def query(api: str, promql: str) -> list[dict]:
    response = httpx.get(f"{api}/query", params={"query": promql}, timeout=5)
    response.raise_for_status()
    return response.json()["data"]["result"]


def scalar(api: str, promql: str) -> float | None:
    result = query(api, promql)
    return float(result[0]["value"][1]) if len(result) == 1 else None


def test_prometheus_scrapes_the_web_process_with_the_workers_counters(live_stack):
    prometheus_binary("prometheus")  # skip before starting anything when it is missing
    multiproc = tempfile.TemporaryDirectory(prefix="test-prom-multiproc-")
    work = tempfile.TemporaryDirectory(prefix="test-prometheus-")
    try:
        shared = {"PROMETHEUS_MULTIPROC_DIR": multiproc.name}
        base_url, env, emulator = live_stack(
            drain_rate="10000",
            callback_delay_ms="5",
            METRICS_TOKEN=TOKEN,
            METRICS_CACHE_SECONDS="0",
            **shared,
        )
        emulator.configure(callbacks_enabled=False)  # statuses stay as the worker wrote them
        make_sms(to="+14155550100")
        make_sms(to="+14155550101")
        make_sms(to="+14155550102", body="later")  # stays due: published in the future below
        Notification.objects.filter(body="later").update(
            publish_datetime=timezone.now() + timedelta(hours=1)
        )

        run_worker({**env, **shared}, sent=2)

        # The probes, served by uvicorn (the load balancer's view).
        assert httpx.get(f"{base_url}/healthz", timeout=10).json() == {"status": "ok"}
        ready = httpx.get(f"{base_url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text

        # The worker's counter, read at the web process (its own process never sent).
        scraped = httpx.get(
            f"{base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )
        assert scraped.status_code == 200
        assert 'sms_twilio_requests_total{code="",outcome="accepted"} 2.0' in scraped.text
        # The exited worker's and job's files were folded into the archives by that scrape.
        left = sorted(path.name for path in Path(multiproc.name).glob("*.db"))
        assert "counter_archive.db" in left, left
        for name in left:
            pid = name[: -len(".db")].rsplit("_", 1)[-1]
            assert not pid.isdigit() or Path(f"/proc/{pid}").exists(), left

        target = base_url.removeprefix("http://")
        with run_prometheus(target, Path(work.name)) as api:
            wait_until(lambda: scalar(api, 'up{job="sms"}') == 1.0, timeout=60, what="target up")
            wait_until(
                lambda: scalar(api, 'sms_messages{job="sms",delivery_status="queued"}') == 2.0,
                timeout=30,
                what="sms_messages queued = 2",
            )
            assert scalar(api, 'sms_messages{job="sms",delivery_status="not_submitted"}') == 1.0
            assert scalar(api, 'sms_messages{job="sms",delivery_status="delivered"}') == 0.0
            assert scalar(api, 'sms_twilio_requests_total{job="sms",outcome="accepted"}') == 2.0
            assert scalar(api, 'sum(sms_ready{job="sms"})') == 4.0
            assert scalar(api, 'sms_last_run_timestamp_seconds{job="sms"}') is not None
            # django-rq's collector, on the same endpoint: the worker's finished job.
            finished = 'rq_jobs{job="sms",queue="sms",status="finished"}'
            assert (scalar(api, finished) or 0) >= 1
            # The wrong token: the target is down, and Prometheus says why.
            wait_until(
                lambda: scalar(api, 'up{job="sms-wrong-token"}') == 0.0,
                timeout=30,
                what="wrong-token target down",
            )
            targets = httpx.get(f"{api}/targets", timeout=5).json()["data"]["activeTargets"]
            wrong = [t for t in targets if t["labels"]["job"] == "sms-wrong-token"]
            assert "401" in wrong[0]["lastError"]
            # The alert rules loaded in the running server.
            rules = httpx.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
            names = {rule["name"] for group in rules for rule in group["rules"]}
            assert {"SmsSenderStopped", "SmsNotReady", "SmsTwilioErrorRate"} <= names
    finally:
        work.cleanup()
        multiproc.cleanup()
