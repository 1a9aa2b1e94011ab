"""The tables of the store (SQLAlchemy Core). Changes here need an Alembic migration."""
from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# One row per card issued. No patient data: only a keyed hash of the patient id.
cards = Table(
    "cards",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("card_uuid", String(128), nullable=False),
    Column("suggestion_uuids", Text, nullable=False, default=""),  # space-separated
    Column("service_id", String(128), nullable=False),
    Column("hook", String(64), nullable=False),
    Column("hook_instance", String(128), nullable=False),
    Column("topic_system", String(256), nullable=False, default=""),
    Column("topic_code", String(128), nullable=False, default=""),
    Column("topic_display", String(256), nullable=False, default=""),
    Column("indicator", String(16), nullable=False, default=""),
    Column("issued_at", DateTime, nullable=False),  # UTC, naive
    Column("patient_hash", String(64), nullable=False),
    # What once-per-order suppression compares (service/suppression.py): hashes of the
    # drafts the call was about (space-separated) and of what the card says.
    Column("draft_keys", Text, nullable=False, default=""),
    Column("fingerprint", String(64), nullable=False, default=""),
    Index("ix_cards_card_uuid", "card_uuid"),
    Index("ix_cards_issued_at", "issued_at"),
)

# One row per feedback item received. The user's free-text comment is not kept (it may
# name the patient); only whether there was one.
feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(128), nullable=False),
    Column("card_uuid", String(128), nullable=False),
    Column("card_known", Boolean, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("accepted_suggestions", Text, nullable=False, default=""),  # space-separated
    Column("reason_system", String(256), nullable=False, default=""),
    Column("reason_code", String(128), nullable=False, default=""),
    Column("reason_display", String(256), nullable=False, default=""),
    Column("has_user_comment", Boolean, nullable=False, default=False),
    Column("outcome_at", DateTime, nullable=False),  # UTC, naive
    Column("received_at", DateTime, nullable=False),  # UTC, naive
    # A hash of the item's content: a client retrying a request stores its items once.
    Column("item_key", String(64), nullable=True),
    Index("ix_feedback_card_uuid", "card_uuid"),
    Index("ix_feedback_received_at", "received_at"),
    Index("uq_feedback_item_key", "item_key", unique=True),
)

# JWT ids seen, for replay protection across processes and instances.
jwt_ids = Table(
    "jwt_ids",
    metadata,
    Column("jti", String(256), primary_key=True),
    Column("expires_at", DateTime, nullable=False),  # UTC, naive
    Index("ix_jwt_ids_expires_at", "expires_at"),
)

# One row per card the engine found but the service did not show (service/suppression.py):
# why is "same-order" or "snooze" (with the override reason that snoozed it).
suppressed_cards = Table(
    "suppressed_cards",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(128), nullable=False),
    Column("hook", String(64), nullable=False),
    Column("hook_instance", String(128), nullable=False),
    Column("topic_system", String(256), nullable=False, default=""),
    Column("topic_code", String(128), nullable=False, default=""),
    Column("topic_display", String(256), nullable=False, default=""),
    Column("indicator", String(16), nullable=False, default=""),
    Column("why", String(32), nullable=False),
    Column("reason_system", String(256), nullable=False, default=""),
    Column("reason_code", String(128), nullable=False, default=""),
    Column("suppressed_at", DateTime, nullable=False),  # UTC, naive
    Column("patient_hash", String(64), nullable=False),
    Index("ix_suppressed_cards_suppressed_at", "suppressed_at"),
)

# One row per baclofen draft per hook call: the denominator of the alert burden (cards per
# 100 baclofen orders). An order is a distinct (patient_hash, draft_key).
baclofen_orders = Table(
    "baclofen_orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(128), nullable=False),
    Column("patient_hash", String(64), nullable=False),
    Column("draft_key", String(64), nullable=False),
    Column("called_at", DateTime, nullable=False),  # UTC, naive
    Index("ix_baclofen_orders_called_at", "called_at"),
)

# One row per card whose latest feedback is `overridden`, copied from `cards` when the
# feedback arrives (and deleted when a later feedback accepts it): what suppression reads
# on the hook call's path, a small table indexed by patient.
overrides = Table(
    "overrides",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("card_uuid", String(128), nullable=False),
    Column("patient_hash", String(64), nullable=False),
    Column("topic_code", String(128), nullable=False, default=""),
    Column("indicator", String(16), nullable=False, default=""),
    Column("draft_keys", Text, nullable=False, default=""),
    Column("fingerprint", String(64), nullable=False, default=""),
    Column("reason_system", String(256), nullable=False, default=""),
    Column("reason_code", String(128), nullable=False, default=""),
    Column("overridden_at", DateTime, nullable=False),  # UTC, naive
    Index("ix_overrides_card_uuid", "card_uuid"),
    Index("ix_overrides_patient_hash_overridden_at", "patient_hash", "overridden_at"),
)
