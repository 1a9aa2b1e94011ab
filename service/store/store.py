"""The store: cards issued, feedback received and the JWT replay cache, on SQLite or PostgreSQL."""
from __future__ import annotations

import os
import random
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import bindparam, create_engine, delete, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from . import migrate
from .batch import CardBatcher
from .keys import hash_patient_id, patient_hash_key
from .schema import cards as cards_table
from .schema import feedback as feedback_table
from .schema import jwt_ids

SQLITE_FILE_NAME = "baclofen-cds.sqlite3"
SQLITE_BUSY_TIMEOUT_MS = 10_000
# Expired JWT ids are deleted by one claim in this many (and by `baclofen-cds purge`).
JTI_CLEANUP_ONE_IN = 500
# Execution option marking a connection that only reads (SQLite: no write lock).
READ_ONLY = "baclofen_read_only"


@dataclass(frozen=True)
class FeedbackItem:
    """One validated feedback entry, reduced to what is kept (no free text)."""

    card: str
    outcome: str  # "accepted" | "overridden"
    outcome_at: datetime
    accepted_suggestions: tuple[str, ...] = ()
    reason_system: str = ""
    reason_code: str = ""
    reason_display: str = ""
    has_user_comment: bool = False


@dataclass(frozen=True)
class PurgeResult:
    cards: int
    feedback: int
    jwt_ids: int


