"""What the sending benchmarks share: the emulator credentials and the environment
their processes (workers, the emulator, ``manage.py`` commands) run with."""

import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_SID = "AC" + "be7c4be7" * 4
AUTH_TOKEN = "be7c4be7" * 4
FROM_NUMBER = "+15005550006"


def start_database_and_redis(stack: ExitStack, database: str) -> tuple[str, str]:
    """A throwaway database (``postgres``: its own cluster; ``sqlite``: a file in a
    temporary folder) and Redis server, stopped when ``stack`` closes: (database URL,
    Redis URL)."""
    from devstack.redis_server import RedisServer

    if database == "postgres":
        from devstack.postgres_cluster import PostgresCluster

        database_url = stack.enter_context(PostgresCluster()).url
    else:
        directory = stack.enter_context(tempfile.TemporaryDirectory())
        database_url = f"sqlite:///{directory}/bench.sqlite3"
    return database_url, stack.enter_context(RedisServer()).url


def bench_environment(database_url: str, redis_url: str) -> dict[str, str]:
    """This environment plus the throwaway database and Redis, the emulator's
    credentials (its URL is added once it listens) and quiet logs."""
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-only-secret-key"),
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO_ROOT),
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_MESSAGING_SERVICE_SID": "",
    }


def migrate_and_start_emulator(
    stack: ExitStack, env: dict[str, str], drain_rate: float, callbacks: bool = False
):
    """Migrate the throwaway database, start the emulator as a separate process
    (draining ``drain_rate`` segments/s; callbacks off, or on with no added delay:
    each message's "sent" when it leaves the queue), and point ``env`` and this
    process's environment at it. Returns the emulator's handle."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
    )
    from tests.support.fixtures_emulator import start_emulator_process

    emulator = stack.enter_context(
        start_emulator_process(
            "--drain-rate",
            str(drain_rate),
            *(["--callback-delay-ms", "0"] if callbacks else ["--no-callbacks"]),
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            env=env,
        )
    )
    env["TWILIO_BASE_URL"] = emulator.base_url
    os.environ.update(env)
    return emulator
