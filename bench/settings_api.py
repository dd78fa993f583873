"""Bench-only settings: the project's, plus the floor views of ``bench/api.py``."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_floor"
