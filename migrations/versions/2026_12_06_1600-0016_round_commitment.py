"""a round commits to everything that decides a win: the prompt, the guardian, its tools, the memory

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 16:00:00

``commitment`` is the canonical JSON document (core/services/commitment.py), published when the round
ends; ``commitment_sha256`` is published when it opens; ``config_sha256`` (the guardian and memory
part) is what a process checks before it takes an attempt for the round. Rounds opened before this
have none (their commitment is the prompt's SHA-256 alone).
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("bounties", sa.Column("commitment", sa.Text(), nullable=True))
    op.add_column("bounties", sa.Column("commitment_sha256", sa.Text(), nullable=True))
    op.add_column("bounties", sa.Column("config_sha256", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("bounties", "config_sha256")
    op.drop_column("bounties", "commitment_sha256")
    op.drop_column("bounties", "commitment")
