"""Apply the Alembic migrations shipped in service/store/migrations, safely from many processes.

Several gunicorn workers (or instances) may start at once. On PostgreSQL the upgrade runs
in one transaction holding an advisory lock; on SQLite under an exclusive file lock next to
the database. Whoever comes second finds the schema at head and does nothing.
"""
from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

MIGRATIONS_PATH = Path(__file__).with_name("migrations")
# Any constant 64-bit number, the same in every process: the advisory lock's name.
PG_LOCK_KEY = 0x6261636C6F66656E  # "baclofen"


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_PATH))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> list[str]:
    return [script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision; a no-op when it is there already, or when a
    newer version of the service has taken it further (a rollback, or old replicas still
    running mid rolling upgrade: see docs/deploy.md)."""
    head = head_revision()
    if _nothing_to_do(current_revision(engine), head):
        return
    with _migration_lock(engine) as connection:
        if not _nothing_to_do(MigrationContext.configure(connection).get_current_revision(), head):
            command.upgrade(alembic_config(connection), "head")


def _nothing_to_do(current: str | None, head: str) -> bool:
    return current == head or (current is not None and current not in known_revisions())


@contextmanager
def _migration_lock(engine: Engine):
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
            yield connection
        return
    with _file_lock(engine), engine.begin() as connection:
        yield connection


@contextmanager
def _file_lock(engine: Engine):
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
