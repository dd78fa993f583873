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
gauges read at scrape time (``notification.ops.metrics``).

Collector (was ``notification.ops.collector``):

The gauges read at scrape time: what the database and Redis hold right now.

A few grouped queries, each answered from an index (SMS rows by delivery
status; notifications by status, then the oldest ``unknown`` when there is one;
the due backlog by priority and its oldest publish time; the rows in backoff by
priority and by the guardrail holding them; the day's and month's spend), one
Redis MGET (the last send run's and reconciliation pass's ends) and django-rq's
collector (queues and workers), whatever the number of rows. The result is
cached for ``METRICS_CACHE_SECONDS`` per process, so several Prometheus
servers, or a scrape interval shorter than the cache, never multiply the
database's work. A source that fails (database or Redis down) is left out of
that scrape and reported as ``sms_metrics_source_up{source} 0`` instead of
failing the whole scrape: ``/metrics`` is how an operator sees the outage.
"""

import hmac
import logging
import os
import time
from collections.abc import Iterator
from datetime import datetime

from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_rq.contrib.prometheus import RQCollector
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from notification.conf import app_settings
from notification.guardrails import costs as spend
from notification.guardrails import screen
from notification.jobs.reconcile import LAST_RECONCILE_KEY, LAST_RUN_KEY, last_runs_finished
from notification.models import (
    DeliveryStatusChoices,
    Notification,
    NotificationPriorityChoices,
    NotificationStatusChoices,
    SmsNotification,
)
from notification.ops import multiproc, probes
from notification.ops.probes import TimedCache
from notification.send.wake import sms_connection

# -------- collector ---------------------------------------------------------------------

logger = logging.getLogger(__name__)

#: ``delivery_status`` label of rows Twilio has not accepted yet (stored as "").
NOT_SUBMITTED = "not_submitted"
#: ``reason`` labels of ``sms_held_messages`` (always present, 0 when none is held).
HELD_REASONS = ("quiet_hours", "daily_spend_limit", "monthly_spend_limit", "price_unknown")
#: ``period`` label of ``sms_spend``/``sms_spend_limit`` for each spend limit.
SPEND_PERIODS = {spend.DAILY: "day", spend.MONTHLY: "month"}


def _delivery_statuses() -> Iterator[Metric]:
    family = GaugeMetricFamily(
        "sms_messages",
        "SMS rows by Twilio delivery status (not_submitted: not accepted by Twilio yet).",
        labels=["delivery_status"],
    )
    counts = {value or NOT_SUBMITTED: 0 for value in DeliveryStatusChoices.values}
    # One pass over the table: the planner hashes the statuses whatever index exists
    # (measured in bench/metrics_scrape.py), and an index on this column would cost
    # every status callback one more index write.
    rows = (
        SmsNotification.objects.order_by("delivery_status")
        .values_list("delivery_status")
        .annotate(n=Count("*"))
    )
    for status, n in rows:
        counts[status or NOT_SUBMITTED] = n
    for status, n in counts.items():
        family.add_metric([status], n)
    yield family


def _notification_statuses(now: float) -> Iterator[Metric]:
    family = GaugeMetricFamily(
        "sms_notifications",
        "Notifications by status (unknown: may or may not have reached Twilio).",
        labels=["status"],
    )
    counts = dict.fromkeys(NotificationStatusChoices.values, 0)
    rows = Notification.objects.order_by("status").values_list("status").annotate(n=Count("*"))
    for status, n in rows:
        counts[status] = n
    for status, n in counts.items():
        family.add_metric([status], n)
    yield family
    oldest_unknown = None
    if counts[NotificationStatusChoices.UNKNOWN]:  # usually none: no query
        oldest_unknown = Notification.objects.filter(
            status=NotificationStatusChoices.UNKNOWN
        ).aggregate(oldest=Min("updated_datetime"))["oldest"]
    yield GaugeMetricFamily(
        "sms_oldest_unknown_age_seconds",
        "Seconds since the longest-unknown notification last changed (0: none is unknown).",
        value=max(0.0, now - oldest_unknown.timestamp()) if oldest_unknown else 0.0,
    )


def _pending(now: float) -> Iterator[Metric]:
    """Due = published pending notifications less those waiting for a retry.

    The same rows as ``sending.selection.due_sms`` (the send job's rule, checked
    against it in the tests), counted in two cheap steps instead of its join: the
    published pending notifications come from the send job's own partial index
    (``notification_due_pending_idx``, index-only), and the few rows in retry
    backoff from ``sms_retry_waiting_idx``. As one join, the query read the whole
    SMS table (40 ms at 100,000 rows; README "Operations").
    """
    names = {choice.value: choice.name.lower() for choice in NotificationPriorityChoices}
    counts = dict.fromkeys(names.values(), 0)
    published = timezone.now()
    oldest = None
    rows = (
        Notification.objects.filter(
            status=NotificationStatusChoices.PENDING, publish_datetime__lte=published
        )
        .order_by()
        .values_list("priority")
        .annotate(n=Count("*"), oldest=Min("publish_datetime"))
    )
    for priority, n, first in rows:
        name = names.get(priority, str(priority))
        counts[name] = counts.get(name, 0) + n
        if first is not None and (oldest is None or first < oldest):
            oldest = first
    # The same few rows, grouped also by the guardrail holding them (from the status
    # message the guardrail wrote: ``screen.held_reason``), in the same query.
    waiting = (
        SmsNotification.objects.filter(
            next_attempt_datetime__gt=published,
            notification__status=NotificationStatusChoices.PENDING,
            notification__publish_datetime__lte=published,
        )
        .order_by()
        .annotate(held=screen.held_reason())
        .values_list("notification__priority", "held")
        .annotate(n=Count("*"))
    )
    retrying = 0
    held = dict.fromkeys(HELD_REASONS, 0)
    for priority, reason, n in waiting:
        name = names.get(priority, str(priority))
        counts[name] = counts.get(name, 0) - n
        retrying += n
        if reason is not None:
            held[reason] = held.get(reason, 0) + n
    yield from _pending_families(now, counts, retrying, held, oldest)


def _pending_families(
    now: float,
    counts: dict[str, int],
    retrying: int,
    held: dict[str, int],
    oldest: datetime | None,
) -> Iterator[Metric]:
    """The metric families of ``_pending``'s counts (due by priority, retrying, held, oldest)."""
    family = GaugeMetricFamily(
        "sms_pending_messages",
        "SMS due for sending (published, past any retry backoff) and not yet handed to Twilio.",
        labels=["priority"],
    )
    for name, n in counts.items():
        family.add_metric([name], n)
    yield family
    yield GaugeMetricFamily(
        "sms_retry_waiting_messages",
        "Published SMS waiting for their retry backoff to end before they are due again.",
        value=retrying,
    )
    held_family = GaugeMetricFamily(
        "sms_held_messages",
        "Published pending SMS a guardrail holds back now, by reason (quiet_hours, "
        "daily_spend_limit, monthly_spend_limit, price_unknown); also in "
        "sms_retry_waiting_messages.",
        labels=["reason"],
    )
    for reason, n in held.items():
        held_family.add_metric([reason], n)
    yield held_family
    yield GaugeMetricFamily(
        "sms_oldest_pending_age_seconds",
        "Seconds since the publish time of the oldest published pending SMS, whether due "
        "now or waiting for a retry (0: none).",
        value=max(0.0, now - oldest.timestamp()) if oldest else 0.0,
    )