def utc_naive(moment: datetime) -> datetime:
    """Datetimes are stored as naive UTC on both databases."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Store:
    def __init__(self, engine: Engine, patient_key: bytes, batch_seconds: float = 0.1):
        self.engine = engine
        self._patient_key = patient_key
        self._is_postgresql = engine.dialect.name == "postgresql"
        self._insert = postgresql.insert if self._is_postgresql else sqlite.insert
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._claim_statement = _claim_statement(self._insert)
        self._batcher = CardBatcher(self._insert_card_rows, batch_seconds)

    # -- cards ---------------------------------------------------------------------------
    def record_cards(self, service_id: str, hook: str, hook_instance: str, patient_id: str,
                     cards: list[dict]) -> None:
        """Keep one row per card with one bulk INSERT, atomic (the caller logs a failure
        and still answers the hook call)."""
        if cards:
            self._insert_card_rows(self._card_rows(service_id, hook, hook_instance, patient_id, cards))

    def record_cards_later(self, service_id: str, hook: str, hook_instance: str, patient_id: str,
                           cards: list[dict]) -> None:
        """As record_cards, but written by the process's background batch (store/batch.py):
        the hook call does not wait for the database."""
        if cards:
            self._batcher.add(self._card_rows(service_id, hook, hook_instance, patient_id, cards))

    def flush(self) -> None:
        """Write the cards queued by record_cards_later now."""
        self._batcher.flush()

    def _card_rows(self, service_id, hook, hook_instance, patient_id, cards) -> list[dict]:
        patient_hash = hash_patient_id(self._patient_key, patient_id or "")
        now = utcnow()
        return [_card_row(card, service_id, hook, hook_instance, patient_hash, now) for card in cards]

    def _insert_card_rows(self, rows: list[dict]) -> None:
        with self._hot_path() as connection:
            connection.execute(cards_table.insert(), rows)

    # -- feedback ------------------------------------------------------------------------
    def record_feedback(self, service_id: str, items: list[FeedbackItem]) -> int:
        """Keep all items or none. Returns how many refer to a card this service never issued."""
        self.flush()  # cards this process issued a moment ago are known cards
        now = utcnow()
        uuids = {item.card for item in items}
        with self.engine.begin() as connection:
            if self._is_postgresql:  # feedback is worth the wait for the disk (see make_engine)
                connection.exec_driver_sql("SET LOCAL synchronous_commit TO ON")
            known = set(connection.scalars(
                select(cards_table.c.card_uuid).where(cards_table.c.card_uuid.in_(uuids))))
            rows = [_feedback_row(item, service_id, item.card in known, now) for item in items]
            connection.execute(feedback_table.insert(), rows)
        return sum(1 for item in items if item.card not in known)

    # -- JWT replay cache ----------------------------------------------------------------
    def claim_jti(self, jti: str, expires_at: datetime) -> bool:
        """True the first time a JWT id is seen (or when its earlier claim has expired),
        False while an earlier claim is unexpired. Atomic across processes and instances:
        a single INSERT .. ON CONFLICT .. RETURNING on the primary key."""
        now = utcnow()
        parameters = {"claim_jti": jti, "claim_expires": utc_naive(expires_at), "claim_now": now}
        with self._hot_path() as connection:
            claimed = connection.execute(self._claim_statement, parameters).first() is not None
        if random.randrange(JTI_CLEANUP_ONE_IN) == 0:
            with self.engine.begin() as connection:
                connection.execute(delete(jwt_ids).where(jwt_ids.c.expires_at <= now))
        return claimed

    @contextmanager
    def _hot_path(self):
        """A connection for one self-contained statement on the hook call's path. On
        PostgreSQL in autocommit mode: one round trip, no BEGIN/COMMIT."""
        if self._is_postgresql:
            with self._autocommit.connect() as connection:
                yield connection
        else:
            with self.engine.begin() as connection:
                yield connection

    # -- retention -----------------------------------------------------------------------
    def purge(self, older_than: datetime) -> PurgeResult:
        """Delete cards and feedback older than the cutoff, and every expired JWT id."""
        cutoff = utc_naive(older_than)
        self.flush()
        with self.engine.begin() as connection:
            cards = connection.execute(
                delete(cards_table).where(cards_table.c.issued_at < cutoff)).rowcount
            feedback = connection.execute(
                delete(feedback_table).where(feedback_table.c.received_at < cutoff)).rowcount
            jtis = connection.execute(
                delete(jwt_ids).where(jwt_ids.c.expires_at <= utcnow())).rowcount
        return PurgeResult(cards=cards, feedback=feedback, jwt_ids=jtis)

    def counts(self) -> dict[str, int]:
        self.flush()
        with reading(self.engine) as connection:
            return {table.name: connection.scalar(select(func.count()).select_from(table))
                    for table in (cards_table, feedback_table, jwt_ids)}

    def close(self) -> None:
        self.flush()
        self.engine.dispose()


def _claim_statement(insert):
    """INSERT the jti, or take over an expired row; RETURNING a row only when claimed.
    Built once (building it costs more than running it)."""
    statement = insert(jwt_ids).values(jti=bindparam("claim_jti"),
                                       expires_at=bindparam("claim_expires"))
    return statement.on_conflict_do_update(
        index_elements=[jwt_ids.c.jti],
        set_={"expires_at": statement.excluded.expires_at},
        where=jwt_ids.c.expires_at <= bindparam("claim_now"),
    ).returning(jwt_ids.c.jti)


def _card_row(card: dict, service_id: str, hook: str, hook_instance: str,
              patient_hash: str, now: datetime) -> dict:
    topic = (card.get("source") or {}).get("topic") or {}
    suggestions = card.get("suggestions") or []
    return {
        "card_uuid": str(card.get("uuid") or ""),
        "suggestion_uuids": " ".join(str(s["uuid"]) for s in suggestions if s.get("uuid")),
        "service_id": service_id,
        "hook": hook,
        "hook_instance": hook_instance or "",
        "topic_system": str(topic.get("system") or ""),
        "topic_code": str(topic.get("code") or ""),
        "topic_display": str(topic.get("display") or ""),
        "indicator": str(card.get("indicator") or ""),
        "issued_at": now,
        "patient_hash": patient_hash,
    }


def _feedback_row(item: FeedbackItem, service_id: str, card_known: bool, now: datetime) -> dict:
    return {
        "service_id": service_id,
        "card_uuid": item.card,
        "card_known": card_known,
        "outcome": item.outcome,
        "accepted_suggestions": " ".join(item.accepted_suggestions),
        "reason_system": item.reason_system,
        "reason_code": item.reason_code,
        "reason_display": item.reason_display,
        "has_user_comment": item.has_user_comment,
        "outcome_at": utc_naive(item.outcome_at),
        "received_at": now,
    }


def reading(engine: Engine):
    """A connection for reads only: on SQLite it does not take the write lock."""
    return engine.connect().execution_options(**{READ_ONLY: True})


# -- opening -------------------------------------------------------------------------------
def database_url(config) -> str:
    if config.store.url:
        return config.store.url
    return f"sqlite+pysqlite:///{config.instance_path.resolve() / SQLITE_FILE_NAME}"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = _sqlite_engine(url)
    else:
        # Commits on PostgreSQL do not wait for the WAL flush (~0.5 ms instead of several
        # on a busy disk): a committed row is visible to every session at once, and only a
        # crash of the database server can lose the last fraction of a second of card and
        # JWT-id rows. Feedback turns it back on. SQLite in WAL mode with
        # synchronous=NORMAL makes the same trade. No pre-ping: a dropped connection fails
        # one call and SQLAlchemy then renews the whole pool.
        engine = create_engine(url, pool_size=5, max_overflow=10, pool_recycle=1800,
                               connect_args={"options": "-c synchronous_commit=off"})
    # Connections must never be shared between a gunicorn master and its forked workers.
    reference = weakref.ref(engine)
    os.register_at_fork(after_in_child=lambda: _forget_parent_connections(reference))
    return engine


def _forget_parent_connections(reference: weakref.ref) -> None:
    engine = reference()
    if engine is not None:
        engine.dispose(close=False)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        # Let SQLAlchemy, not the driver, emit BEGIN (below), so DDL stays transactional.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        # Writers take the write lock up front: a read that later upgrades to a write can
        # fail with SQLITE_BUSY at once under concurrency, whatever the busy timeout.
        # Readers (the report) must not hold it, or they would stall the hook calls.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def open_engine(config) -> Engine:
    """The engine for the configured database (creating the instance folder for SQLite)."""
    url = database_url(config)
    if url.startswith("sqlite"):
        Path(config.instance_path).mkdir(parents=True, exist_ok=True)
    return make_engine(url)


def open_store(config) -> Store:
    """Open the database named by the configuration, migrate it to the newest schema and
    return the store. Safe to call from several processes at once."""
    engine = open_engine(config)
    migrate.upgrade(engine)
    key = patient_hash_key(config.store.patient_hash_key, Path(config.instance_path))
    return Store(engine, key, config.store.record_batch_seconds)
