"""``GET /metrics``: the Prometheus exposition, behind ``METRICS_TOKEN``.

Off (404) while ``METRICS_TOKEN`` is empty: the figures (backlog, error codes,
traffic) are business data, and an endpoint that exists unprotected by default
would be exposed by the first deploy that forgets it. With a token, a request
must carry ``Authorization: Bearer <token>`` (Prometheus' ``authorization``
scrape setting); the comparison is constant-time so the token cannot be
guessed byte by byte from response times.

What is exposed: this process's counters (``notification.instruments``), or,
with ``PROMETHEUS_MULTIPROC_DIR`` set, the sum over every process on this host
that writes there (web processes, RQ workers and their job processes; those that
exited are folded into archives by ``notification.ops.multiproc``); plus the
gauges read at scrape time (``notification.ops.collector``).
"""

import hmac
import os
from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from notification.conf import app_settings
from notification.ops import multiproc
from notification.ops.collector import ReadinessCollector, StateCollector


class _ThisProcess:
    """The default registry (this process's metrics) as one collector of a scrape's registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()

    def describe(self) -> list[Metric]:
        return []


def scrape_registry() -> CollectorRegistry:
    """A registry for one scrape: counters (this process's or the host's) plus the state."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(StateCollector())
    registry.register(ReadinessCollector())
    return registry


def _authorized(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """The exposition (text format, or OpenMetrics when the scraper asks for it)."""
    token = app_settings.METRICS_TOKEN
    if not token:
        return HttpResponse("Not found", status=404, content_type="text/plain")
    if not _authorized(request, token):
        response = HttpResponse("Unauthorized", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return HttpResponse(encoder(scrape_registry()), content_type=content_type)
    # Exited processes' files folded first, so the scrape reads few files
    # (notification.ops.multiproc); the lock keeps other scrapers on this host out.
    with multiproc.exclusive(directory):
        multiproc.compact(directory)
        body = encoder(scrape_registry())
    return HttpResponse(body, content_type=content_type)
