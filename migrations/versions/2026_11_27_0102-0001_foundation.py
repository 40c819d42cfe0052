"""foundation

Revision ID: 0001
Revises:
Create Date: 2026-11-27 01:02:00.022932
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


AUDIT_GUARD = (
    """CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only';
    END $$""",
    """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
)


def upgrade() -> None:
    # pgvector: the guardian's memory stores attack embeddings (SPEC §5).
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("guarded", sa.Boolean(), nullable=False),
        sa.Column("balance", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "NOT guarded OR balance >= 0", name=op.f("ck_accounts_guarded_not_negative")
        ),
        sa.CheckConstraint(
            "guarded OR balance = 0", name=op.f("ck_accounts_shared_balance_derived")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint(
            "kind",
            "owner_id",
            "currency",
            name=op.f("uq_accounts_kind"),
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_table(
        "announcements",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcements")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("actor_player_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_table(
        "bounties",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=False),
        sa.Column("prompt_sha256", sa.Text(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("base_fee", sa.BigInteger(), nullable=False),
        sa.Column("growth_bps", sa.Integer(), nullable=False),
        sa.Column("fee_cap", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("is_demo", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("winner_attempt_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "status IN ('active','paused','won','expired')", name=op.f("ck_bounties_status")
        ),
        sa.CheckConstraint(
            "base_fee > 0 AND fee_cap >= base_fee AND growth_bps BETWEEN 0 AND 10000",
            name=op.f("ck_bounties_fees"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounties")),
    )
    op.create_index(
        "uq_bounties_one_open",
        "bounties",
        ["status"],
        unique=True,
        postgresql_where="status IN ('active','paused')",
    )
    op.create_table(
        "game_meta",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_game_meta")),
    )
    op.create_table(
        "players",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("banned_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ban_reason", sa.Text(), nullable=True),
        sa.Column("excluded_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("daily_limit", sa.BigInteger(), nullable=True),
        sa.Column("daily_limit_set_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_players")),
    )
    op.create_table(
        "transfers",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_transfers_idempotency_key")),
    )
    op.create_table(
        "announcement_deliveries",
        sa.Column("announcement_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column(
            "delivered_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["announcement_id"],
            ["announcements.id"],
            name=op.f("fk_announcement_deliveries_announcement_id_announcements"),
        ),
        sa.PrimaryKeyConstraint(
            "announcement_id", "platform", name=op.f("pk_announcement_deliveries")
        ),
    )
    op.create_table(
        "attempt_quotes",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("bounty_id", sa.BigInteger(), nullable=False),
        sa.Column("payer_account_id", sa.BigInteger(), nullable=False),
        sa.Column("team_id", sa.BigInteger(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("max_fee", sa.BigInteger(), nullable=False),
        sa.Column("discount_bps", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bounty_id"], ["bounties.id"], name=op.f("fk_attempt_quotes_bounty_id_bounties")
        ),
        sa.ForeignKeyConstraint(
            ["payer_account_id"],
            ["accounts.id"],
            name=op.f("fk_attempt_quotes_payer_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_attempt_quotes_player_id_players")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempt_quotes")),
    )
    op.create_table(
        "attempts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("bounty_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("payer_account_id", sa.BigInteger(), nullable=False),
        sa.Column("team_id", sa.BigInteger(), nullable=True),
        sa.Column("quote_id", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("message_sha256", sa.Text(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("list_fee", sa.BigInteger(), nullable=False),
        sa.Column("discount_bps", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("guardian", sa.Text(), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("verdict_reason", sa.Text(), nullable=True),
        sa.Column("similar_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending','rejected','won','refunded','late')",
            name=op.f("ck_attempts_status"),
        ),
        sa.ForeignKeyConstraint(
            ["bounty_id"], ["bounties.id"], name=op.f("fk_attempts_bounty_id_bounties")
        ),
        sa.ForeignKeyConstraint(
            ["payer_account_id"],
            ["accounts.id"],
            name=op.f("fk_attempts_payer_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_attempts_player_id_players")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
        sa.UniqueConstraint("bounty_id", "number", name=op.f("uq_attempts_bounty_id")),
        sa.UniqueConstraint("quote_id", name=op.f("uq_attempts_quote_id")),
    )
    op.create_index(
        "ix_attempts_bounty_created", "attempts", ["bounty_id", "created_at"], unique=False
    )
    op.create_index("ix_attempts_message_sha256", "attempts", ["message_sha256"], unique=False)
    op.create_index(
        "ix_attempts_pending",
        "attempts",
        ["created_at"],
        unique=False,
        postgresql_where="status = 'pending'",
    )
    op.create_index(
        "ix_attempts_player_created", "attempts", ["player_id", "created_at"], unique=False
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_entries_nonzero")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_entries_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"], ["transfers.id"], name=op.f("fk_entries_transfer_id_transfers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
    )
    op.create_index(
        "ix_entries_account_amount",
        "entries",
        ["account_id"],
        unique=False,
        postgresql_include=["amount"],
    )
    op.create_index(op.f("ix_entries_transfer_id"), "entries", ["transfer_id"], unique=False)
    op.create_table(
        "player_identities",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_player_identities_player_id_players")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_player_identities")),
        sa.UniqueConstraint("platform", "external_id", name=op.f("uq_player_identities_platform")),
    )
    op.create_index(
        op.f("ix_player_identities_player_id"), "player_identities", ["player_id"], unique=False
    )
    for statement in AUDIT_GUARD:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
    op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_index(op.f("ix_player_identities_player_id"), table_name="player_identities")
    op.drop_table("player_identities")
    op.drop_index(op.f("ix_entries_transfer_id"), table_name="entries")
    op.drop_index("ix_entries_account_amount", table_name="entries", postgresql_include=["amount"])
    op.drop_table("entries")
    op.drop_index("ix_attempts_player_created", table_name="attempts")
    op.drop_index(
        "ix_attempts_pending", table_name="attempts", postgresql_where="status = 'pending'"
    )
    op.drop_index("ix_attempts_message_sha256", table_name="attempts")
    op.drop_index("ix_attempts_bounty_created", table_name="attempts")
    op.drop_table("attempts")
    op.drop_table("attempt_quotes")
    op.drop_table("announcement_deliveries")
    op.drop_table("transfers")
    op.drop_table("players")
    op.drop_table("game_meta")
    op.drop_index(
        "uq_bounties_one_open",
        table_name="bounties",
        postgresql_where="status IN ('active','paused')",
    )
    op.drop_table("bounties")
    op.drop_table("audit_log")
    op.drop_table("announcements")
    op.drop_table("accounts")
