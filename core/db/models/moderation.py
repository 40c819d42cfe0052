"""Moderation and identity across platforms (SPEC §8): bans, notes, account links.

The current ban stays on the player row (``players.banned_until``, read by every payment in the
same statement as the rest of the player's standing); ``player_bans`` keeps every ban ever set, for
``/admin audit``. Usernames and the link between identities live on ``player_identities`` and
``players`` (see ``core/db/models/game.py``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.models.base import Base
from core.db.models.base import now_column as _now


class PlayerBan(Base):
    """One ban: who set it, why, until when (none: until unbanned), and whether it was lifted."""

    __tablename__ = "player_bans"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    moderator: Mapped[str] = mapped_column(Text)  # "telegram:4242 (Mona)"
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lifted_by: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_player_bans_player_id", "player_id", "id"),)


class PlayerNote(Base):
    """A moderator's note about a player (kept; shown in /admin audit)."""

    __tablename__ = "player_notes"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    author: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    __table_args__ = (Index("ix_player_notes_player_id", "player_id", "id"),)


class LinkCode(Base):
    """A one-time code from /link: whoever enters it on another platform joins that player.

    Only the code's SHA-256 is stored, so reading the table does not give anyone a usable code."""

    __tablename__ = "link_codes"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code_sha256: Mapped[str] = mapped_column(Text, unique=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    platform: Mapped[str] = mapped_column(Text)  # where the code was asked for
    external_id: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    used_by: Mapped[str | None] = mapped_column(Text)  # "discord:123"
    __table_args__ = (
        CheckConstraint("expires_at > created_at", name="expiry"),
        Index("ix_link_codes_player_id", "player_id"),
    )


class GrantRequest(Base):
    """A grant over ADMIN_GRANT_REVIEW_ABOVE, waiting for a second moderator (migration 0013)."""

    __tablename__ = "grant_requests"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[int] = mapped_column(ForeignKey("players.id"))
    requested_by_label: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="open")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("players.id"))
    decided_by_label: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    __table_args__ = (
        CheckConstraint("amount > 0", name="positive"),
        CheckConstraint("status IN ('open','approved','rejected')", name="status"),
    )


class PayoutApproval(Base):
    """One moderator's approval of one payout; a payout needs PAYOUT_APPROVALS of them."""

    __tablename__ = "payout_approvals"
    payout_id: Mapped[int] = mapped_column(ForeignKey("payouts.id"), primary_key=True)
    moderator_player_id: Mapped[int] = mapped_column(ForeignKey("players.id"), primary_key=True)
    moderator_label: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
