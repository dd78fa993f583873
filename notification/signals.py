"""Signals for host projects, sent after the change they announce is committed.

Like django-anymail's ``tracking`` and ``inbound`` signals: a host project
connects a receiver instead of editing the app. Receivers run synchronously in
the process that made the change (an RQ worker, the web server's database
thread, the admin); an exception in one is logged and never undoes or fails
the change, which is already committed.

``sms_status_changed``
    ``sender`` is ``Notification``. Arguments: ``notification_id`` (int),
    ``event`` (the normalised status event, a dict built by
    ``notification.delivery.status_payload``: ``notification_id``,
    ``user_id``, ``status``, ``delivery_status``, ``error_code``,
    ``error_message``, ``at``), ``report`` (the ``SmsStatusEvent`` parsed from
    the provider's status callback, or ``None`` when the change came from the
    send job, a cancel or a resend) and ``raw`` (the callback's form as a dict,
    empty without one).

``sms_received``
    ``sender`` is ``InboundSmsEvent``. Arguments: ``event`` (the
    ``InboundSmsEvent``), ``keyword`` (``"stop"``, ``"start"``, ``"help"`` or
    ``"none"``; opt-outs are already recorded and HELP already answered) and
    ``raw`` (the webhook's form as a dict).

``sms_limit_reached``
    ``sender`` is ``"notification"``. Sent once when a spend limit starts holding
    messages in a period (``notification.guardrails.screen``). Arguments: ``limit``
    (``"daily"`` or ``"monthly"``), ``value`` (the limit, a ``Decimal`` in the price
    unit), ``spent`` (the estimated spend of the period so far), ``period_start``
    and ``period_end`` (UTC datetimes; held messages go out from ``period_end``).
"""

import logging
from collections.abc import Iterable
from typing import Any

from django.dispatch import Signal

from notification.delivery import InboundSmsEvent, SmsStatusEvent

logger = logging.getLogger(__name__)

sms_status_changed = Signal()
sms_received = Signal()
sms_limit_reached = Signal()


def _log_failures(signal_name: str, responses: list[tuple[Any, Any]]) -> None:
    for receiver, response in responses:
        if isinstance(response, Exception):
            logger.error(
                "%s receiver %r raised %s: %s",
                signal_name,
                receiver,
                type(response).__name__,
                response,
                exc_info=response,
            )


def send_status_changed(
    events: Iterable[dict[str, Any]], report: SmsStatusEvent | None = None
) -> None:
    """Send ``sms_status_changed`` once per event (nothing to do without receivers)."""
    from notification.models import Notification

    if not sms_status_changed.has_listeners(Notification):
        return
    for event in events:
        responses = sms_status_changed.send_robust(
            sender=Notification,
            notification_id=int(event["notification_id"]),
            event=event,
            report=report,
            raw=dict(report.raw) if report is not None else {},
        )
        _log_failures("sms_status_changed", responses)


def send_received(event: InboundSmsEvent, keyword: str) -> None:
    """Send ``sms_received`` for one inbound message."""
    responses = sms_received.send_robust(
        sender=InboundSmsEvent, event=event, keyword=keyword, raw=dict(event.raw)
    )
    _log_failures("sms_received", responses)


def send_limit_reached(**kwargs: Any) -> None:
    """Send ``sms_limit_reached`` (see the module docstring for its arguments)."""
    responses = sms_limit_reached.send_robust(sender="notification", **kwargs)
    _log_failures("sms_limit_reached", responses)
