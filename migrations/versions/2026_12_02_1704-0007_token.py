"""the $100Bs token (SPEC §6): wallets, holdings, discount uses, deposits, stakes and their monthly
distributions, the price history, buybacks, payouts

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 17:04:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "buybacks",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("usdc", sa.BigInteger(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("price_usd", sa.Numeric(), nullable=False),
        sa.Column("tx_signature", sa.Text(), nullable=False),
        sa.Column("moderator_player_id", sa.BigInteger(), nullable=True),
        sa.Column("moderator", sa.Text(), nullable=False),
        sa.Column("transfer_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("usdc > 0 AND tokens > 0", name=op.f("ck_buybacks_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_buybacks")),
        sa.UniqueConstraint("tx_signature", name=op.f("uq_buybacks_tx_signature")),
    )
    op.create_table(
        "staking_distributions",
        sa.Column("month", sa.Text(), nullable=False),
        sa.Column("accrued", sa.BigInteger(), nullable=False),
        sa.Column("carried_in", sa.BigInteger(), nullable=False),
        sa.Column("pool", sa.BigInteger(), nullable=False),
        sa.Column("rewards", sa.BigInteger(), nullable=False),
        sa.Column("carry", sa.BigInteger(), nullable=False),
        sa.Column("tiers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("transfer_id", sa.BigInteger(), nullable=True),
        sa.Column("distributed_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "rewards + carry = pool", name=op.f("ck_staking_distributions_accounted")
        ),
        sa.PrimaryKeyConstraint("month", name=op.f("pk_staking_distributions")),
    )
    op.create_table(
        "token_holdings",
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("accounts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_token_holdings")),
    )
    op.create_table(
        "token_prices",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("price_usd", sa.Numeric(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_prices")),
    )
    op.create_index("ix_token_prices_observed", "token_prices", ["observed_at"], unique=False)
    op.create_table(
        "deposits",
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("wallet_address", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=True),
        sa.Column("block_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transfer_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_deposits_positive")),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_deposits_player_id_players")
        ),
        sa.PrimaryKeyConstraint("signature", name=op.f("pk_deposits")),
    )
    op.create_index("ix_deposits_player", "deposits", ["player_id"], unique=False)
    op.create_table(
        "payouts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("wallet_address", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), server_default="requested", nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("signed_tx", sa.Text(), nullable=True),
        sa.Column("tx_signature", sa.Text(), nullable=True),
        sa.Column("last_valid_block_height", sa.BigInteger(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_by", sa.Text(), nullable=True),
        sa.Column("tries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('requested','approved','sending','paid','rejected')",
            name=op.f("ck_payouts_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payouts_positive")),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_payouts_player_id_players")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
        sa.UniqueConstraint("tx_signature", name=op.f("uq_payouts_tx_signature")),
    )
    op.create_index(
        "ix_payouts_open",
        "payouts",
        ["status", "id"],
        unique=False,
        postgresql_where=sa.text("status IN ('requested','approved','sending')"),
    )
    op.create_index("ix_payouts_player", "payouts", ["player_id"], unique=False)
    op.create_table(
        "stakes",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("wallet_address", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("lock_days", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unlocks_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unstaked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_stakes_positive")),
        sa.CheckConstraint("lock_days IN (30, 60, 90)", name=op.f("ck_stakes_lock_days")),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_stakes_player_id_players")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stakes")),
    )
    op.create_index(
        "ix_stakes_player_active",
        "stakes",
        ["player_id"],
        unique=False,
        postgresql_where=sa.text("unstaked_at IS NULL"),
    )
    op.create_index("ix_stakes_unlocks", "stakes", ["unlocks_at"], unique=False)
    op.create_table(
        "wallet_challenges",
        sa.Column("nonce", sa.Text(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_wallet_challenges_player_id_players")
        ),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_wallet_challenges")),
    )
    op.create_index(
        "ix_wallet_challenges_player",
        "wallet_challenges",
        ["player_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "wallets",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("challenge_nonce", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unlinked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_wallets_player_id_players")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallets")),
    )
    op.create_index("ix_wallets_address", "wallets", ["address", "unlinked_at"], unique=False)
    op.create_index(
        "uq_wallets_linked_address",
        "wallets",
        ["address"],
        unique=True,
        postgresql_where=sa.text("unlinked_at IS NULL"),
    )
    op.create_index(
        "uq_wallets_linked_player",
        "wallets",
        ["player_id"],
        unique=True,
        postgresql_where=sa.text("unlinked_at IS NULL"),
    )
    op.create_table(
        "discount_uses",
        sa.Column("attempt_id", sa.BigInteger(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("discount_bps", sa.Integer(), nullable=False),
        sa.Column("holdings", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["attempt_id"], ["attempts.id"], name=op.f("fk_discount_uses_attempt_id_attempts")
        ),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_discount_uses_player_id_players")
        ),
        sa.PrimaryKeyConstraint("attempt_id", name=op.f("pk_discount_uses")),
    )
    op.create_table(
        "staking_rewards",
        sa.Column("month", sa.Text(), nullable=False),
        sa.Column("stake_id", sa.BigInteger(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("lock_days", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("share", sa.BigInteger(), nullable=False),
        sa.Column("forfeited", sa.Boolean(), nullable=False),
        sa.Column("forfeited_share", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["month"],
            ["staking_distributions.month"],
            name=op.f("fk_staking_rewards_month_staking_distributions"),
        ),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_staking_rewards_player_id_players")
        ),
        sa.ForeignKeyConstraint(
            ["stake_id"], ["stakes.id"], name=op.f("fk_staking_rewards_stake_id_stakes")
        ),
        sa.PrimaryKeyConstraint("month", "stake_id", name=op.f("pk_staking_rewards")),
    )
    op.create_index("ix_staking_rewards_player", "staking_rewards", ["player_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_staking_rewards_player", table_name="staking_rewards")
    op.drop_table("staking_rewards")
    op.drop_table("discount_uses")
    op.drop_index(
        "uq_wallets_linked_player",
        table_name="wallets",
        postgresql_where=sa.text("unlinked_at IS NULL"),
    )
    op.drop_index(
        "uq_wallets_linked_address",
        table_name="wallets",
        postgresql_where=sa.text("unlinked_at IS NULL"),
    )
    op.drop_index("ix_wallets_address", table_name="wallets")
    op.drop_table("wallets")
    op.drop_index("ix_wallet_challenges_player", table_name="wallet_challenges")
    op.drop_table("wallet_challenges")
    op.drop_index("ix_stakes_unlocks", table_name="stakes")
    op.drop_index(
        "ix_stakes_player_active",
        table_name="stakes",
        postgresql_where=sa.text("unstaked_at IS NULL"),
    )
    op.drop_table("stakes")
    op.drop_index("ix_payouts_player", table_name="payouts")
    op.drop_index(
        "ix_payouts_open",
        table_name="payouts",
        postgresql_where=sa.text("status IN ('requested','approved','sending')"),
    )
    op.drop_table("payouts")
    op.drop_index("ix_deposits_player", table_name="deposits")
    op.drop_table("deposits")
    op.drop_index("ix_token_prices_observed", table_name="token_prices")
    op.drop_table("token_prices")
    op.drop_table("token_holdings")
    op.drop_table("staking_distributions")
    op.drop_table("buybacks")
