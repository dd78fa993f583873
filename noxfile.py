"""The supported matrix: Django 5.2 LTS and 6.x on Python 3.11, 3.12 and 3.13.

- ``nox -s newest`` (part of ``make test``): the fast slice (host project,
  packaging, create, send, webhooks, subscriptions) on the newest Django with
  the newest Python this machine has, on SQLite. With the main combination run
  in full by ``tests.run``, CI proves both ends of the range.
- ``nox -s "tests-3.12(django='6.1')"`` (or ``nox -s tests``: every combination):
  the whole suite on one combination, the way ``make test`` runs it
  (``python -m tests.run``: PostgreSQL in full, SQLite for the vendor-dependent tests).

Only the main combination (Django 5.2 on Python 3.11, ``make install``) installs
from ``constraints.txt``; the others resolve within ``pyproject.toml``'s ranges,
as a user's project would. Interpreters are looked up on ``PATH`` and in pyenv's
versions folder (README "Testing" says how to get them); a missing one skips its
sessions with a message instead of failing. Virtualenvs are kept in ``.nox/``
and reused, so only the first run pays for the installs.
"""

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = False
nox.options.sessions = ["newest"]

PYTHONS = ["3.11", "3.12", "3.13"]
# Django series -> the requirement that selects its newest release.
DJANGOS = {"5.2": "Django>=5.2,<5.3", "6.1": "Django>=6.1,<7"}
# Django 6 needs Python 3.12 or later (its own requires-python).
COMBINATIONS = [
    (python, django)
    for python in PYTHONS
    for django in DJANGOS
    if not (django.startswith("6") and python == "3.11")
]
SLICE = [
    "tests/app/test_host_project.py",
    "tests/app/test_packaging.py",
    "tests/graphql/test_graphql_create.py",
    "tests/send/test_sending_dispatch.py",
    "tests/send/test_send_command.py",
    "tests/status/test_webhooks_status.py",
    "tests/graphql/ws/test_subscriptions_ws.py",
    "tests/project/test_frontend_conventions.py",
    # The shortcuts that stand in for Django's, graphql-core's and strawberry's own
    # paths (model loading, plain rows, kept optimizer hints, the direct lane) compare
    # themselves with those paths: a newer release that changes them must fail here,
    # not in production.
    "tests/app/test_model_loading.py",
    "tests/graphql/test_graphql_plain_fields.py",
    "tests/graphql/test_graphql_optimizer_hints.py",
    "tests/graphql/ws/test_direct_lane.py",
]


def _runs(path: str) -> bool:
    """pyenv's shims exist for every installed version but fail unless it is selected."""
    try:
        return subprocess.run([path, "--version"], capture_output=True, timeout=10).returncode == 0
    except OSError:
        return False


def interpreter(version: str) -> str:
    """An absolute path to Python ``version`` if this machine has one, else ``version``
    itself (nox then reports it missing and skips the session)."""
    candidates = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidates.append(Path(directory) / f"python{version}")
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    installed = sorted(
        pyenv_root.glob(f"versions/{version}.*/bin/python{version}"),
        key=lambda p: [int(part) for part in p.parts[-3].split(".") if part.isdigit()],
        reverse=True,
    )
    candidates.extend(installed)
    for candidate in candidates:
        if candidate.is_file() and _runs(str(candidate)):
            return str(candidate)
    return version


def _pytest_env() -> dict[str, str]:
    return {"PYTHONDONTWRITEBYTECODE": "1"}


def install_project(session: nox.Session, django: str) -> None:
    """Install the project as a built wheel, built from the tree as it is now.

    setuptools reuses ``build/lib`` between builds and never deletes from it, so a
    module renamed or removed since the last build (a migration renumbered at a
    merge) stayed in the wheel: the installed app then had two leaf migrations.
    """
    shutil.rmtree(Path(__file__).parent / "build", ignore_errors=True)
    session.install(".[dev]", django)


def newest_python() -> str:
    """The newest Python that Django 6 supports and this machine has (3.13, else 3.12)."""
    for version in ("3.13", "3.12"):
        found = interpreter(version)
        if os.path.isabs(found):
            return found
    return "3.13"  # missing: nox skips the session and says so


@nox.session(python=newest_python())
def newest(session: nox.Session) -> None:
    """The fast slice on the newest Django, on the newest Python available."""
    install_project(session, DJANGOS["6.1"])  # a built wheel, not an editable checkout
    session.run("python", "-m", "django", "--version")
    session.run(
        "python",
        "-m",
        "tests.run",
        "--database",
        "sqlite",
        "--durations=10",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        *SLICE,
        env=_pytest_env(),
    )


@nox.session
@nox.parametrize(
    "python,django",
    [(interpreter(python), django) for python, django in COMBINATIONS],
    ids=[f"{python}-django{django}" for python, django in COMBINATIONS],
)
def tests(session: nox.Session, django: str) -> None:
    """The whole suite on one combination, as ``make test`` runs it."""
    install_project(session, DJANGOS[django])
    session.run("python", "-m", "tests.run", *session.posargs, env=_pytest_env())
