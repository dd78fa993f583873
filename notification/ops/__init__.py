"""What an operator's tools call: the probes (``/healthz``, ``/readyz``) and ``/metrics``.

The routes are in ``notification.ops.urls`` (a host project includes them at the
site root); ``probes`` checks the dependencies, ``collector`` reads the database
and Redis at scrape time, ``metrics`` serves the exposition behind a token.
"""
