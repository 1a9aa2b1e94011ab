"""Feedback items carry a key derived from their content, unique: a retried request
(same items) is stored once.

Revision ID: 0003_feedback_item_key
Revises: 0002_suppression
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_feedback_item_key"
down_revision = "0002_suppression"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows stored before this revision keep a NULL key (NULLs never collide).
    op.add_column("feedback", sa.Column("item_key", sa.String(64), nullable=True))
    op.create_index("uq_feedback_item_key", "feedback", ["item_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_feedback_item_key", table_name="feedback")
    op.drop_column("feedback", "item_key")
