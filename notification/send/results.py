"""Writing a batch's outcomes back: a constant number of queries per batch.

All rows are written with one ``UPDATE ... FROM (VALUES ...)`` per table (below),
guarded by our claim token, so a row that is no longer ours (recovered after an
implausibly long stall) is never overwritten. After commit, status callbacks that
raced the write are settled (``announce_written``), then the status-change events
fire once. How a failure is retried and worded is ``notification.delivery``'s. A
lost database connection during the write is retried with the answers kept in
memory (``connections.write_with_retry``).

Bulk write: one ``UPDATE ... FROM (VALUES ...)`` for many rows with different values.

Django's ``bulk_update`` builds a ``CASE WHEN pk = ... THEN ...`` expression per
field and row: over a thousand expression objects for a 100-row batch, most of a
batch's time (README, "Profiling notes"). This writes the same rows with one
statement joining a ``VALUES`` list (PostgreSQL, SQLite 3.33+). Values go through
each field's ``get_db_prep_save`` (stored exactly as the ORM stores them) and, on
PostgreSQL, are cast to the column type because ``VALUES`` literals arrive untyped.

On PostgreSQL the rows arrive as one JSON parameter (``json_to_recordset``, typed
by the column list): psycopg's client-side quoting of a placeholder per value
(1,400 for 100 SMS rows) was a quarter of a send worker's CPU (README,
"Benchmarks"). ``json.dumps`` is C; datetimes travel as ISO 8601 with their
offset and decimals as strings, which PostgreSQL's input functions read back
exactly. SQLite binds its parameters in C, so it keeps the ``VALUES`` list.
"""

import json
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from operator import attrgetter
from typing import Any

from django.db import connection, transaction
from django.db.models import Field, Model

from notification import delivery as retry
from notification.backends.base import FailureKind, SendFailure
from notification.conf import app_settings
from notification.connections import write_with_retry
from notification.delivery import describe_error, opt_out_reason, record_twilio_opt_outs
from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.send.claim import ClaimedBatch
from notification.send.dispatch import SendOutcome
from notification.status.apply import settle_early_callbacks, settle_unknown_callbacks
from notification.status.events import notify_status_changed

# -------- bulk_write --------------------------------------------------------------------


def _max_rows(columns: int) -> int:
    if connection.vendor == "sqlite":
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        return max(1, limit // columns)
    return 5000


def _column_field(model: type[Model], name: str) -> Field:
    """The field of a table column (``fields`` never name a reverse relation)."""
    field = model._meta.get_field(name)
    assert isinstance(field, Field), f"{model.__name__}.{name} is not a column"
    return field


def _column(field: Field) -> str:
    assert field.column is not None, f"{field} has no column"
    return field.column


def _assignments(model_fields: list[Field], keep_if_set: Sequence[str], *, cast: bool) -> list[str]:
    """The ``SET`` clauses: each column from its ``VALUES`` column (cast on PostgreSQL).

    PostgreSQL and SQLite both name the columns of an unaliased VALUES list
    column1, column2, ... (a CTE with named columns would also work, but SQLite
    then reports no rowcount); column1 is the primary key.
    """
    qn = connection.ops.quote_name
    assignments = []
    for index, field in enumerate(model_fields):
        column = qn(_column(field))
        ref = f"v.column{index + 2}"
        new = f"CAST({ref} AS {field.cast_db_type(connection)})" if cast else ref
        if field.name in keep_if_set:
            new = f"CASE WHEN t.{column} = '' THEN {new} ELSE t.{column} END"
        assignments.append(f"{column} = {new}")
    return assignments


@dataclass(frozen=True)
class _Update:
    """One guarded ``UPDATE table AS t SET ... FROM <rows> AS v WHERE ...``, whatever
    form the rows travel in: both forms share the statement and the prepared values,
    so they cannot drift apart (a column stored one way on SQLite, another on PostgreSQL).
    """

    fields: list[Field]
    head: str  # UPDATE ... SET ...
    where: str  # WHERE t.pk = v.column1 [AND guard]
    where_params: Sequence[Any]

    def sql(self, rows_source: str) -> str:
        return f"{self.head} FROM {rows_source} {self.where}"

    def prepared(self, rows: Sequence[tuple[int, Sequence[Any]]]) -> list[list[Any]]:
        """Each row as ``[pk, *values]``, each distinct (column, type, value) prepared once
        (most columns hold one value per batch: 1,700 ``get_db_prep_save`` calls were a
        twelfth of the send worker's main thread; the type keeps ``1`` and ``True`` apart)."""
        memo: dict[tuple[int, type, Any], Any] = {}

        def prep(index: int, field: Field, value: Any) -> Any:
            key = (index, type(value), value)
            try:
                return memo[key]
            except KeyError:
                memo[key] = prepared = field.get_db_prep_save(value, connection)
                return prepared
            except TypeError:  # unhashable (a JSON field's dict): prepared on its own
                return field.get_db_prep_save(value, connection)

        return [
            [pk, *(prep(i, f, v) for i, (f, v) in enumerate(zip(self.fields, values, strict=True)))]
            for pk, values in rows
        ]


def _update_from_values(update: _Update, rows: Sequence[tuple[int, Sequence[Any]]]) -> int:
    """SQLite: the UPDATE joined to a ``VALUES`` list, in chunks under its parameter limit."""
    width = len(update.fields) + 1
    chunk = _max_rows(width)
    updated = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk):
            part = update.prepared(rows[start : start + chunk])
            placeholders = ", ".join("(" + ", ".join(["%s"] * width) + ")" for _ in part)
            params = [value for row in part for value in row]
            sql = update.sql(f"(VALUES {placeholders}) AS v")
            cursor.execute(sql, [*params, *update.where_params])
            updated += cursor.rowcount
    return updated


