"""The test infrastructure itself: private Redis, test database from subprocesses, markers."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis as redis_py
from django.conf import settings

from notification.conf import app_settings
from tests.support.fixtures_services import REPO_ROOT, on_postgres

pytestmark = pytest.mark.db_vendor


def test_settings_use_the_private_redis(redis_url):
    assert redis_url != settings.EMBEDDED_REDIS_URL
    assert redis_url == app_settings.REDIS_URL
    assert {queue["URL"] for queue in settings.RQ_QUEUES.values()} == {redis_url}
    host = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
    assert host == {"address": redis_url, "socket_timeout": None}


@pytest.fixture
def key_left_behind(redis_url: str) -> str:
    """A key written to the session's Redis before the ``redis`` fixture runs, as an
    earlier test would leave it (requested before ``redis``, so set up first)."""
    client = redis_py.Redis.from_url(redis_url)
    try:
        client.set("left-behind", "1")
        assert client.get("left-behind") == b"1"
    finally:
        client.close()
    return "left-behind"


def test_redis_fixture_empties_what_an_earlier_test_left(key_left_behind, redis):
    """Self-contained: it does not count on another test having run first."""
    assert redis.get(key_left_behind) is None
    assert redis.dbsize() == 0


def test_rq_queue_reaches_the_private_redis(redis):
    # No database transaction here: inside one, django-rq's default
    # COMMIT_MODE "on_db_commit" holds the job back until the commit.
    import django_rq

    queue = django_rq.get_queue(app_settings.SMS_QUEUE_NAME)
    queue.enqueue("builtins.print", "hello")
    assert redis.llen(f"rq:queue:{app_settings.SMS_QUEUE_NAME}") == 1


@pytest.mark.django_db
def test_backend_fixture_matches_connection(database_backend):
    from django.db import connection

    assert database_backend == connection.vendor
    assert database_backend in {"sqlite", "postgresql"}
    assert on_postgres() == (database_backend == "postgresql")


@pytest.mark.django_db
def test_sqlite_test_database_is_a_file(database_backend):
    from django.db import connection

    if database_backend != "sqlite":
        pytest.skip("SQLite pass only")
    name = str(connection.settings_dict["NAME"])
    assert "memory" not in name
    assert Path(name).is_file()


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgres_marker_runs_only_on_postgres():
    from django.db import connection

    assert connection.vendor == "postgresql"


def test_subprocess_sees_committed_rows_and_redis(subprocess_env, redis):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("seen-by-subprocess")
    redis.set("from-test", "42")
    script = (
        "from django.contrib.auth import get_user_model; import django_rq; "
        "print(get_user_model().objects.filter(username='seen-by-subprocess').count()); "
        "print(django_rq.get_connection('sms').get('from-test').decode())"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=REPO_ROOT,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "42"]


def test_dev_stack_runs_embedded_redis_and_emulator_by_default():
    from devstack.run import procfile_process_names, stack_environment

    assert {"redis", "web", "worker", "scheduler", "twilio", "demo"} <= set(
        procfile_process_names()
    )
    env, skipped = stack_environment({"PATH": "/usr/bin"})
    assert skipped == set()
    assert env["DJANGO_DEBUG"] == "1"
    assert env["DJANGO_CORS_ALLOWED_ORIGINS"] == "http://127.0.0.1:3000"  # the demo's origin
    assert env["TWILIO_BASE_URL"] == "http://127.0.0.1:8001"
    assert env["TWILIO_FROM_NUMBER"] == "+15005550006"
    assert len(env["TWILIO_ACCOUNT_SID"]) == 34 and env["TWILIO_ACCOUNT_SID"].startswith("AC")
    # Metrics on, and every process writes its counters where the web process reads them.
    assert env["METRICS_TOKEN"]
    assert env["PROMETHEUS_MULTIPROC_DIR"].endswith(".prometheus-multiproc")


def test_dev_stack_uses_configured_redis_and_real_twilio():
    from devstack.run import stack_environment

    given = {
        "REDIS_URL": "redis://elsewhere:6379/0",
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": "2" * 32,
        "TWILIO_FROM_NUMBER": "+14155550199",
    }
    env, skipped = stack_environment(given)
    assert skipped == {"redis", "twilio"}
    assert "TWILIO_BASE_URL" not in env  # the SDK talks to Twilio itself
    assert {name: env[name] for name in given} == given


def test_dev_stack_runs_djangos_system_checks_once():
    """make run's migrate runs them; a warning printed again by each process is noise."""
    from devstack.run import PROCFILE

    commands = re.findall(r"manage\.py (\S+)([^&\n]*)", PROCFILE.read_text())
    assert {name for name, _ in commands} >= {"sms_worker", "sms_scheduler"}
    for name, arguments in commands:
        assert "--skip-checks" in arguments, name


def test_dev_stack_keeps_configured_cors_origins_and_adds_the_demo():
    from devstack.run import stack_environment

    env, _ = stack_environment({"DJANGO_CORS_ALLOWED_ORIGINS": "http://localhost:5173"})
    assert env["DJANGO_CORS_ALLOWED_ORIGINS"] == "http://localhost:5173,http://127.0.0.1:3000"


def test_embedded_redis_waits_for_its_clients_before_stopping():
    """Ctrl-C on make run: Redis outlives the worker's and scheduler's goodbyes."""
    import threading

    import redis

    from devstack.redis_server import RedisServer, wait_for_clients_to_leave

    with RedisServer() as server:
        wait_for_clients_to_leave(server.port, timeout=30)  # nobody connected: at once
        client = redis.Redis(host="127.0.0.1", port=server.port)
        client.ping()
        waiter = threading.Thread(target=wait_for_clients_to_leave, args=(server.port, 60))
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive()  # a client is still connected
        client.close()
        waiter.join(30)
        assert not waiter.is_alive()


