"""The common case of a status callback in as few SQL statements as possible.

Most callbacks are "sent" and "delivered": they move one SMS row and its
notification forward. Built with the ORM, that was a read, two guarded
UPDATEs and a read of what to publish, and compiling those four queries was
the largest part of the webhook's CPU (README, "Profiling notes").
Here the same rules are two UPDATE statements with ``RETURNING``, which hand
back the values subscribers are sent, so nothing is read twice:

1. the SMS row, guarded by its sid and the statuses it may move from (the
   forward-only rule, evaluated by the database on the row it locks);
2. its notification, guarded by the statuses it may leave; when it may not
   leave its status (canceled, already sent), it is read as it is.

On PostgreSQL both are data-modifying CTEs of a single statement (one round
trip, atomic on its own); on SQLite (3.35+ for ``RETURNING``) they run in one
transaction. Values are written through each field's ``get_db_prep_save``, so
they are stored exactly as the ORM stores them.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Field, Model
from django.utils.dateparse import parse_datetime

from notification.models import Notification, SmsNotification

_SMS_RETURNING = (
    "id",
    "notification_id",
    "to_phone_number",
    "delivery_status",
    "error_code",
    "error_message",
    "status_updated_datetime",
)
_NOTIFICATION_RETURNING = ("user_id", "created_by_id", "status", "updated_datetime")


@dataclass(frozen=True, slots=True)
class SmsChange:
    """Columns to set on the SMS row (``None``: leave it), and the statuses it may move from."""

    delivery_status: str
    at: datetime
    movable_from: list[str]
    set_sent_datetime: bool
    set_delivered_datetime: bool
    error_code: int | None
    error_message: str


@dataclass(frozen=True, slots=True)
class NotificationChange:
    status: str
    at: datetime
    leaves: frozenset[str]
    set_sent_datetime: bool
    status_message: str | None


@dataclass(frozen=True, slots=True)
class Moved:
    """What the two statements returned: enough to publish without another read."""

    sms_id: int
    notification_id: int
    to_phone_number: str
    payload_row: dict[str, Any]


def _prep(model: type[Model], field: str, value: Any) -> Any:
    column = model._meta.get_field(field)
    assert isinstance(column, Field)  # a column of the table, never a reverse relation
    return column.get_db_prep_save(value, connection)


def _as_datetime(value: Any) -> datetime | None:
    """A returned datetime column as an aware datetime in UTC.

    Raw SQL bypasses the ORM's conversion: SQLite hands back text, or a naive
    datetime (Django's sqlite3 converter), both meaning UTC. Left naive, the
    subscription event's ``at`` had no offset and JavaScript read it as local time.
    """
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(value)
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _placeholders(values: list[Any] | frozenset[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _sms_assignments(change: SmsChange) -> tuple[list[str], list[Any]]:
    at = _prep(SmsNotification, "status_updated_datetime", change.at)
    assignments = ["delivery_status = %s", "status_updated_datetime = %s"]
    params: list[Any] = [change.delivery_status, at]
    if change.set_sent_datetime:
        assignments.append("sent_datetime = COALESCE(sent_datetime, %s)")
        params.append(at)
    if change.set_delivered_datetime:
        assignments.append("delivered_datetime = %s")
        params.append(at)
    if change.error_code is not None:
        assignments += ["error_code = %s", "error_message = %s"]
        params += [change.error_code, change.error_message]
    return assignments, params


def _notification_assignments(change: NotificationChange) -> tuple[list[str], list[Any]]:
    at = _prep(Notification, "updated_datetime", change.at)
    assignments = ["status = %s", "updated_datetime = %s"]
    params: list[Any] = [change.status, at]
    if change.set_sent_datetime:
        assignments.append("sent_datetime = COALESCE(sent_datetime, %s)")
        params.append(at)
    if change.status_message is not None:
        assignments.append("status_message = %s")
        params.append(change.status_message)
    return assignments, params


def _tables() -> tuple[str, str]:
    quote = connection.ops.quote_name
    return quote(SmsNotification._meta.db_table), quote(Notification._meta.db_table)


def _in_two_statements(
    sid: str, sms_change: SmsChange, notification_change: NotificationChange | None
) -> tuple | None:
    """Any backend with ``UPDATE ... RETURNING``: the two UPDATEs in one transaction."""
    sms_table, notification_table = _tables()
    returning = ", ".join(_NOTIFICATION_RETURNING)
    assignments, params = _sms_assignments(sms_change)
    # savepoint=False: inside the re-queue path's transaction a savepoint buys nothing.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {sms_table} SET {', '.join(assignments)} WHERE twilio_sid = %s "
            f"AND delivery_status IN ({_placeholders(sms_change.movable_from)}) "
            f"RETURNING {', '.join(_SMS_RETURNING)}",
            [*params, sid, *sms_change.movable_from],
        )
        sms_row = cursor.fetchone()
        if sms_row is None:
            return None
        notification_id = sms_row[_SMS_RETURNING.index("notification_id")]
        notification_row = None
        if notification_change is not None:
            assignments, params = _notification_assignments(notification_change)
            leaves = sorted(notification_change.leaves)
            cursor.execute(
                f"UPDATE {notification_table} SET {', '.join(assignments)} "
                f"WHERE id = %s AND status IN ({_placeholders(leaves)}) RETURNING {returning}",
                [*params, notification_id, *leaves],
            )
            notification_row = cursor.fetchone()
        if notification_row is None:  # it may not leave its status (canceled...): as it is
            cursor.execute(
                f"SELECT {returning} FROM {notification_table} WHERE id = %s", [notification_id]
            )
            notification_row = cursor.fetchone()
    return (*sms_row, *notification_row)


def _in_one_statement(
    sid: str, sms_change: SmsChange, notification_change: NotificationChange | None
) -> tuple | None:
    """PostgreSQL: both UPDATEs as data-modifying CTEs of one statement (one round trip).

    The final SELECT sees the notification as it was before the statement
    (``o``) next to what the second UPDATE returned (``n``, empty when the
    notification may not leave its status): the new values win.
    """
    sms_table, notification_table = _tables()
    sms_assignments, params = _sms_assignments(sms_change)
    params += [sid, *sms_change.movable_from]
    sms_returning = ", ".join(_SMS_RETURNING)
    if notification_change is not None:
        assignments, notification_params = _notification_assignments(notification_change)
        leaves = sorted(notification_change.leaves)
        notification_update = (
            f", n AS (UPDATE {notification_table} AS t SET {', '.join(assignments)} FROM s "
            f"WHERE t.id = s.notification_id AND t.status IN ({_placeholders(leaves)}) "
            f"RETURNING t.id, t.status, t.updated_datetime)"
        )
        params += [*notification_params, *leaves]
    else:
        notification_update = ", n AS (SELECT NULL::bigint AS id, NULL AS status, "
        notification_update += "NULL::timestamptz AS updated_datetime WHERE false)"
    sms_columns = ", ".join(f"s.{column}" for column in _SMS_RETURNING)
    sql = (
        f"WITH s AS (UPDATE {sms_table} SET {', '.join(sms_assignments)} "
        f"WHERE twilio_sid = %s AND delivery_status IN "
        f"({_placeholders(sms_change.movable_from)}) RETURNING {sms_returning})"
        f"{notification_update} "
        f"SELECT {sms_columns}, o.user_id, o.created_by_id, COALESCE(n.status, o.status), "
        f"COALESCE(n.updated_datetime, o.updated_datetime) "
        f"FROM s JOIN {notification_table} AS o ON o.id = s.notification_id "
        f"LEFT JOIN n ON n.id = s.notification_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def move_forward(
    sid: str, sms_change: SmsChange, notification_change: NotificationChange | None
) -> Moved | None:
    """Apply both changes atomically; ``None`` when the SMS row did not move."""
    if connection.vendor == "postgresql":
        row = _in_one_statement(sid, sms_change, notification_change)
    else:
        row = _in_two_statements(sid, sms_change, notification_change)
    if row is None:
        return None
    values = dict(zip(_SMS_RETURNING + _NOTIFICATION_RETURNING, row, strict=True))
    # The row shape ``delivery.payload`` builds events from (its SNAPSHOT_FIELDS).
    payload_row = {
        "id": values["notification_id"],
        "user_id": values["user_id"],
        "created_by_id": values["created_by_id"],
        "status": values["status"],
        "updated_datetime": _as_datetime(values["updated_datetime"]),
        "sms__delivery_status": values["delivery_status"],
        "sms__error_code": values["error_code"],
        "sms__error_message": values["error_message"],
        "sms__status_updated_datetime": _as_datetime(values["status_updated_datetime"]),
        "sms__twilio_sid": sid,
    }
    return Moved(values["id"], values["notification_id"], values["to_phone_number"], payload_row)
