"""The layout rules of issue 20, kept by the suite rather than by the next review:
no app module over 400 lines, no function over 60, and a README Layout section that
names only files that exist.

Without them the modules grow back into the long ones the reorganisation split
(``_clean_item`` was 121 lines), and the README's map of the app drifts from the
tree it describes, which is the first thing a newcomer reads.
"""

import ast
import re
from pathlib import Path

import pytest

from tests.support.fixtures_services import REPO_ROOT

APP = REPO_ROOT / "notification"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def app_modules() -> list[Path]:
    return sorted(p for p in APP.rglob("*.py") if "migrations" not in p.relative_to(APP).parts)


def test_no_app_module_is_over_400_lines():
    long = {
        str(path.relative_to(REPO_ROOT)): lines
        for path in app_modules()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_app_function_is_over_60_lines():
    long = {}
    for path in app_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if (lines := node.end_lineno - first + 1) > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(REPO_ROOT)}:{node.name}"] = lines
    assert long == {}


def _layout_section() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    match = re.search(r"^## Layout\n(.*?)^## ", readme + "\n## ", re.S | re.M)
    assert match, "README has no Layout section"
    return match.group(1)


def test_the_readme_layout_names_only_files_that_exist():
    named = set(
        re.findall(
            r"`((?:notification|tests|bench|config|schema|jobs)/[\w/.]+)`", _layout_section()
        )
    )
    missing = sorted(path for path in named if not (REPO_ROOT / path).exists())
    assert named and missing == []


@pytest.mark.parametrize("package", ["create", "send", "status", "graphql", "graphql/ws"])
def test_the_readme_layout_names_every_module_of_the_flow_packages(package):
    """Each flow package's row lists its modules by name (``run``, ``wake``...):
    a module added without a word in the map is one a newcomer cannot find."""
    row = next(
        line
        for line in _layout_section().splitlines()
        if line.startswith(f"| `notification/{package}/`")
    )
    modules = sorted(p.stem for p in (APP / package).glob("*.py") if p.stem != "__init__")
    unnamed = [name for name in modules if f"`{name}`" not in row]
    assert unnamed == []