def update_rows(
    model: type[Model],
    rows: Sequence[tuple[int, Sequence[Any]]],
    fields: Sequence[str],
    *,
    keep_if_set: Sequence[str] = (),
    where_sql: str = "",
    where_params: Sequence[Any] = (),
) -> int:
    """Set ``fields`` of each (pk, values) row; ``where_sql`` (on alias ``t``) guards it.

    Returns the number of rows updated. The number of statements depends only
    on the database's parameter limit, never on which values the rows hold.
    """
    if not rows:
        return 0
    connection.ensure_connection()
    qn = connection.ops.quote_name
    meta = model._meta
    model_fields = [_column_field(model, name) for name in fields]
    cast = connection.vendor == "postgresql"
    assignments = _assignments(model_fields, keep_if_set, cast=cast)
    pk_column = qn(_column(_column_field(model, meta.pk.name)))
    pk_value = f"CAST(v.column1 AS {meta.pk.cast_db_type(connection)})" if cast else "v.column1"
    update = _Update(
        fields=model_fields,
        head=f"UPDATE {qn(meta.db_table)} AS t SET {', '.join(assignments)}",
        where=f"WHERE t.{pk_column} = {pk_value}" + (f" AND ({where_sql})" if where_sql else ""),
        where_params=where_params,
    )
    if cast:
        return _update_from_json(model, update, rows)
    return _update_from_values(update, rows)


