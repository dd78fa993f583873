"""Finding Prometheus' binaries (Debian's ``prometheus`` package): skip without them,
except in CI (``CI=true``), where ``.ci/run`` installs them and a skip would hide a gap."""

import os
import shutil

import pytest


def prometheus_binary(name: str) -> str:
    """The path of ``promtool`` or ``prometheus``; skips (fails under CI) when missing."""
    path = shutil.which(name)
    if path is None:
        message = (
            f"`{name}` is not installed (Debian package `prometheus`: "
            "apt-get install prometheus); .ci/run installs it"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
