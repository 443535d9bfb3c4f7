"""samples: items.sample and answers.sample (--samples K asks each question K times)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 18:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# (table, old unique constraint and columns, new unique constraint); the new one adds sample.
_KEYS = (
    ("items", "uq_item_run_model_story", ["run_id", "model_label", "story_id"],
     "uq_item_run_model_story_sample"),
    ("answers", "uq_answer_run_model_story_turn", ["run_id", "model_label", "story_id", "turn"],
     "uq_answer_run_model_story_turn_sample"),
)  # fmt: skip


def upgrade() -> None:
    # SQLite cannot alter a constraint in place: batch mode copies the table (rows kept, each
    # existing row becomes sample 0 through the server default).
    for table, old, columns, new in _KEYS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("sample", sa.Integer(), nullable=False, server_default="0"))
            batch.drop_constraint(old, type_="unique")
            batch.create_unique_constraint(new, [*columns, "sample"])


def downgrade() -> None:
    for table, old, columns, new in _KEYS:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(new, type_="unique")
            batch.create_unique_constraint(old, columns)
            batch.drop_column("sample")
