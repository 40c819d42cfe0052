"""teams (SPEC §7): teams, members, invitations, contributions, team chats and bridged messages

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 17:03:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _now() -> sa.Column:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_key", sa.Text(), nullable=False),
        sa.Column("private", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("captain_player_id", sa.BigInteger(), nullable=False),
        sa.Column("invite_code", sa.Text(), nullable=False),
        sa.Column("split_mode", sa.Text(), server_default="proportional", nullable=False),
        sa.Column("spend_mode", sa.Text(), server_default="members", nullable=False),
        _now(),
        sa.Column("disbanded_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "split_mode IN ('proportional','equal')", name=op.f("ck_teams_split_mode")
        ),
        sa.CheckConstraint("spend_mode IN ('members','captain')", name=op.f("ck_teams_spend_mode")),
        sa.ForeignKeyConstraint(
            ["captain_player_id"], ["players.id"], name=op.f("fk_teams_captain_player_id_players")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("invite_code", name=op.f("uq_teams_invite_code")),
    )
    op.create_index(
        "uq_teams_live_name",
        "teams",
        ["name_key"],
        unique=True,
        postgresql_where=sa.text("disbanded_at IS NULL"),
    )

    op.create_table(
        "team_members",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("team_id", sa.BigInteger(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "joined_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_how", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_team_members_player_id_players")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_team_members_team_id_teams")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_members")),
    )
    op.create_index(
        "uq_team_members_current",
        "team_members",
        ["player_id"],
        unique=True,
        postgresql_where=sa.text("left_at IS NULL"),
    )
    op.create_index("ix_team_members_team", "team_members", ["team_id", "joined_at"])

    op.create_table(
        "team_invitations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("team_id", sa.BigInteger(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("invited_by", sa.BigInteger(), nullable=False),
        _now(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.ForeignKeyConstraint(
            ["invited_by"], ["players.id"], name=op.f("fk_team_invitations_invited_by_players")
        ),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_team_invitations_player_id_players")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_team_invitations_team_id_teams")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_invitations")),
    )
    op.create_index(
        "uq_team_invitations_open",
        "team_invitations",
        ["team_id", "player_id"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index("ix_team_invitations_player", "team_invitations", ["player_id", "status"])

    op.create_table(
        "team_contributions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("team_id", sa.BigInteger(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.BigInteger(), nullable=False),
        _now(),
        sa.CheckConstraint("amount > 0", name=op.f("ck_team_contributions_positive")),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_team_contributions_player_id_players")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_team_contributions_team_id_teams")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["transfers.id"],
            name=op.f("fk_team_contributions_transfer_id_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_contributions")),
        sa.UniqueConstraint("transfer_id", name=op.f("uq_team_contributions_transfer_id")),
    )
    op.create_index(
        "ix_team_contributions_team_player", "team_contributions", ["team_id", "player_id"]
    )

    op.create_table(
        "team_chats",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("team_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("chat_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column(
            "meta",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column(
            "linked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("unlinked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_team_chats_team_id_teams")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_chats")),
    )
    op.create_index(
        "uq_team_chats_team_platform",
        "team_chats",
        ["team_id", "platform"],
        unique=True,
        postgresql_where=sa.text("unlinked_at IS NULL"),
    )
    op.create_index(
        "uq_team_chats_chat",
        "team_chats",
        ["platform", "chat_id"],
        unique=True,
        postgresql_where=sa.text("unlinked_at IS NULL"),
    )

    op.create_table(
        "team_messages",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("team_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("author_external_id", sa.Text(), nullable=False),
        sa.Column("author_name", sa.Text(), nullable=False),
        sa.Column("author_player_id", sa.BigInteger(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("reply_to_id", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        _now(),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_player_id"],
            ["players.id"],
            name=op.f("fk_team_messages_author_player_id_players"),
        ),
        sa.ForeignKeyConstraint(
            ["reply_to_id"],
            ["team_messages.id"],
            name=op.f("fk_team_messages_reply_to_id_team_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_team_messages_team_id_teams")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_messages")),
    )
    op.create_index("ix_team_messages_team", "team_messages", ["team_id", "id"])

    op.create_table(
        "team_message_copies",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("chat_id", sa.Text(), nullable=False),
        sa.Column("platform_message_id", sa.Text(), nullable=False),
        sa.Column("origin", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["team_messages.id"],
            name=op.f("fk_team_message_copies_message_id_team_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_message_copies")),
    )
    op.create_index(
        "uq_team_message_copies_platform",
        "team_message_copies",
        ["platform", "chat_id", "platform_message_id"],
        unique=True,
    )
    op.create_index(
        "uq_team_message_copies_message",
        "team_message_copies",
        ["message_id", "platform"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_team_message_copies_message", table_name="team_message_copies")
    op.drop_index("uq_team_message_copies_platform", table_name="team_message_copies")
    op.drop_table("team_message_copies")
    op.drop_index("ix_team_messages_team", table_name="team_messages")
    op.drop_table("team_messages")
    op.drop_index(
        "uq_team_chats_chat",
        table_name="team_chats",
        postgresql_where=sa.text("unlinked_at IS NULL"),
    )
    op.drop_index(
        "uq_team_chats_team_platform",
        table_name="team_chats",
        postgresql_where=sa.text("unlinked_at IS NULL"),
    )
    op.drop_table("team_chats")
    op.drop_index("ix_team_contributions_team_player", table_name="team_contributions")
    op.drop_table("team_contributions")
    op.drop_index("ix_team_invitations_player", table_name="team_invitations")
    op.drop_index(
        "uq_team_invitations_open",
        table_name="team_invitations",
        postgresql_where=sa.text("status = 'open'"),
    )
    op.drop_table("team_invitations")
    op.drop_index("ix_team_members_team", table_name="team_members")
    op.drop_index(
        "uq_team_members_current",
        table_name="team_members",
        postgresql_where=sa.text("left_at IS NULL"),
    )
    op.drop_table("team_members")
    op.drop_index(
        "uq_teams_live_name", table_name="teams", postgresql_where=sa.text("disbanded_at IS NULL")
    )
    op.drop_table("teams")
