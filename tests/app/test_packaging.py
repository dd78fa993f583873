"""The wheel built from pyproject.toml: the reusable app and nothing of the project around it."""

import shutil
import subprocess
import sys
import zipfile

from tests.support.fixtures_services import REPO_ROOT

_NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".test-artifacts",
    "build",
    "*.egg-info",
    "__pycache__",
    ".run",
    "staticfiles",
    "*.sqlite3*",
)


def build_wheel(tmp_path) -> tuple[list[str], str]:
    """Build from a copy of the checkout (setuptools writes build files beside the sources)."""
    source = tmp_path / "source"
    shutil.copytree(REPO_ROOT, source, ignore=_NOT_SOURCES)
    # The app ships static files and templates: one of each proves they are packaged.
    (source / "notification" / "static" / "notification").mkdir(parents=True, exist_ok=True)
    (source / "notification" / "static" / "notification" / "probe.css").write_text("a{}")
    (source / "notification" / "templates" / "notification").mkdir(parents=True, exist_ok=True)
    (source / "notification" / "templates" / "notification" / "probe.html").write_text("<p>")
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    [wheel] = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata] = [name for name in names if name.endswith(".dist-info/METADATA")]
        return names, archive.read(metadata).decode()


def test_the_wheel_holds_the_app_its_migrations_templates_and_static_files_only(tmp_path):
    names, _metadata = build_wheel(tmp_path)
    top_level = {
        name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")
    }
    assert top_level == {"notification"}  # no tests, emulator, devstack, config or schema
    assert "notification/migrations/0001_initial.py" in names
    assert "notification/models.py" in names
    assert "notification/backends/locmem.py" in names
    assert "notification/static/notification/probe.css" in names
    assert "notification/templates/notification/probe.html" in names


def test_the_wheel_says_which_django_and_python_it_supports(tmp_path):
    _names, metadata = build_wheel(tmp_path)
    lines = metadata.splitlines()
    assert "Requires-Python: >=3.11" in lines
    assert any(line.startswith("Requires-Dist: Django") and "<7" in line for line in lines)
    for classifier in (
        "Framework :: Django :: 5.2",
        "Framework :: Django :: 6.1",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
    ):
        assert f"Classifier: {classifier}" in lines
