"""Statements on the hook call's path, run on the driver's cursor: the SELECT of earlier
overrides on every call, the INSERTs of the cards issued in each batch.

Each SQLAlchemy Core execution costs about ten times the query itself on SQLite (a
Connection, the BEGIN of the begin event, an execution context, a result object). The
statement is still built with SQLAlchemy and compiled once for the engine's dialect, its
values converted by the column types as Core would; only the execution skips Core. The
SELECT reads the database on every call: what another process wrote a moment ago is seen.
When something listens to the engine's statements (tracing: a span per store statement),
the statements run through Core, so that it sees them (`traced`).
"""
from __future__ import annotations

from collections import namedtuple
from contextlib import contextmanager
from typing import Callable

from sqlalchemy import Select, Table
from sqlalchemy.engine import Engine


def traced(engine: Engine) -> bool:
    """Whether something listens to the engine's statements: then they must go through Core."""
    return bool(engine.dispatch.before_cursor_execute)


@contextmanager
def driver_cursor(engine: Engine):
    """(driver connection, cursor) of a pooled connection; after an error the connection
    is discarded: whatever state the error left it in stays out of the pool."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        yield connection.dbapi_connection, cursor
        cursor.close()
    except Exception:
        connection.invalidate()
        raise
    finally:
        connection.close()


class PreparedSelect:
    def __init__(self, engine: Engine, statement: Select, connect: Callable):
        """`connect`: a Core connection for the statement when it must run through Core."""
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self._engine = engine
        self._statement = statement
        self._connect = connect
        self._sql = compiled.string
        self._positions = compiled.positiontup if compiled.positional else None
        self._bind_processors = {
            name: processor for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect))}
        columns = statement.selected_columns
        self._result_processors = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                                   for column in columns]
        self._row = namedtuple("Row", [column.key for column in columns])

    def all(self, **parameters) -> list:
        """The rows, as named tuples; a driver error is raised (the connection is discarded)."""
        if traced(self._engine):
            with self._connect() as connection:
                return [self._row._make(row) for row in connection.execute(self._statement, parameters)]
        for name, process in self._bind_processors.items():
            parameters[name] = process(parameters[name])
        arguments = [parameters[name] for name in self._positions] if self._positions else parameters
        with driver_cursor(self._engine) as (_connection, cursor):
            cursor.execute(self._sql, arguments)
            rows = cursor.fetchall()
        return [self._convert(row) for row in rows]

    def _convert(self, row) -> tuple:
        return self._row._make(value if process is None else process(value)
                               for value, process in zip(row, self._result_processors))


class PreparedInsert:
    """Rows of one table in one executemany, in the caller's transaction. A column a row
    leaves out takes its default, as Core's INSERT would (the primary key: the database's)."""

    def __init__(self, engine: Engine, table: Table):
        dialect = engine.dialect
        columns = [column for column in table.columns if not column.primary_key]
        compiled = table.insert().compile(dialect=dialect, column_keys=[column.key for column in columns])
        by_key = {column.key: column for column in columns}
        self.sql = compiled.string
        self._named = not compiled.positional
        self._keys = [column.key for column in columns] if self._named else list(compiled.positiontup)
        self._fields = [(key, _scalar_default(by_key[key]),
                         by_key[key].type.dialect_impl(dialect).bind_processor(dialect))
                        for key in self._keys]

    def run(self, cursor, rows: list[dict]) -> None:
        cursor.executemany(self.sql, [self._values(row) for row in rows])

    def _values(self, row: dict):
        values = [row.get(key, default) if process is None else process(row.get(key, default))
                  for key, default, process in self._fields]
        return dict(zip(self._keys, values)) if self._named else values


def _scalar_default(column):
    default = column.default
    if default is None:
        return None
    if not default.is_scalar:
        raise ValueError(f"{column}: only scalar defaults are filled in on the driver's cursor")
    return default.arg