def _json_value(value: Any) -> Any:
    """What ``json.dumps`` cannot encode itself, as PostgreSQL's input syntax."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"bulk_write cannot send {type(value).__name__} as JSON")


def _update_from_json(
    model: type[Model], update: _Update, rows: Sequence[tuple[int, Sequence[Any]]]
) -> int:
    """PostgreSQL: the same UPDATE joined to ``json_to_recordset`` of every row at once."""
    types = [model._meta.pk.cast_db_type(connection)]
    types += [field.cast_db_type(connection) for field in update.fields]
    names = [f"column{index + 1}" for index in range(len(types))]
    record = ", ".join(f"{name} {kind}" for name, kind in zip(names, types, strict=True))
    sql = update.sql(f"json_to_recordset(CAST(%s AS json)) AS v({record})")
    chunk = _max_rows(len(types))
    updated = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk):
            document = [
                dict(zip(names, row, strict=True))
                for row in update.prepared(rows[start : start + chunk])
            ]
            cursor.execute(sql, [json.dumps(document, default=_json_value), *update.where_params])
            updated += cursor.rowcount
    return updated


# -------- results -----------------------------------------------------------------------

SMS_FIELDS = [
    "twilio_sid",
    "delivery_status",
    "segments",
    "encoding",
    "error_code",
    "error_message",
    "attempts",
    "next_attempt_datetime",
    "claimed_datetime",
    "claim_token",
    "send_started_datetime",
    "sent_datetime",
    "status_updated_datetime",
]
NOTIFICATION_FIELDS = ["status", "status_message", "sent_datetime", "updated_datetime"]
_sms_values, _notification_values = attrgetter(*SMS_FIELDS), attrgetter(*NOTIFICATION_FIELDS)

Status = NotificationStatusChoices


@dataclass
class ResultCounts:
    """How a batch's claimed rows ended.

    Every claimed row lands in exactly one of sent, failed, retried, unknown and
    skipped_opt_out; ``segments`` counts those of the sent messages.
    """

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0
    skipped_opt_out: int = 0
    segments: int = 0


def _describe(failure: SendFailure) -> str:
    return describe_error(failure.code, failure.message)


def _release_claim(sms: SmsNotification) -> None:
    sms.claimed_datetime = None
    sms.claim_token = ""


def _apply_success(sms: SmsNotification, outcome: SendOutcome, counts: ResultCounts) -> None:
    note = sms.notification
    sms.twilio_sid = outcome.sid
    # The first status only comes in this answer (a callback that raced our
    # write and already moved it on is kept: see ``write_results``).
    sms.delivery_status = outcome.status
    sms.segments = outcome.segments
    sms.error_code, sms.error_message = None, ""
    sms.attempts += 1
    sms.next_attempt_datetime = None
    sms.sent_datetime = outcome.finished_at
    sms.status_updated_datetime = outcome.finished_at
    note.status, note.status_message = Status.SENT, ""
    note.sent_datetime = outcome.finished_at
    counts.sent += 1
    counts.segments += outcome.segments


def _apply_failure(
    sms: SmsNotification,
    failure: SendFailure,
    now: datetime,
    max_attempts: int,
    counts: ResultCounts,
) -> None:
    note = sms.notification
    sms.error_code, sms.error_message = failure.code, failure.message
    sms.attempts += 1
    if failure.kind is FailureKind.AMBIGUOUS:
        # At most once: it may be at Twilio, so it is never resent by itself.
        note.status = Status.UNKNOWN
        note.status_message = retry.ambiguous_message(_describe(failure))
        counts.unknown += 1
        return
    sms.send_started_datetime = None  # answered: certainly not queued at Twilio
    if failure.kind is FailureKind.RETRYABLE and retry.may_retry(sms.attempts, max_attempts):
        sms.next_attempt_datetime = retry.next_attempt_datetime(now, sms.attempts)
        note.status = Status.PENDING
        note.status_message = retry.retry_message(sms.attempts, _describe(failure))
        counts.retried += 1
        return
    note.status = Status.FAILED
    note.status_message = _describe(failure)
    if failure.kind is FailureKind.RETRYABLE:
        note.status_message = retry.gave_up_message(sms.attempts, _describe(failure))
    sms.next_attempt_datetime = None
    counts.failed += 1


def _apply_opt_out(sms: SmsNotification, counts: ResultCounts) -> None:
    reason = opt_out_reason(sms.to_phone_number)
    sms.error_code, sms.error_message = None, reason
    sms.notification.status = Status.FAILED
    sms.notification.status_message = reason
    counts.skipped_opt_out += 1


def write_results(
    batch: ClaimedBatch, outcomes: list[SendOutcome], *, now: datetime, max_attempts: int
) -> ResultCounts:
    """Apply outcomes (and opt-out skips) to the claimed rows and save them.

    The outcomes are applied in memory once; only the save is retried through a
    lost database connection (``connections.write_with_retry``), so a retry never counts an
    attempt twice. Raises ``ResultsNotWritten`` when the database stayed away
    for ``SMS_RESULT_WRITE_TIMEOUT`` seconds.
    """
    counts = ResultCounts(claimed=batch.claimed)
    by_id = {sms.pk: sms for sms in batch.to_send}
    rows: list[SmsNotification] = []
    opted_out_by_twilio: list[str] = []
    for outcome in outcomes:
        sms = by_id[outcome.request.sms_id]
        if outcome.failure is None:
            _apply_success(sms, outcome, counts)
        else:
            _apply_failure(sms, outcome.failure, now, max_attempts, counts)
            if outcome.failure.is_opt_out:
                opted_out_by_twilio.append(sms.to_phone_number)
        rows.append(sms)
    for sms in batch.opted_out:
        _apply_opt_out(sms, counts)
        rows.append(sms)
    if not rows:
        return counts

    for sms in rows:
        _release_claim(sms)
        sms.notification.updated_datetime = now
    write_with_retry(
        lambda: _save(batch.token, rows, opted_out_by_twilio),
        timeout=float(app_settings.SMS_RESULT_WRITE_TIMEOUT),
    )
    return counts


def _save(token: str, rows: list[SmsNotification], opted_out_by_twilio: list[str]) -> None:
    """One transaction: both tables, the opt-outs, and the announcement after commit."""
    sms_table = connection.ops.quote_name(SmsNotification._meta.db_table)
    with transaction.atomic():
        # Notifications first: their guard looks at the token we clear next.
        update_rows(
            Notification,
            [(sms.notification_id, _notification_values(sms.notification)) for sms in rows],
            NOTIFICATION_FIELDS,
            where_sql=f"t.id IN (SELECT notification_id FROM {sms_table} WHERE claim_token = %s)",
            where_params=[token],
        )
        update_rows(
            SmsNotification,
            [(sms.pk, _sms_values(sms)) for sms in rows],
            SMS_FIELDS,
            # A status callback may have raced our write: never move it back.
            keep_if_set=["delivery_status"],
            where_sql="t.claim_token = %s",
            where_params=[token],
        )
        record_twilio_opt_outs(opted_out_by_twilio)
        ids = [sms.notification_id for sms in rows]
        sids = [sms.twilio_sid for sms in rows if sms.twilio_sid]
        unknown = [sms.pk for sms in rows if sms.notification.status == Status.UNKNOWN]
        transaction.on_commit(lambda: announce_written(ids, sids, unknown))


def announce_written(
    notification_ids: list[int], stored_sids: list[str], unknown_sms_ids: Sequence[int] = ()
) -> None:
    """After commit: settle callbacks that raced our write, then publish the rest.

    A status callback can reach us before this batch stored the sid it is for;
    it was kept (``tracking.early``) and is applied now that the sid is
    committed. Callbacks naming a row that became ``unknown`` (its answer was
    lost) adopt their sid now. Notifications they moved were published with
    their newer status already, so they are not published again with this
    batch's older one.
    """
    settled = settle_early_callbacks(stored_sids) if stored_sids else set()
    if unknown_sms_ids:
        settled |= settle_unknown_callbacks(list(unknown_sms_ids))
    notify_status_changed(id_ for id_ in notification_ids if id_ not in settled)
