"""GraphiQL and the demo load only files served from here, exactly as npm published them."""

import hashlib
import json
import re

import pytest
from django.contrib.staticfiles import finders

from devstack.demo_server import DEMO_DIR
from devstack.refresh_vendor import MANIFEST, PACKAGES, VENDOR_DIR
from tests.support.settings_helpers import sms_settings

ASSET = re.compile(r'(?:src|href)="([^"]+)"')


@pytest.mark.django_db
@sms_settings(GRAPHIQL=True)  # off by default when DEBUG is (as in the tests)
def test_graphiql_page_loads_only_our_static_files(client):
    page = client.get("/graphql/", HTTP_ACCEPT="text/html").content.decode()
    assets = [url for url in ASSET.findall(page) if not url.startswith("data:")]
    assert len(assets) >= 8  # styles and scripts of GraphiQL, React, the explorer, the page
    for url in assets:
        assert url.startswith("/static/"), url
        assert finders.find(url.removeprefix("/static/")), f"{url} is not a static file"


def test_demo_loads_only_its_own_files():
    page = (DEMO_DIR / "index.html").read_text()
    for url in ASSET.findall(page):
        if url.startswith("data:"):
            continue
        assert "//" not in url, url  # relative: the demo's own origin
        if url.startswith("vendor/"):
            assert (VENDOR_DIR / url.removeprefix("vendor/")).is_file(), url
        else:
            assert (DEMO_DIR / url).is_file(), url


def test_vendored_files_match_the_manifest_and_keep_their_licences():
    manifest = json.loads(MANIFEST.read_text())
    entries = {entry["name"]: entry for entry in manifest["packages"]}
    assert set(entries) == {package.name for package in PACKAGES}
    for package in PACKAGES:
        entry = entries[package.name]
        assert entry["version"] == package.version
        assert entry["integrity"].startswith("sha512-")
        files = entry["files"]
        for name, digest in files.items():
            assert hashlib.sha256((VENDOR_DIR / name).read_bytes()).hexdigest() == digest, name
        # Every package's licence travels with it (or its note says whose applies).
        assert any("LICENSE" in name for name in files) or "licence" in entry["note"], entry
