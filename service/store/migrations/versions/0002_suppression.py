"""Suppression (issue 13): what a card is about (draft keys, fingerprint), the cards last
overridden, suppressed cards, baclofen orders (the alert-burden denominator).

Revision ID: 0002_suppression
Revises: 0001
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_suppression"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cards") as batch:
        batch.add_column(sa.Column("draft_keys", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("fingerprint", sa.String(64), nullable=False, server_default=""))
    op.create_table(
        "suppressed_cards",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("hook", sa.String(64), nullable=False),
        sa.Column("hook_instance", sa.String(128), nullable=False),
        sa.Column("topic_system", sa.String(256), nullable=False),
        sa.Column("topic_code", sa.String(128), nullable=False),
        sa.Column("topic_display", sa.String(256), nullable=False),
        sa.Column("indicator", sa.String(16), nullable=False),
        sa.Column("why", sa.String(32), nullable=False),
        sa.Column("reason_system", sa.String(256), nullable=False),
        sa.Column("reason_code", sa.String(128), nullable=False),
        sa.Column("suppressed_at", sa.DateTime, nullable=False),
        sa.Column("patient_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_suppressed_cards_suppressed_at", "suppressed_cards", ["suppressed_at"])
    op.create_table(
        "baclofen_orders",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("patient_hash", sa.String(64), nullable=False),
        sa.Column("draft_key", sa.String(64), nullable=False),
        sa.Column("called_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_baclofen_orders_called_at", "baclofen_orders", ["called_at"])
    op.create_table(
        "overrides",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("card_uuid", sa.String(128), nullable=False),
        sa.Column("patient_hash", sa.String(64), nullable=False),
        sa.Column("topic_code", sa.String(128), nullable=False),
        sa.Column("indicator", sa.String(16), nullable=False),
        sa.Column("draft_keys", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("reason_system", sa.String(256), nullable=False),
        sa.Column("reason_code", sa.String(128), nullable=False),
        sa.Column("overridden_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_overrides_card_uuid", "overrides", ["card_uuid"])
    op.create_index("ix_overrides_patient_hash_overridden_at", "overrides",
                    ["patient_hash", "overridden_at"])


def downgrade() -> None:
    op.drop_table("baclofen_orders")
    op.drop_table("suppressed_cards")
    op.drop_table("overrides")
    with op.batch_alter_table("cards") as batch:
        batch.drop_column("fingerprint")
        batch.drop_column("draft_keys")
