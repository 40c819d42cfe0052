"""moderation and identity (SPEC §8): bans, notes, account links

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 17:01:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Usernames as the platforms show them, and who the platform made a moderator when last seen.
    op.add_column("player_identities", sa.Column("username", sa.Text(), nullable=True))
    op.add_column(
        "player_identities",
        sa.Column("username_seen_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "player_identities",
        sa.Column("seen_as_moderator", sa.Boolean(), server_default="false", nullable=False),
    )
    op.create_index(
        "ix_player_identities_username",
        "player_identities",
        ["platform", "username"],
        postgresql_where=sa.text("username IS NOT NULL"),
    )
    # A player whose identities /link moved onto another player points at it.
    op.add_column("players", sa.Column("merged_into", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_players_merged_into_players"), "players", "players", ["merged_into"], ["id"]
    )
    # Every admin action: about which player, why, and the state before and after.
    op.add_column("audit_log", sa.Column("target_player_id", sa.BigInteger(), nullable=True))
    op.add_column("audit_log", sa.Column("reason", sa.Text(), nullable=True))
    op.add_column(
        "audit_log", sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column(
        "audit_log", sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.create_index(
        "ix_audit_log_target_player",
        "audit_log",
        ["target_player_id", "id"],
        postgresql_where=sa.text("target_player_id IS NOT NULL"),
    )

    op.create_table(
        "player_bans",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("moderator", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_player_bans_player_id_players")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_player_bans")),
    )
    op.create_index("ix_player_bans_player_id", "player_bans", ["player_id", "id"])
    op.create_table(
        "player_notes",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_player_notes_player_id_players")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_player_notes")),
    )
    op.create_index("ix_player_notes_player_id", "player_notes", ["player_id", "id"])
    op.create_table(
        "link_codes",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("code_sha256", sa.Text(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_by", sa.Text(), nullable=True),
        sa.CheckConstraint("expires_at > created_at", name=op.f("ck_link_codes_expiry")),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_link_codes_player_id_players")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_codes")),
        sa.UniqueConstraint("code_sha256", name=op.f("uq_link_codes_code_sha256")),
    )
    op.create_index("ix_link_codes_player_id", "link_codes", ["player_id"])


def downgrade() -> None:
    op.drop_index("ix_link_codes_player_id", table_name="link_codes")
    op.drop_table("link_codes")
    op.drop_index("ix_player_notes_player_id", table_name="player_notes")
    op.drop_table("player_notes")
    op.drop_index("ix_player_bans_player_id", table_name="player_bans")
    op.drop_table("player_bans")
    op.drop_index(
        "ix_audit_log_target_player",
        table_name="audit_log",
        postgresql_where=sa.text("target_player_id IS NOT NULL"),
    )
    for column in ("after", "before", "reason", "target_player_id"):
        op.drop_column("audit_log", column)
    op.drop_constraint(op.f("fk_players_merged_into_players"), "players", type_="foreignkey")
    op.drop_column("players", "merged_into")
    op.drop_index(
        "ix_player_identities_username",
        table_name="player_identities",
        postgresql_where=sa.text("username IS NOT NULL"),
    )
    for column in ("seen_as_moderator", "username_seen_at", "username"):
        op.drop_column("player_identities", column)
