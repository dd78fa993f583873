"""Static files with DEBUG off, from the web process alone (WhiteNoise), as a Procfile deploy runs.

``collectstatic`` writes hashed, compressed copies to a temp ``DJANGO_STATIC_ROOT``;
uvicorn then serves the project with ``DJANGO_DEBUG=0`` and ``GRAPHIQL=true``,
and a real browser must see GraphiQL running and the admin styled. Without
WhiteNoise every one of those files was a 404 and GraphiQL stayed at "Loading…".
"""

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model

from tests.support.browser_support import open_browser, require_chromium
from tests.support.fixtures_services import REPO_ROOT
from tests.support.live_support import bound_socket, run_uvicorn

QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
# WhiteNoise's answer for a name with a content hash: cache for ten years, never revalidate.
FAR_FUTURE = "max-age=315360000, public, immutable"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> Path:
    """``collectstatic`` as a deploy runs it (once for the module: it compresses every file)."""
    from django.conf import settings

    root = tmp_path_factory.mktemp("static") / "staticfiles"
    env = {**os.environ, "DJANGO_SECRET_KEY": settings.SECRET_KEY, "DJANGO_STATIC_ROOT": str(root)}
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--skip-checks"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collected.returncode == 0, collected.stderr
    assert (root / "staticfiles.json").is_file()
    return root


@pytest.fixture
def production_like_server(subprocess_env, static_root) -> Iterator[str]:
    env = {
        **subprocess_env,
        "DJANGO_STATIC_ROOT": str(static_root),
        "DJANGO_DEBUG": "0",
        "GRAPHIQL": "true",
    }
    with run_uvicorn(env, bound_socket()) as url:
        yield url


def test_hashed_static_files_are_compressed_and_cached_for_ever(production_like_server):
    page = httpx.get(
        production_like_server + "/graphql/", headers={"Accept": "text/html"}, trust_env=False
    )
    assert page.status_code == 200
    scripts = re.findall(r'src="(/static/notification/vendor/graphiql/[^"]+)"', page.text)
    assert scripts and all(re.search(r"\.[0-9a-f]{12}\.js$", src) for src in scripts), scripts

    asset = httpx.get(
        production_like_server + scripts[0],
        headers={"Accept-Encoding": "gzip"},
        trust_env=False,
    )
    assert asset.status_code == 200
    assert asset.headers["Cache-Control"] == FAR_FUTURE
    assert asset.headers["Content-Encoding"] == "gzip"
    # A name without a hash keeps a short lifetime (it may change under the same name).
    plain = httpx.head(
        production_like_server + "/static/notification/vendor/graphiql/graphiql.min.js",
        trust_env=False,
    )
    assert plain.status_code == 200
    assert "immutable" not in plain.headers["Cache-Control"]


def test_graphiql_and_the_admin_render_styled_with_debug_off(production_like_server):
    require_chromium()
    get_user_model().objects.create_superuser("admin", password=PASSWORD)
    with open_browser([production_like_server], "static-files") as browser:
        page = browser.page
        page.goto(production_like_server + "/graphql/")
        page.wait_for_selector(QUERY_EDITOR)  # GraphiQL's scripts ran
        # graphiql.min.css applied: its container is a flex box (unstyled, a plain block).
        display = page.evaluate(
            "getComputedStyle(document.querySelector('.graphiql-container')).display"
        )
        assert display == "flex"

        page.goto(production_like_server + "/admin/login/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#site-name")
        # The admin's base.css applied: the header has its colour, the body its font.
        header = page.evaluate(
            "getComputedStyle(document.querySelector('#header')).backgroundColor"
        )
        assert header not in ("rgba(0, 0, 0, 0)", "transparent"), header
        stylesheets = page.evaluate("[...document.styleSheets].map(s => s.href).filter(Boolean)")
        assert any(re.search(r"/static/admin/css/base\.[0-9a-f]{12}\.css$", s) for s in stylesheets)
        browser.assert_clean()
