"""Refresh the vendored browser files (GraphiQL, React, graphql-ws...) from the npm registry.

``python -m devstack.refresh_vendor`` (``make vendor``) downloads each pinned
package's tarball once, checks it against the registry's ``dist.integrity``
(sha512), and writes the files the pages load, plus each package's licence,
into ``VENDOR_DIR``; ``manifest.json`` there records versions and sha256 sums.
The result is committed: ``make run`` and ``make test`` serve these files and
never need the registry or the internet (GraphiQL from a CDN stays at
"Loading..." offline). To upgrade, change a version below, run this, commit.
"""

import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VENDOR_DIR = REPO_ROOT / "notification" / "static" / "notification" / "vendor"
MANIFEST = VENDOR_DIR / "manifest.json"
REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Package:
    """One npm package: which files of its tarball to keep, under which names."""

    name: str
    version: str
    #: path inside the tarball (below ``package/``) -> file name in the package's folder
    files: dict[str, str] = field(default_factory=dict)
    #: licence files inside the tarball; empty when the package ships none
    licences: tuple[str, ...] = ("LICENSE",)
    #: why the package is here (shown in the manifest)
    note: str = ""

    @property
    def folder(self) -> str:
        return self.name.replace("@", "").replace("/", "-")


PACKAGES = (
    Package("react", "18.2.0", {"umd/react.production.min.js": "react.production.min.js"}),
    Package(
        "react-dom",
        "18.2.0",
        {"umd/react-dom.production.min.js": "react-dom.production.min.js"},
    ),
    Package(
        "graphiql",
        "3.8.3",
        {"graphiql.min.js": "graphiql.min.js", "graphiql.min.css": "graphiql.min.css"},
        note="bundles @graphiql/react, @graphiql/toolkit, graphql and graphql-ws",
    ),
    Package(
        "@graphiql/plugin-explorer",
        "1.0.2",
        {"dist/index.umd.js": "index.umd.js", "dist/style.css": "style.css"},
        # Published without a licence file: MIT, from the graphql/graphiql monorepo,
        # whose licence is graphiql's (kept above).
        licences=(),
        note="MIT, the graphql/graphiql monorepo's licence: see ../graphiql/LICENSE; "
        "bundles graphiql-explorer",
    ),
    Package("graphiql-explorer", "0.9.0", {}, note="licence only: bundled by plugin-explorer"),
    Package("js-cookie", "3.0.5", {"dist/js.cookie.min.js": "js.cookie.min.js"}),
    Package(
        "graphql-ws",
        "5.16.0",
        {"umd/graphql-ws.min.js": "graphql-ws.min.js"},
        licences=("LICENSE.md",),
        note="the demo page's websocket client",
    ),
)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (fixed https URL)
        return response.read()


def _check_integrity(data: bytes, integrity: str, what: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise SystemExit(f"{what}: tarball does not match the registry's {algorithm} integrity")


def fetch(package: Package) -> dict[str, object]:
    """Download, verify and unpack ``package``; returns its manifest entry."""
    metadata = json.loads(_get(f"{REGISTRY}/{package.name}/{package.version}"))
    tarball = _get(metadata["dist"]["tarball"])
    _check_integrity(tarball, metadata["dist"]["integrity"], f"{package.name}@{package.version}")
    target = VENDOR_DIR / package.folder
    target.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        wanted = {**package.files, **{name: name for name in package.licences}}
        for source, name in wanted.items():
            member = archive.extractfile(f"package/{source}")
            if member is None:
                raise SystemExit(f"{package.name}: {source} is not a file in the tarball")
            content = member.read()
            (target / name).write_bytes(content)
            written[f"{package.folder}/{name}"] = hashlib.sha256(content).hexdigest()
    return {
        "name": package.name,
        "version": package.version,
        "license": metadata.get("license", ""),
        "tarball": metadata["dist"]["tarball"],
        "integrity": metadata["dist"]["integrity"],
        "note": package.note,
        "files": written,
    }


def main() -> int:
    entries = []
    for package in PACKAGES:
        print(f"{package.name}@{package.version}", flush=True)
        entries.append(fetch(package))
    MANIFEST.write_text(json.dumps({"packages": entries}, indent=2) + "\n")
    print(f"wrote {VENDOR_DIR.relative_to(REPO_ROOT)}; commit it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
