"""holdings sampled during a stake's life: the lowest balance seen each day, per wallet

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 14:00:00

A stake earns for a day only if its wallet was seen holding it that day: every successful holdings
read keeps the day's lowest value (``low``) and how many reads saw it. The same tokens moved between
wallets are never seen in full in two wallets all day, so they never earn two shares of one day.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holding_days",
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("low", sa.BigInteger(), nullable=False),
        sa.Column("samples", sa.Integer(), server_default="1", nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address", "day", name=op.f("pk_holding_days")),
    )


def downgrade() -> None:
    op.drop_table("holding_days")
