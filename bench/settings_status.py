"""Bench-only settings: the project's, plus the webhook floor of ``bench/status.py``."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.status_floor"