def _spend() -> Iterator[Metric]:
    """The current UTC day's and month's estimated spend, as the spend limits count it
    (``guardrails.spend.period_spend``: one aggregate over the rows priced this month)."""
    spent = spend.period_spend(timezone.now())
    unit = str(app_settings.SMS_PRICE_UNIT)
    family = GaugeMetricFamily(
        "sms_spend",
        "Estimated SMS spend of the current UTC day and month (what the spend limits count).",
        labels=["period", "unit"],
    )
    limits = GaugeMetricFamily(
        "sms_spend_limit",
        "SMS_DAILY_SPEND_LIMIT and SMS_MONTHLY_SPEND_LIMIT (0: off), in SMS_PRICE_UNIT.",
        labels=["period"],
    )
    for name, period in SPEND_PERIODS.items():
        family.add_metric([period, unit], float(spent[name]))
        limits.add_metric([period], float(spend.limit_of(name)))
    yield family
    yield limits


def _last_run() -> Iterator[Metric]:
    finished = last_runs_finished(sms_connection(), LAST_RUN_KEY, LAST_RECONCILE_KEY)
    if finished[LAST_RUN_KEY] is not None:  # absent until a run records one (alerts use absent())
        yield GaugeMetricFamily(
            "sms_last_run_timestamp_seconds",
            "Unix time the last scheduled send run finished (kept in Redis across restarts).",
            value=finished[LAST_RUN_KEY],
        )
    if finished[LAST_RECONCILE_KEY] is not None:
        yield GaugeMetricFamily(
            "sms_reconcile_last_pass_timestamp_seconds",
            "Unix time the last scheduled reconciliation pass finished (kept in Redis).",
            value=finished[LAST_RECONCILE_KEY],
        )


