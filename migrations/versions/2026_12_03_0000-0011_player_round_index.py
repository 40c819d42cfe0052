"""an index for a player's own exchanges in a round: (player_id, bounty_id, created_at)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 00:00:00

Every payment reads the player's last exchanges of the round (bounty_pay_attempt, the guardian's
plain conversation). With indexes on (player_id, created_at) and (bounty_id, created_at) only, the
function's generic plan combined both in a BitmapAnd: a bitmap of every attempt of the round, then a
sort. Its cost grew with the round (about 1 ms per payment at 8,000 attempts, most of the payment's
database time in `bounty bench`). With this index the read is a backward index scan that stops after
the turns it needs, whatever the size of the round.
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_attempts_player_round", "attempts", ["player_id", "bounty_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_attempts_player_round", table_name="attempts")
