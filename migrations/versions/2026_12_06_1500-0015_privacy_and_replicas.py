"""a player's own data and bot replicas: erasures, banned identities' keyed hashes, the audit log's
one exception, and the Telegram updates webhook replicas share

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 20:00:00

The audit log stays append-only: DELETE is always refused, and so is UPDATE, except in the
transaction that records a player's erasure (a ``player_erasures`` row written in that transaction,
``erased_at = now()``): there the rows about that player (as actor or target) may have their names
rewritten (actor, target, details, reason, before, after), never who, what, whom or when.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

APPEND_ONLY_WITH_ERASURE = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A player's erasure at their own request (SPEC §11) pseudonymises the rows about them, in the
    -- erasure's own transaction; who acted, what, about whom and when never change.
    IF TG_OP = 'UPDATE'
       AND NEW.id = OLD.id AND NEW.action = OLD.action AND NEW.created_at = OLD.created_at
       AND NEW.actor_player_id IS NOT DISTINCT FROM OLD.actor_player_id
       AND NEW.target_player_id IS NOT DISTINCT FROM OLD.target_player_id
       AND EXISTS (
           SELECT 1 FROM player_erasures e WHERE e.erased_at = now() AND (
               e.player_id IN (OLD.actor_player_id, OLD.target_player_id)
               OR OLD.actor_player_id = ANY (e.joined) OR OLD.target_player_id = ANY (e.joined)))
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END $$
"""

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$
"""


def upgrade() -> None:
    op.create_table(
        "player_erasures",
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("joined", postgresql.ARRAY(sa.BigInteger()), server_default="{}", nullable=False),
        sa.Column(
            "erased_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("kept", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_player_erasures_player_id_players")
        ),
        sa.PrimaryKeyConstraint("player_id", name=op.f("pk_player_erasures")),
    )
    op.create_table(
        "banned_identities",
        sa.Column("identity_hash", sa.Text(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_banned_identities_player_id_players")
        ),
        sa.PrimaryKeyConstraint("identity_hash", name=op.f("pk_banned_identities")),
    )
    op.create_index("ix_banned_identities_player_id", "banned_identities", ["player_id"])
    op.create_table(
        "telegram_updates",
        sa.Column("bot_id", sa.BigInteger(), nullable=False),
        sa.Column("update_id", sa.BigInteger(), nullable=False),
        sa.Column("taken_by", sa.Text(), nullable=False),
        sa.Column(
            "taken_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("bot_id", "update_id", name=op.f("pk_telegram_updates")),
    )
    op.create_index("ix_telegram_updates_taken_at", "telegram_updates", ["taken_at"])
    op.execute(APPEND_ONLY_WITH_ERASURE)


def downgrade() -> None:
    op.execute(APPEND_ONLY)
    op.drop_index("ix_telegram_updates_taken_at", table_name="telegram_updates")
    op.drop_table("telegram_updates")
    op.drop_index("ix_banned_identities_player_id", table_name="banned_identities")
    op.drop_table("banned_identities")
    op.drop_table("player_erasures")
