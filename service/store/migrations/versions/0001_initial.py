"""Initial schema: cards, feedback, jwt_ids.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cards",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("card_uuid", sa.String(128), nullable=False),
        sa.Column("suggestion_uuids", sa.Text, nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("hook", sa.String(64), nullable=False),
        sa.Column("hook_instance", sa.String(128), nullable=False),
        sa.Column("topic_system", sa.String(256), nullable=False),
        sa.Column("topic_code", sa.String(128), nullable=False),
        sa.Column("topic_display", sa.String(256), nullable=False),
        sa.Column("indicator", sa.String(16), nullable=False),
        sa.Column("issued_at", sa.DateTime, nullable=False),
        sa.Column("patient_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_cards_card_uuid", "cards", ["card_uuid"])
    op.create_index("ix_cards_issued_at", "cards", ["issued_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("card_uuid", sa.String(128), nullable=False),
        sa.Column("card_known", sa.Boolean, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("accepted_suggestions", sa.Text, nullable=False),
        sa.Column("reason_system", sa.String(256), nullable=False),
        sa.Column("reason_code", sa.String(128), nullable=False),
        sa.Column("reason_display", sa.String(256), nullable=False),
        sa.Column("has_user_comment", sa.Boolean, nullable=False),
        sa.Column("outcome_at", sa.DateTime, nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_feedback_card_uuid", "feedback", ["card_uuid"])
    op.create_index("ix_feedback_received_at", "feedback", ["received_at"])
    op.create_table(
        "jwt_ids",
        sa.Column("jti", sa.String(256), primary_key=True),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_jwt_ids_expires_at", "jwt_ids", ["expires_at"])


def downgrade() -> None:
    op.drop_table("jwt_ids")
    op.drop_table("feedback")
    op.drop_table("cards")
