"""Teams (SPEC §7): members, invitations, pool contributions, team chats on each platform, and the
bridged team chat with the mapping between the platforms' message ids."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db.models.base import Base
from core.db.models.base import now_column as _now


class Team(Base):
    """A team: its captain, invite code, who may spend its pool and how a prize is split.
    The pool itself is a guarded ledger account (kind ``team_pool``, owner = this id)."""

    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_key: Mapped[str] = mapped_column(
        Text
    )  # the name folded for comparison: unique among live teams
    private: Mapped[bool] = mapped_column(Boolean, server_default="false")
    captain_player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    invite_code: Mapped[str] = mapped_column(Text, unique=True)
    split_mode: Mapped[str] = mapped_column(Text, server_default="proportional")
    spend_mode: Mapped[str] = mapped_column(Text, server_default="members")
    created_at: Mapped[datetime] = _now()
    disbanded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        CheckConstraint("split_mode IN ('proportional','equal')", name="split_mode"),
        CheckConstraint("spend_mode IN ('members','captain')", name="spend_mode"),
        # a name is taken while its team exists; a disbanded team's name is free again
        Index(
            "uq_teams_live_name",
            "name_key",
            unique=True,
            postgresql_where=text("disbanded_at IS NULL"),
        ),
    )


class TeamMember(Base):
    """One membership: a player in a team from ``joined_at`` until ``left_at`` (kept for history)."""

    __tablename__ = "team_members"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    joined_at: Mapped[datetime] = _now()
    left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    left_how: Mapped[str | None] = mapped_column(Text)  # left, kicked, disbanded
    __table_args__ = (
        # one team per player, enforced by the database whatever the concurrency
        Index(
            "uq_team_members_current",
            "player_id",
            unique=True,
            postgresql_where=text("left_at IS NULL"),
        ),
        Index("ix_team_members_team", "team_id", "joined_at"),
    )


class TeamInvitation(Base):
    """A player invited into a team; open until accepted, replaced or past ``expires_at``."""

    __tablename__ = "team_invitations"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    invited_by: Mapped[int] = mapped_column(ForeignKey("players.id"))
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(Text, server_default="open")  # open, accepted, cancelled
    __table_args__ = (
        Index(
            "uq_team_invitations_open",
            "team_id",
            "player_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_team_invitations_player", "player_id", "status"),
    )


class TeamContribution(Base):
    """A member's money put into the pool (the ledger transfer it was), kept when they leave."""

    __tablename__ = "team_contributions"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), unique=True)
    created_at: Mapped[datetime] = _now()
    __table_args__ = (
        CheckConstraint("amount > 0", name="positive"),
        Index("ix_team_contributions_team_player", "team_id", "player_id"),
        Index("ix_team_contributions_player_created", "player_id", "created_at"),
    )


class TeamChat(Base):
    """Where a team talks on a platform: a Discord channel (or private thread), a Telegram group.
    ``meta`` holds what the adapter needs again (the Discord webhook that carries relayed names)."""

    __tablename__ = "team_chats"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    platform: Mapped[str] = mapped_column(Text)
    chat_id: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)  # channel, thread, group
    meta: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    problem: Mapped[str | None] = mapped_column(
        Text
    )  # what the bot could not do there, shown in /team info
    linked_at: Mapped[datetime] = _now()
    unlinked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        Index(
            "uq_team_chats_team_platform",
            "team_id",
            "platform",
            unique=True,
            postgresql_where=text("unlinked_at IS NULL"),
        ),
        Index(
            "uq_team_chats_chat",
            "platform",
            "chat_id",
            unique=True,
            postgresql_where=text("unlinked_at IS NULL"),
        ),
    )


class TeamMessage(Base):
    """A message of a team's chat, from whichever platform it was written on. Never shown to the
    guardian: attempts are the only thing it reads."""

    __tablename__ = "team_messages"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    platform: Mapped[str] = mapped_column(Text)  # where it was written
    author_external_id: Mapped[str] = mapped_column(Text)
    author_name: Mapped[str] = mapped_column(Text)
    author_player_id: Mapped[int | None] = mapped_column(ForeignKey("players.id"))
    body: Mapped[str] = mapped_column(Text)
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("team_messages.id"))
    version: Mapped[int] = mapped_column(Integer, server_default="1")  # 1 + the number of edits
    created_at: Mapped[datetime] = _now()
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_team_messages_team", "team_id", "id"),)


class TeamMessageCopy(Base):
    """A team message as it exists on one platform: the original, or the bot's relayed copy.
    Looking a platform's message id up here finds the team message (edits, replies)."""

    __tablename__ = "team_message_copies"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("team_messages.id"))
    platform: Mapped[str] = mapped_column(Text)
    chat_id: Mapped[str] = mapped_column(Text)
    platform_message_id: Mapped[str] = mapped_column(Text)
    origin: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[int] = mapped_column(
        Integer, server_default="1"
    )  # the message version it shows
    __table_args__ = (
        Index(
            "uq_team_message_copies_platform",
            "platform",
            "chat_id",
            "platform_message_id",
            unique=True,
        ),
        Index("uq_team_message_copies_message", "message_id", "platform", unique=True),
    )
