"""A SELECT on the hook call's path, run on the driver's cursor.

Each SQLAlchemy Core execution costs about ten times the query itself on SQLite (a
Connection, the BEGIN of the begin event, an execution context, a result object). The
statement is still built with SQLAlchemy and compiled once for the engine's dialect, its
values converted by the column types as Core would; only the execution skips Core. It reads
the database on every call: what another process wrote a moment ago is seen. When something
listens to the engine's statements (tracing: a span per store statement), the statement
runs through Core, so that it sees it.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Callable

from sqlalchemy import Select
from sqlalchemy.engine import Engine


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
        if self._engine.dispatch.before_cursor_execute:
            with self._connect() as connection:
                return [self._row._make(row) for row in connection.execute(self._statement, parameters)]
        for name, process in self._bind_processors.items():
            parameters[name] = process(parameters[name])
        arguments = [parameters[name] for name in self._positions] if self._positions else parameters
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(self._sql, arguments)
            rows = cursor.fetchall()
            cursor.close()
        except Exception:
            connection.invalidate()  # whatever state the error left it in stays out of the pool
            raise
        finally:
            connection.close()
        return [self._convert(row) for row in rows]

    def _convert(self, row) -> tuple:
        return self._row._make(value if process is None else process(value)
                               for value, process in zip(row, self._result_processors))
