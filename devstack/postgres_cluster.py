"""A throwaway PostgreSQL cluster: ``initdb`` in a temp dir, started on a free port.

Tests that depend on PostgreSQL behaviour (row locks, ``SKIP LOCKED``, many
concurrent workers) need a real server; this builds a private one from the
server binaries in seconds and removes it afterwards, so nothing is installed
or configured system-wide and parallel test runs never share a database.

PostgreSQL refuses to run as root, so when we are root the server commands run
as the ``postgres`` system user (``runuser``, or ``su`` where that is missing)
and the cluster directory is handed to that user.
"""

import atexit
import glob
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from devstack.ports import free_port

HOST = "127.0.0.1"
SUPERUSER = "postgres"

# Durability is pointless for a database deleted after the run; these make
# table creation and flushes between tests several times faster.
SPEED_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def find_bindir() -> Path | None:
    """Directory holding ``initdb``/``pg_ctl``, or None when the server is not installed.

    ``POSTGRES_BINDIR`` wins; then the newest Debian-style
    ``/usr/lib/postgresql/<version>/bin``; then ``pg_config --bindir``; then PATH.
    """
    candidates: list[Path] = []
    if os.environ.get("POSTGRES_BINDIR"):
        candidates.append(Path(os.environ["POSTGRES_BINDIR"]))

    def version_key(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    candidates += [
        Path(p)
        for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version_key, reverse=True)
    ]
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def _run_as_server_user(argv: list[str]) -> list[str]:
    """Wrap a command so it runs as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", SUPERUSER, "--", *argv]
    return ["su", SUPERUSER, "-s", "/bin/sh", "-c", shlex.join(argv)]


class PostgresCluster:
    """A private PostgreSQL server; use as a context manager or ``start()``/``stop()``."""

    def __init__(self, bindir: Path | None = None, max_connections: int = 200) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.bindir = found
        self.max_connections = max_connections
        self.port = 0
        self.directory: Path | None = None
        self._started = False

    @property
    def data_dir(self) -> Path:
        assert self.directory is not None
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        assert self.directory is not None
        return self.directory / "postgres.log"

    @property
    def url(self) -> str:
        """``DATABASE_URL`` of the maintenance database (Django creates ``test_*`` from it)."""
        return f"postgres://{SUPERUSER}@{HOST}:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        result = subprocess.run(
            _run_as_server_user(list(argv)),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=self.directory,
        )
        if result.returncode != 0:
            log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            raise RuntimeError(
                f"{shlex.join(argv)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}{log}"
            )

    def start(self) -> "PostgresCluster":
        self.directory = Path(tempfile.mkdtemp(prefix="test-postgres-"))
        # Registered before anything can fail, so a half-started cluster is
        # still stopped and removed when the interpreter exits.
        atexit.register(self.stop)
        if os.geteuid() == 0:
            server_user = pwd.getpwnam(SUPERUSER)
            os.chown(self.directory, server_user.pw_uid, server_user.pw_gid)
        self._run(
            str(self.bindir / "initdb"),
            "--pgdata", str(self.data_dir),
            "--username", SUPERUSER,
            "--auth", "trust",
            "--encoding", "UTF8",
            "--no-locale",
            "--no-sync",
        )  # fmt: skip
        self.port = free_port(HOST)
        settings = {
            "port": str(self.port),
            "listen_addresses": HOST,
            # The socket lives in our temp dir: /var/run/postgresql may not
            # exist or may belong to a system cluster.
            "unix_socket_directories": str(self.directory),
            "max_connections": str(self.max_connections),
            **SPEED_SETTINGS,
        }
        options = " ".join(f"-c {name}={value}" for name, value in settings.items())
        self._started = True
        self._run(
            str(self.bindir / "pg_ctl"),
            "--pgdata", str(self.data_dir),
            "--log", str(self.log_path),
            "--options", options,
            "--wait",
            "--timeout", "60",
            "start",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        """Stop the server and delete its files; safe to call more than once."""
        if self.directory is None:
            return
        if self._started and (self.data_dir / "postmaster.pid").exists():
            # "immediate": no checkpoint, the data is about to be deleted.
            subprocess.run(
                _run_as_server_user(
                    [str(self.bindir / "pg_ctl"), "--pgdata", str(self.data_dir),
                     "--mode", "immediate", "--wait", "stop"]
                ),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                cwd=self.directory,
            )  # fmt: skip
        self._started = False
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None
        atexit.unregister(self.stop)

    def __enter__(self) -> "PostgresCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
