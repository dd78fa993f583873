"""One ``UPDATE ... FROM (VALUES ...)`` for many rows with different values.

Django's ``bulk_update`` builds a ``CASE WHEN pk = ... THEN ...`` expression per
field and row; for a 100-row batch with a dozen fields that is over a thousand
expression objects, and resolving them took most of a batch's time
(``bench/send.py``; README, "Profiling notes"). This writes the same rows with a single
statement that joins a ``VALUES`` list, supported by PostgreSQL and by SQLite
3.33+. Values go through each field's ``get_db_prep_save`` (so datetimes and
choices are stored exactly as the ORM stores them) and, on PostgreSQL, are
cast to the column type because ``VALUES`` literals arrive untyped.

On PostgreSQL the rows arrive as one JSON parameter (``json_to_recordset``,
typed by the column list): a ``VALUES`` list has a placeholder per value (1,400
for a 100-row batch of SMS rows), and psycopg's client-side parsing and quoting
of them, in a query too long for its cache, was a quarter of a send worker's CPU
(README, "Benchmarks"); one array per column still quoted every element in
Python. ``json.dumps`` is C. Values are the ``get_db_prep_save`` ones; datetimes
travel as ISO 8601 with their offset and decimals as strings, which PostgreSQL's
own input functions read back exactly. SQLite binds its parameters in C, so it
keeps the ``VALUES`` list.
"""

import json
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Field, Model


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


def _column_name(field: Field) -> str:
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
        column = qn(_column_name(field))
        ref = f"v.column{index + 2}"
        new = f"CAST({ref} AS {field.cast_db_type(connection)})" if cast else ref
        if field.name in keep_if_set:
            new = f"CASE WHEN t.{column} = '' THEN {new} ELSE t.{column} END"
        assignments.append(f"{column} = {new}")
    return assignments


def _update_from_values(
    model: type[Model],
    rows: Sequence[tuple[int, Sequence[Any]]],
    model_fields: list[Field],
    assignments: list[str],
    pk_value: str,
    guard: str,
    where_params: Sequence[Any],
) -> int:
    """SQLite: the UPDATE joined to a ``VALUES`` list, in chunks under its parameter limit."""
    qn = connection.ops.quote_name
    meta = model._meta
    pk_column = qn(_column_name(_column_field(model, meta.pk.name)))
    width = len(model_fields) + 1
    updated = 0
    chunk = _max_rows(width)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            placeholders = ", ".join("(" + ", ".join(["%s"] * width) + ")" for _ in part)
            params: list[Any] = []
            for pk, values in part:
                params.append(pk)
                params.extend(
                    field.get_db_prep_save(value, connection)
                    for field, value in zip(model_fields, values, strict=True)
                )
            sql = (
                f"UPDATE {qn(meta.db_table)} AS t SET {', '.join(assignments)} "
                f"FROM (VALUES {placeholders}) AS v WHERE t.{pk_column} = {pk_value}{guard}"
            )
            cursor.execute(sql, [*params, *where_params])
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
    meta = model._meta
    model_fields = [_column_field(model, name) for name in fields]
    cast = connection.vendor == "postgresql"
    assignments = _assignments(model_fields, keep_if_set, cast=cast)
    pk_value = f"CAST(v.column1 AS {meta.pk.cast_db_type(connection)})" if cast else "v.column1"
    guard = f" AND ({where_sql})" if where_sql else ""

    if cast:
        return _update_from_json(
            model, rows, model_fields, assignments, pk_value, guard, where_params
        )
    return _update_from_values(
        model, rows, model_fields, assignments, pk_value, guard, where_params
    )


def _json_value(value: Any) -> Any:
    """What ``json.dumps`` cannot encode itself, as PostgreSQL's input syntax."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"bulk_write cannot send {type(value).__name__} as JSON")


def _update_from_json(
    model: type[Model],
    rows: Sequence[tuple[int, Sequence[Any]]],
    model_fields: list[Field],
    assignments: list[str],
    pk_value: str,
    guard: str,
    where_params: Sequence[Any],
) -> int:
    """PostgreSQL: the same UPDATE joined to ``json_to_recordset`` of every row at once."""
    qn = connection.ops.quote_name
    meta = model._meta
    pk_column = qn(_column_name(_column_field(model, meta.pk.name)))
    types = [meta.pk.cast_db_type(connection)]
    types += [field.cast_db_type(connection) for field in model_fields]
    names = [f"column{index + 1}" for index in range(len(types))]
    record = ", ".join(f"{name} {kind}" for name, kind in zip(names, types, strict=True))
    sql = (
        f"UPDATE {qn(meta.db_table)} AS t SET {', '.join(assignments)} "
        f"FROM json_to_recordset(CAST(%s AS json)) AS v({record}) "
        f"WHERE t.{pk_column} = {pk_value}{guard}"
    )
    updated = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _max_rows(len(types))):
            document = [
                dict(
                    zip(
                        names,
                        [
                            pk,
                            *(
                                field.get_db_prep_save(value, connection)
                                for field, value in zip(model_fields, values, strict=True)
                            ),
                        ],
                        strict=True,
                    )
                )
                for pk, values in rows[start : start + _max_rows(len(types))]
            ]
            cursor.execute(sql, [json.dumps(document, default=_json_value), *where_params])
            updated += cursor.rowcount
    return updated
