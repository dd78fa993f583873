"""One ``UPDATE ... FROM (VALUES ...)`` for many rows with different values.

Django's ``bulk_update`` builds a ``CASE WHEN pk = ... THEN ...`` expression per
field and row; for a 100-row batch with a dozen fields that is over a thousand
expression objects, and resolving them took most of a batch's time
(``bench/send.py``; README, "Profiling notes"). This writes the same rows with a single
statement that joins a ``VALUES`` list, supported by PostgreSQL and by SQLite
3.33+. Values go through each field's ``get_db_prep_save`` (so datetimes and
choices are stored exactly as the ORM stores them) and, on PostgreSQL, are
cast to the column type because ``VALUES`` literals arrive untyped.

On PostgreSQL the rows arrive as one array per column (``unnest(%s, %s, ...)``):
a ``VALUES`` list has a placeholder per value (1,400 for a 100-row batch of
SMS rows), and psycopg's client-side parsing of so many placeholders in a query
too long for its cache was a quarter of a send worker's CPU (README,
"Benchmarks"); fifteen array parameters parse in no time. SQLite binds its
parameters in C, so it keeps the ``VALUES`` list.
"""

import sqlite3
from collections.abc import Sequence
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
    pk_column = qn(_column_name(_column_field(model, meta.pk.name)))
    # PostgreSQL and SQLite both name the columns of an unaliased VALUES list
    # column1, column2, ... (a CTE with named columns would also work, but
    # SQLite then reports no rowcount).
    width = len(model_fields) + 1
    cast = connection.vendor == "postgresql"

    def value_of(index: int, field) -> str:
        ref = f"v.column{index + 2}"
        return f"CAST({ref} AS {field.cast_db_type(connection)})" if cast else ref

    assignments = []
    for index, field in enumerate(model_fields):
        column = qn(_column_name(field))
        new = value_of(index, field)
        if field.name in keep_if_set:
            new = f"CASE WHEN t.{column} = '' THEN {new} ELSE t.{column} END"
        assignments.append(f"{column} = {new}")
    pk_value = f"CAST(v.column1 AS {meta.pk.cast_db_type(connection)})" if cast else "v.column1"
    guard = f" AND ({where_sql})" if where_sql else ""

    if cast:
        return _update_from_arrays(
            model, rows, model_fields, assignments, pk_value, guard, where_params
        )
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


def _update_from_arrays(
    model: type[Model],
    rows: Sequence[tuple[int, Sequence[Any]]],
    model_fields: list[Field],
    assignments: list[str],
    pk_value: str,
    guard: str,
    where_params: Sequence[Any],
) -> int:
    """PostgreSQL: the same UPDATE joined to ``unnest`` of one typed array per column."""
    qn = connection.ops.quote_name
    meta = model._meta
    pk_column = qn(_column_name(_column_field(model, meta.pk.name)))
    types = [meta.pk.cast_db_type(connection)]
    types += [field.cast_db_type(connection) for field in model_fields]
    arrays = ", ".join(f"CAST(%s AS {kind}[])" for kind in types)
    names = ", ".join(f"column{index + 1}" for index in range(len(types)))
    updated = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _max_rows(len(types))):
            part = rows[start : start + _max_rows(len(types))]
            columns: list[list[Any]] = [[pk for pk, _ in part]]
            for index, field in enumerate(model_fields):
                columns.append(
                    [field.get_db_prep_save(values[index], connection) for _, values in part]
                )
            sql = (
                f"UPDATE {qn(meta.db_table)} AS t SET {', '.join(assignments)} "
                f"FROM unnest({arrays}) AS v({names}) "
                f"WHERE t.{pk_column} = {pk_value}{guard}"
            )
            cursor.execute(sql, [*columns, *where_params])
            updated += cursor.rowcount
    return updated
