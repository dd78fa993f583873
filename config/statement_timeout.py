"""A PostgreSQL statement timeout for the web process's connections.

One slow statement (a pathological filter, a lock wait) must not hold a request
thread and a database connection for ever. The limit is set on each new
connection of the process that calls ``install`` (``config/asgi.py``), not in
``DATABASES``, because RQ workers and management commands share the settings
and legitimately run long statements (a 1,000-row batch, a migration).
A statement that passes it fails with PostgreSQL's ``QueryCanceled``.
"""

from typing import Any

from django.conf import settings
from django.db.backends.signals import connection_created


def set_statement_timeout(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: apply ``DATABASE_STATEMENT_TIMEOUT`` (seconds)."""
    seconds = settings.DATABASE_STATEMENT_TIMEOUT
    if connection.vendor != "postgresql" or not seconds:
        return
    with connection.cursor() as cursor:
        # A session setting: it lasts as long as the (possibly persistent) connection.
        timeout = f"{int(seconds * 1000)}ms"
        cursor.execute("SELECT set_config('statement_timeout', %s, false)", [timeout])


def install() -> None:
    connection_created.connect(set_statement_timeout, dispatch_uid="web-statement-timeout")
