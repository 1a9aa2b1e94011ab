"""The store: cards issued, feedback received and the JWT replay cache, on SQLite or PostgreSQL."""
from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Table, bindparam, create_engine, delete, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from . import migrate
from .batch import CardBatcher
from .keys import hash_patient_id, patient_hash_key
from .prepared import PreparedInsert, PreparedSelect, driver_cursor, traced
from .schema import baclofen_orders
from .schema import cards as cards_table
from .schema import feedback as feedback_table
from .schema import jwt_ids, overrides, suppressed_cards
from .wal_checkpoint import BACKSTOP_PAGES, WalCheckpointer

SQLITE_FILE_NAME = "baclofen-cds.sqlite3"
SQLITE_BUSY_TIMEOUT_MS = 10_000
# What SQLite itself may wait for a lock, in the library, holding a gevent worker: enough for
# another worker's short write (docs/store.md).
SQLITE_SHORT_BUSY_MS = 5
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
class StoredFeedback:
    new_items: list[FeedbackItem]  # not stored before (a retry's items are not new)
    unknown: int  # new items about a card this service never issued


@dataclass(frozen=True)
class PurgeResult:
    cards: int
    feedback: int
    jwt_ids: int
    suppressed_cards: int = 0
    baclofen_orders: int = 0


@dataclass(frozen=True)
class SuppressedCard:
    """A card found but not shown, and why ("same-order" or "snooze" with its reason)."""

    card: dict
    why: str
    reason_system: str = ""
    reason_code: str = ""


