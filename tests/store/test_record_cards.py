"""Store.record_cards: one row per card, no patient data, a keyed hash of the patient id."""
from __future__ import annotations

import stat
from datetime import datetime

from sqlalchemy import event, inspect, select

from service.store import open_store
from service.store.keys import KEY_FILE_NAME, hash_patient_id
from service.store.schema import baclofen_orders
from service.store.schema import cards as cards_table
from service.store.store import reading

from .helpers import ORDER_SIGN, PATIENT_ID, columns_containing, make_card, make_config


def _rows(store):
    with store.engine.connect() as connection:
        return [row._asdict() for row in connection.execute(select(cards_table).order_by(cards_table.c.id))]


def test_each_card_is_kept_with_its_topic_indicator_and_suggestions(store):
    issued = [make_card("renal-dose", "critical", suggestions=2), make_card("duplicate-therapy", "info", 0)]
    store.record_cards(ORDER_SIGN, "order-sign", "hook-instance-1", PATIENT_ID, issued)
    rows = _rows(store)
    assert [r["card_uuid"] for r in rows] == [c["uuid"] for c in issued]
    first, second = rows
    assert first["suggestion_uuids"].split() == [s["uuid"] for s in issued[0]["suggestions"]]
    assert (first["service_id"], first["hook"], first["hook_instance"]) == (ORDER_SIGN, "order-sign", "hook-instance-1")
    assert (first["topic_code"], first["indicator"]) == ("renal-dose", "critical")
    assert (second["topic_code"], second["indicator"], second["suggestion_uuids"]) == ("duplicate-therapy", "info", "")
    assert first["issued_at"] is not None


def test_rows_written_on_the_drivers_cursor_are_those_core_writes(store):
    """Cards are inserted on the driver's cursor (store/prepared.py), through Core when
    something listens to the statements (tracing): both must write the same rows,
    defaults and the issue time included."""
    card = make_card("renal-dose", "critical", suggestions=0)
    card["source"]["topic"].pop("display")  # a column the row leaves to its default
    issued_at = datetime(2026, 11, 30, 9, 5, 0)  # no microseconds: the format differs there
    statements = [(table, [{**row, **{key: issued_at for key in ("issued_at", "called_at") if key in row}}
                           for row in rows])
                  for table, rows in store.record_rows(ORDER_SIGN, "order-sign", "h", PATIENT_ID, [card],
                                                       draft_keys=("k1", "k2"), fingerprints=["f"],
                                                       orders=("k1",))]
    store._insert_statements(statements)
    event.listen(store.engine, "before_cursor_execute", _listening)
    try:
        store._insert_statements(statements)
    finally:
        event.remove(store.engine, "before_cursor_execute", _listening)
    driver, core = ({key: value for key, value in row.items() if key != "id"} for row in _rows(store))
    assert driver == core
    with store.engine.connect() as connection:  # as stored: SQLite keeps the time as text
        stored = connection.exec_driver_sql("SELECT issued_at FROM cards ORDER BY id").scalars().all()
    assert stored[0] == stored[1]
    assert (driver["topic_display"], driver["suggestion_uuids"]) == ("", "")
    assert driver["issued_at"] == issued_at and driver["draft_keys"] == "k1 k2"
    with store.engine.connect() as connection:
        orders = connection.execute(select(baclofen_orders.c.draft_key, baclofen_orders.c.called_at)).all()
    assert orders == [("k1", issued_at)] * 2


def _listening(*_args):
    pass


def test_no_cards_writes_nothing(store):
    store.record_cards(ORDER_SIGN, "order-sign", "hook-instance-1", PATIENT_ID, [])
    assert store.counts()["cards"] == 0


def test_the_patient_is_kept_only_as_a_keyed_hash(store):
    store.record_cards(ORDER_SIGN, "order-sign", "h", PATIENT_ID, [make_card("renal-dose")])
    store.record_cards(ORDER_SIGN, "order-sign", "h", "another-patient", [make_card("renal-dose")])
    first, second = _rows(store)
    assert len(first["patient_hash"]) == 64 and first["patient_hash"] != second["patient_hash"]
    assert first["patient_hash"] == hash_patient_id(store._patient_key, PATIENT_ID)


def test_no_column_of_any_table_holds_the_patient_id(store):
    """Issue cards for a patient, then scan every column of every table."""
    store.record_cards(ORDER_SIGN, "order-sign", "h-1", PATIENT_ID, [make_card("renal-dose"), make_card("age")])
    store.claim_jti("some-jti", datetime(2099, 1, 1))
    assert {"cards", "feedback", "jwt_ids"} <= set(inspect(store.engine).get_table_names())
    assert store.counts()["cards"] == 2
    assert columns_containing(store.engine, PATIENT_ID) == []


def test_the_generated_key_is_private_and_survives_a_restart(config, store):
    key_file = config.instance_path / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    reopened = open_store(config)
    try:
        assert reopened._patient_key == store._patient_key
    finally:
        reopened.close()


def test_a_configured_key_is_used_and_no_key_file_written(database_url, tmp_path):
    config = make_config(database_url, tmp_path / "inst", store={"patient_hash_key": "k" * 40})
    opened = open_store(config)
    try:
        assert opened._patient_key == b"k" * 40
        assert not (config.instance_path / KEY_FILE_NAME).exists()
    finally:
        opened.close()


def test_sqlite_runs_in_wal_mode(tmp_path):
    config = make_config("", tmp_path / "instance")
    sqlite_store = open_store(config)
    try:
        assert (config.instance_path / "baclofen-cds.sqlite3").exists()
        with sqlite_store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        sqlite_store.close()


def test_an_open_report_read_does_not_block_recording_cards(config, store):
    """On SQLite a reader must not hold the write lock: if it did, the write below would
    wait for it (the reader is still open) until the busy timeout and fail as locked."""
    other = open_store(config)
    try:
        with reading(store.engine) as connection:
            connection.execute(select(cards_table.c.id)).all()
            other.record_cards(ORDER_SIGN, "order-sign", "h", PATIENT_ID, [make_card("age")])
    finally:
        other.close()
    assert store.counts()["cards"] == 1
