"""Settings for a bare ``pytest`` (an IDE, a newcomer): the project's, needing no environment.

pytest-django imports the settings before any conftest runs, and
``config.settings`` refuses to start without ``DJANGO_SECRET_KEY`` when DEBUG is
off. The launcher (``python -m tests.run``, ``make test``) sets one; a plain
``pytest`` from the repository root gets this test-only key instead. Everything
else is ``config.settings`` unchanged: subprocesses the tests start use it too.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")

from config.settings import *  # noqa: E402, F403
