"""no foreign keys onto rows every payment shares: the shared accounts (entries) and the round (attempts, quotes)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 17:06:00

A foreign key check takes a KEY SHARE lock on the referenced row. Every attempt's ledger entries
reference the same shared accounts (prize pool, staking pool, buyback reserve, operations) and every
attempt and quote references the round's row, so concurrent payments all locked those rows (as
MultiXacts). The references are written by core code only and checked by ``bounty check``.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

DROPPED = (
    ("entries", "fk_entries_account_id_accounts", "account_id", "accounts"),
    ("entries", "fk_entries_transfer_id_transfers", "transfer_id", "transfers"),
    ("attempts", "fk_attempts_bounty_id_bounties", "bounty_id", "bounties"),
    ("attempt_quotes", "fk_attempt_quotes_bounty_id_bounties", "bounty_id", "bounties"),
)


def upgrade() -> None:
    for table, name, _column, _referred in DROPPED:
        op.drop_constraint(name, table, type_="foreignkey")


def downgrade() -> None:
    for table, name, column, referred in DROPPED:
        op.create_foreign_key(name, table, referred, [column], ["id"])