@dataclass(frozen=True)
class Override:
    """A card of this patient whose latest feedback is `overridden`."""

    topic: str
    indicator: str
    draft_keys: frozenset
    fingerprint: str
    reason_system: str
    reason_code: str
    at: datetime  # UTC, naive: when overridden (outcome time, at the latest when received)


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
        self._overrides_of_patient = PreparedSelect(engine, _OVERRIDES_OF_PATIENT, lambda: reading(engine))
        self._inserts = {table: PreparedInsert(engine, table)
                         for table in (cards_table, suppressed_cards, baclofen_orders)}
        self._batcher = CardBatcher(self._insert_statements, batch_seconds)
        on_disk = not self._is_postgresql and engine.url.database not in (None, "", ":memory:")
        self._checkpointer = _checkpointed_by_a_thread(engine) if on_disk else None

    # -- cards ---------------------------------------------------------------------------
    def record_cards(self, service_id: str, hook: str, hook_instance: str, patient_id: str,
                     cards: list[dict], **extra) -> None:
        """Keep one row per card shown, per card suppressed and per baclofen draft, all or
        none, now (the caller logs a failure and still answers the call). `extra`: as
        `record_rows`."""
        self._insert_statements(self.record_rows(service_id, hook, hook_instance, patient_id,
                                                 cards, **extra))

    def record_cards_later(self, service_id: str, hook: str, hook_instance: str, patient_id: str,
                           cards: list[dict], **extra) -> None:
        """As record_cards, but written by the process's background batch (store/batch.py):
        the hook call does not wait for the database."""
        statements = self.record_rows(service_id, hook, hook_instance, patient_id, cards, **extra)
        if statements:
            self._batcher.add(statements)

    def flush(self) -> None:
        """Write the rows queued by record_cards_later now."""
        self._batcher.flush()

    def record_rows(self, service_id: str, hook: str, hook_instance: str, patient_id: str,
                    cards: list[dict], *, draft_keys: tuple[str, ...] = (),
                    fingerprints: list[str] | None = None, suppressed: list[SuppressedCard] = (),
                    orders: tuple[str, ...] = ()) -> list[tuple[Table, list[dict]]]:
        """The rows of one call, by table: its cards shown (with the drafts they are about and
        their fingerprints, parallel to `cards`), its cards suppressed, and its baclofen
        drafts (`orders`: their draft keys)."""
        patient_hash = hash_patient_id(self._patient_key, patient_id or "")
        now = utcnow()
        rows = [_card_row(card, service_id, hook, hook_instance, patient_hash, now)
                for card in cards]
        for row, fingerprint in zip(rows, fingerprints or ()):
            row.update(draft_keys=" ".join(draft_keys), fingerprint=fingerprint)
        statements = [(cards_table, rows), (suppressed_cards, [
            _suppressed_row(item, service_id, hook, hook_instance, patient_hash, now)
            for item in suppressed]), (baclofen_orders, [
                {"service_id": service_id, "patient_hash": patient_hash, "draft_key": key,
                 "called_at": now} for key in orders])]
        return [(table, values) for table, values in statements if values]

    def _insert_statements(self, statements: list[tuple[Table, list[dict]]]) -> None:
        """One INSERT per table, all in one transaction, on the driver's cursor
        (store/prepared.py): in a batch of a hundred calls' cards, Core took 1.6-1.9x
        the time."""
        by_table: dict[Table, list[dict]] = {}
        for table, values in statements:
            by_table.setdefault(table, []).extend(values)
        if not by_table:
            return
        if traced(self.engine):
            with self.engine.begin() as connection:
                for table, values in by_table.items():
                    connection.execute(table.insert(), values)
            return
        with driver_cursor(self.engine) as (connection, cursor):
            if not self._is_postgresql:
                begin_immediate(connection, SQLITE_BUSY_TIMEOUT_MS / 1000)
            for table, values in by_table.items():
                self._inserts[table].run(cursor, values)
            connection.commit()

    def overrides_for(self, patient_id: str, since: datetime) -> list[Override]:
        """This patient's cards whose latest feedback overrode them, since the cutoff."""
        parameters = {"override_patient": hash_patient_id(self._patient_key, patient_id or ""),
                      "override_since": utc_naive(since)}
        return [Override(topic=row.topic_code, indicator=row.indicator,
                         draft_keys=frozenset(row.draft_keys.split()), fingerprint=row.fingerprint,
                         reason_system=row.reason_system, reason_code=row.reason_code,
                         at=row.overridden_at) for row in self._overrides_of_patient.all(**parameters)]

    # -- feedback ------------------------------------------------------------------------
    def record_feedback(self, service_id: str, items: list[FeedbackItem]) -> "StoredFeedback":
        """Keep all items or none; an item stored before (same content: a client's retry)
        is not stored again. Says which items are new and how many of those refer to a
        card this service never issued."""
        self.flush()  # cards this process issued a moment ago are known cards
        now = utcnow()
        uuids = {item.card for item in items}
        with self.engine.begin() as connection:
            if self._is_postgresql:  # feedback is worth the wait for the disk (see make_engine)
                connection.exec_driver_sql("SET LOCAL synchronous_commit TO ON")
            issued = {row.card_uuid: row for row in connection.execute(
                select(*_OVERRIDE_SOURCE).where(cards_table.c.card_uuid.in_(uuids)))}
            rows = [_feedback_row(item, service_id, item.card in issued, now) for item in items]
            inserted = set(connection.scalars(
                self._insert(feedback_table)
                .on_conflict_do_nothing(index_elements=[feedback_table.c.item_key])
                .returning(feedback_table.c.item_key), rows))
            new = [item for item, row in zip(items, rows) if row["item_key"] in inserted]
            _replace_overrides(connection, new, issued, now)
        return StoredFeedback(new_items=new, unknown=sum(1 for item in new if item.card not in issued))

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
            suppressed = connection.execute(delete(suppressed_cards).where(
                suppressed_cards.c.suppressed_at < cutoff)).rowcount
            orders = connection.execute(delete(baclofen_orders).where(
                baclofen_orders.c.called_at < cutoff)).rowcount
            connection.execute(delete(overrides).where(overrides.c.overridden_at < cutoff))
        return PurgeResult(cards=cards, feedback=feedback, jwt_ids=jtis,
                           suppressed_cards=suppressed, baclofen_orders=orders)

    def counts(self) -> dict[str, int]:
        self.flush()
        with reading(self.engine) as connection:
            return {table.name: connection.scalar(select(func.count()).select_from(table))
                    for table in (cards_table, feedback_table, jwt_ids)}

    def close(self) -> None:
        self.flush()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()


# Built once: what the hook call's path reads (building a statement costs more than running it).
_OVERRIDES_OF_PATIENT = (select(
    overrides.c.topic_code, overrides.c.indicator, overrides.c.draft_keys, overrides.c.fingerprint,
    overrides.c.reason_system, overrides.c.reason_code, overrides.c.overridden_at).where(
    overrides.c.patient_hash == bindparam("override_patient"),
    overrides.c.overridden_at >= bindparam("override_since")))
_OVERRIDE_SOURCE = (cards_table.c.card_uuid, cards_table.c.patient_hash, cards_table.c.topic_code,
                    cards_table.c.indicator, cards_table.c.draft_keys, cards_table.c.fingerprint)


def _replace_overrides(connection, items: list[FeedbackItem], issued: dict, now: datetime) -> None:
    """Keep `overrides` equal to the cards whose latest feedback is `overridden`."""
    latest = {item.card: item for item in items}  # a later item on the same card wins
    connection.execute(delete(overrides).where(overrides.c.card_uuid.in_(latest)))
    rows = [{**issued[card]._asdict(), "reason_system": item.reason_system,
             "reason_code": item.reason_code,
             "overridden_at": min(utc_naive(item.outcome_at), now)}
            for card, item in latest.items() if item.outcome == "overridden" and card in issued]
    if rows:
        connection.execute(overrides.insert(), rows)


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


