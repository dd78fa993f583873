"""Real sending processes for the scaled-time pacing tests and ``bench/pacing.py``.

``sending_stack(env, workers=n)`` registers the schedule (``schedule_sms``) and
runs ``rqscheduler --interval 1`` and ``n`` ``sms_worker`` processes, each in its
own process group so a test can SIGKILL a worker together with the RQ work horse
running its job. Everything is stopped at the end, horses included.
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

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class SendingStack:
    workers: list[subprocess.Popen]
    scheduler: subprocess.Popen
    log_dir: Path
    killed: list[subprocess.Popen] = field(default_factory=list)

    def kill_worker(self, pid: int) -> None:
        """SIGKILL the worker with this pid and its work horse (a dead machine)."""
        worker = next(w for w in self.workers if w.pid == pid)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        self.killed.append(worker)

    def logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in sorted(self.log_dir.iterdir()))


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
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    # The RQ work horse outlives a worker that waited too long for it: no orphans.
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
    scheduler = _start(
        ["rqscheduler", "--queue", "sms", "--interval", "1"], env, log_dir / "scheduler.log"
    )
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
