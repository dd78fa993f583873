"""Real sending processes for the scaled-time pacing tests and ``bench/pacing.py``.

``sending_stack(env, workers=n)`` registers the schedule (``schedule_sms``) and
runs ``sms_scheduler --interval 1`` and ``n`` ``sms_worker`` processes. A test can
SIGKILL a worker together with the RQ work horse running its job (a dead machine):
the horse starts its own session (``os.setsid``), so it is found as the worker's
child in ``/proc``, not by process group. Everything is stopped at the end,
horses included.
"""

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class SendingStack:
    workers: list[subprocess.Popen]
    scheduler: subprocess.Popen
    log_dir: Path
    killed: list[subprocess.Popen] = field(default_factory=list)

    def kill_worker(self, pid: int) -> None:
        """SIGKILL the worker with this pid and its work horse (a dead machine)."""
        worker = next(w for w in self.workers if w.pid == pid)
        for child in children(worker.pid):
            with suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        self.killed.append(worker)

    def logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in sorted(self.log_dir.iterdir()))


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux ``/proc``)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            # "pid (comm) state ppid ...": comm may hold spaces, so split after it.
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", *command],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop_group(process: subprocess.Popen) -> None:
    horses = children(process.pid)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    # The RQ work horse outlives a worker that waited too long for it: no orphans.
    for pid in horses:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextmanager
def sending_stack(env: dict[str, str], workers: int = 1) -> Iterator[SendingStack]:
    log_dir = Path(tempfile.mkdtemp(prefix="sending-stack-"))
    subprocess.run(
        [sys.executable, "manage.py", "schedule_sms"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    scheduler = _start(["sms_scheduler", "--interval", "1"], env, log_dir / "scheduler.log")
    stack = SendingStack(
        [_start(["sms_worker"], env, log_dir / f"worker-{i}.log") for i in range(workers)],
        scheduler,
        log_dir,
    )
    try:
        yield stack
    finally:
        for process in [*stack.workers, scheduler]:
            if process not in stack.killed:
                _stop_group(process)
