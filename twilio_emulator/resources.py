"""JSON bodies of the Message resource, field for field as Twilio returns them.

The field set follows the SDK's ``MessageInstance`` (twilio/rest/api/v2010/
account/message/__init__.py): dates are RFC 2822 strings, ``num_segments`` and
``num_media`` are strings, ``error_code`` is an integer or null.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from twilio_emulator.errors import API_VERSION
from twilio_emulator.state import Message

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def messages_uri(account_sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"


def message_uri(account_sid: str, sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json"


def rfc2822(value) -> str | None:
    return format_datetime(value) if value is not None else None


def message_resource(message: Message) -> dict[str, Any]:
    base = f"/{API_VERSION}/Accounts/{message.account_sid}/Messages/{message.sid}"
    # With a Messaging Service Twilio has not picked a sender or counted segments yet.
    not_yet_routed = message.status == "accepted"
    return {
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": rfc2822(message.date_created),
        "date_sent": rfc2822(message.date_sent),
        "date_updated": rfc2822(message.date_updated),
        "direction": "outbound-api",
        "error_code": message.error_code,
        "error_message": message.error_message,
        "from": message.from_,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": str(len(message.media_urls)),
        "num_segments": "0" if not_yet_routed else str(message.segments),
        "price": message.price,
        "price_unit": "USD",
        "sid": message.sid,
        "status": message.status,
        "subresource_uris": {
            "media": f"{base}/Media.json",
            "feedback": f"{base}/Feedback.json",
        },
        "to": message.to,
        "uri": f"{base}.json",
    }


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


#: The list's sent-date filters as the SDK sends them: ``DateSent`` (that day),
#: ``DateSent<`` (on or before) and ``DateSent>`` (on or after), each a GMT date
#: (``YYYY-MM-DD``) or, from the SDK's datetime arguments, ``YYYY-MM-DDThh:mm:ssZ``
#: (https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources).
DATE_SENT_FILTERS = ("DateSent", "DateSent<", "DateSent>")


def _when(raw: str, end_of_day: bool) -> datetime | None:
    """A filter value as a UTC datetime; a bare date is its first (or last) second."""
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def date_sent_filter(query: dict[str, list[str]]) -> Callable[[datetime | None], bool] | None:
    """A predicate on a message's ``date_sent`` for the query's filters (``None``: none).

    A message that has not been sent yet has no sent date, so no sent-date
    filter matches it: a listing filtered by ``DateSent`` does not show
    messages still waiting in the sender's queue.
    """
    exact = (query.get("DateSent") or [""])[0]
    before = (query.get("DateSent<") or [""])[0]
    after = (query.get("DateSent>") or [""])[0]
    if not (exact or before or after):
        return None
    low = _when(after, end_of_day=False) if after else None
    high = _when(before, end_of_day=True) if before else None
    if exact:
        low, high = _when(exact, end_of_day=False), _when(exact, end_of_day=True)

    def matches(sent: datetime | None) -> bool:
        if sent is None:
            return False
        return (low is None or sent >= low) and (high is None or sent <= high)

    return matches


def message_page(
    account_sid: str, messages: list[Message], query: dict[str, list[str]]
) -> dict[str, Any]:
    """One page of the list, with Twilio's paging keys (``Page``/``PageSize``/``PageToken``)."""
    page_size = min(
        max(1, _int((query.get("PageSize") or [None])[0], DEFAULT_PAGE_SIZE)), MAX_PAGE_SIZE
    )
    page = max(0, _int((query.get("Page") or [None])[0], 0))
    start = page * page_size
    records = messages[start : start + page_size]
    filters = {
        key: query[key][0]
        for key in ("To", "From", *DATE_SENT_FILTERS)
        if query.get(key) and query[key][0]
    }
    base = messages_uri(account_sid)

    def page_uri(number: int) -> str:
        params = {**filters, "PageSize": page_size, "Page": number}
        if number:
            params["PageToken"] = f"PA{number}"
        return f"{base}?{urlencode(params)}"

    has_next = start + page_size < len(messages)
    return {
        "end": start + len(records) - 1 if records else start,
        "first_page_uri": page_uri(0),
        "messages": [message_resource(m) for m in records],
        "next_page_uri": page_uri(page + 1) if has_next else None,
        "page": page,
        "page_size": page_size,
        "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        "start": start,
        "uri": page_uri(page),
    }
