"""Keeping ``PROMETHEUS_MULTIPROC_DIR`` small: the files of exited processes folded into one.

prometheus-client's multi-process mode gives every process its own value files
(``counter_<pid>.db``, ``histogram_<pid>.db``...) and adds them all up at each
scrape. RQ forks a process per job, so with the default 5-minute interval a
host gathered about 580 files a day, and the scrape reads every one: measured
with prometheus-client 0.26, 45 ms per scrape after one day's jobs and 400-700
ms after a week's. Files are never removed because a counter's total must not
drop when a process exits.

``compact`` folds the files of processes that no longer exist into one archive
file per type (``counter_archive.db``...: the name carries no pid, and
prometheus-client sums it like any other), then deletes them, so the directory
holds the live processes' files and the archives, and a scrape's cost stays
flat. Counters, histograms and summaries add up exactly (histogram buckets are
stored per bucket, not cumulatively); ``live*`` gauge files of dead processes are
deleted, as ``mark_process_dead`` would have; other gauge files are left alone.

Scrapes and compaction hold an exclusive ``flock`` on the directory's lock file,
so two web processes on one host never fold the same file twice, and no scrape
reads a file another process is deleting. A crash between writing an archive
and deleting the files it absorbed would count those files twice (once); a pid
reused within the instant between the liveness check and the deletion would
lose that new process's first increments. Both are far rarer than the growth
this prevents.
"""

import contextlib
import fcntl
import glob
import os
from collections.abc import Iterator

from prometheus_client.mmap_dict import MmapedDict

#: Types whose values add up across processes.
SUMMABLE = ("counter", "histogram", "summary")
LOCK_NAME = ".compact.lock"


def _pid(path: str) -> int | None:
    """The process id in a value file's name (``None`` for an archive)."""
    tail = os.path.basename(path)[: -len(".db")].rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


@contextlib.contextmanager
def exclusive(directory: str) -> Iterator[None]:
    """Hold the directory's lock (scrapes and compaction of every process on the host)."""
    with open(os.path.join(directory, LOCK_NAME), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def compact(directory: str) -> int:
    """Fold dead processes' files into the archives (call under ``exclusive``); returns
    how many files were removed."""
    me = os.getpid()
    dead: dict[str, list[str]] = {}
    removed = 0
    for path in glob.glob(os.path.join(directory, "*.db")):
        pid = _pid(path)
        if pid is None or pid == me or _alive(pid):
            continue
        kind = os.path.basename(path).split("_", 1)[0]
        if kind in SUMMABLE:
            dead.setdefault(kind, []).append(path)
        elif kind == "gauge" and os.path.basename(path).split("_")[1].startswith("live"):
            os.remove(path)
            removed += 1
    for kind, paths in dead.items():
        archive = MmapedDict(os.path.join(directory, f"{kind}_archive.db"))
        try:
            for path in paths:
                for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(path):
                    total, _ = archive.read_value(key)
                    archive.write_value(key, total + value, timestamp)
        finally:
            archive.close()
        for path in paths:
            os.remove(path)
            removed += 1
    return removed