def _suppressed_row(item: SuppressedCard, service_id: str, hook: str, hook_instance: str,
                    patient_hash: str, now: datetime) -> dict:
    row = _card_row(item.card, service_id, hook, hook_instance, patient_hash, now)
    for name in ("card_uuid", "suggestion_uuids", "issued_at"):
        del row[name]
    return {**row, "why": item.why, "reason_system": item.reason_system,
            "reason_code": item.reason_code, "suppressed_at": now}


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
        "item_key": feedback_item_key(service_id, item),
    }


def feedback_item_key(service_id: str, item: FeedbackItem) -> str:
    """Equal for equal items: what the clinician did with which card, and when."""
    content = [service_id, item.card, item.outcome, utc_naive(item.outcome_at).isoformat(),
               list(item.accepted_suggestions), item.reason_system, item.reason_code,
               item.reason_display, item.has_user_comment]
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()


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
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")  # while several open it at once
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        # The log is checkpointed by a thread (store/wal_checkpoint.py); this is the backstop.
        cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        # From now on SQLite waits only briefly; longer waits are begin_immediate's.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_SHORT_BUSY_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        # Writers take the write lock up front: a read that later upgrades to a write can
        # fail with SQLITE_BUSY at once under concurrency, whatever the busy timeout.
        # Readers (the report) must not hold it, or they would stall the hook calls.
        if connection.get_execution_options().get(READ_ONLY, False):
            connection.exec_driver_sql("BEGIN")
        else:
            begin_immediate(connection.connection.dbapi_connection, SQLITE_BUSY_TIMEOUT_MS / 1000)

    return engine


def _switch_to_wal(cursor) -> None:
    """WAL mode, persistent in the file: only a new file needs switching. The switch takes
    an exclusive lock, which SQLite refuses at once, without its busy wait, while another
    process holds the new file (several workers starting at once): try again meanwhile."""
    def in_wal() -> bool:
        if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            return True
        return _unless_busy(lambda: cursor.execute("PRAGMA journal_mode=WAL"))

    _until(in_wal, time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000)


def _checkpointed_by_a_thread(engine: Engine) -> WalCheckpointer:
    """SQLite: the log is checkpointed by a thread of each process (store/wal_checkpoint.py):
    this one, and each forked worker when it opens its first connection. Not closing the
    pool's connections for it: a connection closed as the last one checkpoints and removes
    the log under an exclusive lock, which other processes opening the store at that moment
    found busy (tests/store/test_migrations.py)."""
    checkpointer = WalCheckpointer(engine.url.database)

    @event.listens_for(engine, "connect")
    def _in_this_process_too(_dbapi_connection, _record):  # a forked worker's first connection
        checkpointer.ensure_running()

    checkpointer.ensure_running()
    return checkpointer


def begin_immediate(dbapi_connection, timeout: float) -> None:
    """BEGIN IMMEDIATE, waiting up to `timeout` seconds for another connection's write lock.
    SQLite's own busy wait sleeps inside the library: in a gevent worker (`serve`) that
    stalls every call the worker holds. So SQLite waits only the first few milliseconds,
    enough for the short writes of other workers (a JWT id, a batch of cards); past them
    (a purge: seconds) the writer waits with time.sleep, which gevent makes a yield, in line
    with the other writers of its process (_WRITERS_IN_LINE), one of them polling."""
    def begin() -> bool:
        return _unless_busy(lambda: dbapi_connection.execute("BEGIN IMMEDIATE"))

    if begin():
        return
    deadline = time.monotonic() + timeout
    if not _WRITERS_IN_LINE.acquire(timeout=timeout):
        raise sqlite3.OperationalError("database is locked")
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    try:
        _until(begin, deadline)
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_SHORT_BUSY_MS}")
        _WRITERS_IN_LINE.release()


def _unless_busy(statement) -> bool:
    """Run it; False if another connection holds the lock it needs (SQLITE_BUSY, or one of
    its extended codes)."""
    try:
        statement()
        return True
    except sqlite3.OperationalError as error:
        if (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF != sqlite3.SQLITE_BUSY:
            raise
        return False


def _until(done, deadline: float) -> None:
    """Try `done` again, with time.sleep between tries (a yield under gevent), until it
    succeeds or the deadline passes ("database is locked")."""
    delay = 0.0005
    while not done():
        if time.monotonic() + delay > deadline:
            raise sqlite3.OperationalError("database is locked")
        time.sleep(delay)
        delay = min(2 * delay, 0.002)


# Created at import: after serve's gevent patching, a lock its greenlets wait on in turn.
_WRITERS_IN_LINE = threading.Lock()


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