def collect_state() -> list[Metric]:
    """One uncached reading of every source (what the cache stores)."""
    now = time.time()
    families: list[Metric] = [
        GaugeMetricFamily(
            "sms_send_interval_seconds",
            "TWILIO_SMS_INTERVAL: seconds between scheduled send runs.",
            value=float(app_settings.TWILIO_SMS_INTERVAL),
        )
    ]
    up = GaugeMetricFamily(
        "sms_metrics_source_up",
        "1 when this scrape could read the source (database, redis, rq), 0 when it failed.",
        labels=["source"],
    )
    sources = {
        "database": lambda: [
            *_delivery_statuses(),
            *_notification_statuses(now),
            *_pending(now),
            *_spend(),
        ],
        "redis": lambda: list(_last_run()),
        # django-rq's own collector: rq_workers, rq_jobs, rq_job_*_total...
        "rq": lambda: list(RQCollector().collect()),
    }
    # A dependency the readiness checks (which have timeouts) just found failing is not
    # read: a hung database or Redis would otherwise hold the scrape, and every scrape
    # queued behind the cache's lock, for as long as the connection's own timeout
    # (none, for django-rq's Redis by default).
    ready = probes.readiness()
    needs = {"database": "database", "redis": "redis_queue", "rq": "redis_queue"}
    for source, read in sources.items():
        if not ready[needs[source]].ok:
            up.add_metric([source], 0)
            continue
        try:
            families.extend(read())
        except Exception as exc:
            logger.warning("metrics: could not read the %s: %s", source, type(exc).__name__)
            up.add_metric([source], 0)
        else:
            up.add_metric([source], 1)
    families.append(up)
    return families


_cache: TimedCache[list[Metric]] = TimedCache()


class StateCollector:
    """A prometheus-client collector over ``collect_state``, cached per process."""

    def collect(self) -> Iterator[Metric]:
        yield from _cache.get(collect_state, float(app_settings.METRICS_CACHE_SECONDS))

    def describe(self) -> list[Metric]:
        return []  # not known before reading: never collect at registration


def clear_cache() -> None:
    """Forget the cached reading (tests, and a scrape right after a change)."""
    _cache.clear()


class ReadinessCollector:
    """``sms_ready{check}``: what ``/readyz`` answers, for alerting without a probe exporter.

    The same checks and the same cache as ``/readyz`` (``notification.ops.probes``).
    """

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "sms_ready",
            "1 when the readiness check passes (as /readyz answers), 0 when it fails.",
            labels=["check"],
        )
        for name, result in probes.readiness().items():
            family.add_metric([name], 1 if result.ok else 0)
        yield family

    def describe(self) -> list[Metric]:
        return []


# -------- metrics -----------------------------------------------------------------------


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