def test_browser_tests_skip_naming_the_debian_package_when_chromium_is_missing(monkeypatch):
    from tests.support import browser_support

    monkeypatch.setattr(browser_support, "CHROMIUM", Path("/nonexistent/chromium"))
    with pytest.raises(pytest.skip.Exception) as skipped:
        browser_support.require_chromium()
    assert "Debian package `chromium`" in str(skipped.value)


def run_ensure_dev_superuser(*args: str) -> str:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("ensure_dev_superuser", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_dev_superuser_is_created_once_and_its_password_works(settings, tmp_path, client):
    from django.contrib.auth import get_user_model

    settings.DEBUG = True
    settings.BASE_DIR = tmp_path
    first = run_ensure_dev_superuser()
    password = first.strip().rsplit(" / ", 1)[1]
    assert "created" in first
    assert (tmp_path / ".run" / "dev-superuser.json").stat().st_mode & 0o077 == 0

    second = run_ensure_dev_superuser()
    assert "exists" in second and password in second
    assert get_user_model().objects.filter(is_superuser=True).count() == 1
    assert client.login(username="admin", password=password)


@pytest.mark.django_db
def test_dev_superuser_is_refused_without_debug(settings, tmp_path):
    from django.contrib.auth import get_user_model
    from django.core.management import CommandError

    settings.DEBUG = False
    settings.BASE_DIR = tmp_path
    with pytest.raises(CommandError, match="DJANGO_DEBUG is off"):
        run_ensure_dev_superuser()
    assert not get_user_model().objects.exists()
    assert not (tmp_path / ".run").exists()


@pytest.mark.parametrize("database", ["all", "postgres", "sqlite"])
@pytest.mark.parametrize("postgres_installed", [True, False])
def test_the_launchers_passes_run_each_test_once_per_database_it_is_meant_for(
    database, postgres_installed
):
    """``tests.run`` splits a whole-suite run into passes that overlap in time; their
    ``-m`` expressions must still select each test exactly once per database: on
    PostgreSQL every test, on SQLite (beside PostgreSQL) the ``db_vendor`` ones,
    whatever else a test is marked (``serial``, ``stops_postgres``) and with a
    user's own ``-m`` kept."""
    import itertools

    from _pytest.mark.expression import Expression

    from tests import run

    bindir = Path("/usr/lib/postgresql/bin") if postgres_installed else None
    if database == "sqlite":
        bindir = None
    plan = run.plan_passes(database, bindir, "auto", ["-m", "not excluded"], ["lint-imports"])
    assert [p.argv for p in plan.beside[:1]] == [["lint-imports"]]
    passes = [p for p in plan.passes() if p.argv[1:3] == ["-m", "pytest"]]
    markers = ["serial", "stops_postgres", "db_vendor", "excluded"]
    for marked in itertools.chain.from_iterable(
        itertools.combinations(markers, n) for n in range(len(markers) + 1)
    ):
        runs = {"postgres": 0, "sqlite": 0}
        for item in passes:
            expression = item.argv[item.argv.index("-m", 3) + 1]
            if Expression.compile(expression).evaluate(marked.__contains__):
                runs["postgres" if item.cluster else "sqlite"] += 1
        wanted_on_postgres = bindir is not None and "excluded" not in marked
        wanted_on_sqlite = "excluded" not in marked and (
            bindir is None or (database == "all" and "db_vendor" in marked)
        )
        assert runs == {"postgres": int(wanted_on_postgres), "sqlite": int(wanted_on_sqlite)}, (
            marked
        )
    # The passes that stop their server or bound wall-clock time never share a
    # cluster or the machine with the parallel pass.
    for item in passes:
        expression = item.argv[item.argv.index("-m", 3) + 1]
        if "stops_postgres and" in expression:
            assert item in plan.beside and item.cluster is not plan.main[0].cluster
        if expression.endswith(" and serial"):
            assert item in plan.alone


def test_modules_marked_slow_are_handed_out_first_keeping_the_order_within_each_group():
    """The parallel pass gives files to workers in collection order (``tests.run``:
    ``--no-loadscope-reorder``): a long module must not be the last one started."""
    from types import SimpleNamespace

    from tests.support.fixtures_services import slow_first

    def item(module: str, slow: bool = False) -> SimpleNamespace:
        return SimpleNamespace(
            name=f"{module}-{slow}",
            path=Path(f"tests/{module}.py"),
            get_closest_marker=lambda name: object() if slow and name == "slow" else None,
        )

    items = [item("a"), item("b"), item("b", slow=True), item("c"), item("d", slow=True), item("a")]
    slow_first(items)
    assert [(i.path.stem, i.name) for i in items] == [
        ("b", "b-False"),
        ("b", "b-True"),
        ("d", "d-True"),
        ("a", "a-False"),
        ("c", "c-False"),
        ("a", "a-False"),
    ]
    from tests import run

    assert "--no-loadscope-reorder" in run.parallel_args("auto")


def test_the_benches_helpers_import_before_django_is_set_up():
    """``bench/common.py`` starts the emulator and the database before it calls
    ``django.setup()``: a helper that imports the app at module level made every
    bench that starts the emulator (send, pacing, heal, reconcile, guardrails) die
    with ``AppRegistryNotReady`` before printing a figure."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    script = "import bench.common, tests.support.fixtures_emulator"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
