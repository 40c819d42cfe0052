"""A player's own data (SPEC §11): who asked to be erased, and the keyed hashes of the platform
accounts of erased players who were banned, so that a ban outlives the erasure."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db.models.base import Base
from core.db.models.base import now_column as _now


class PlayerErasure(Base):
    """A player erased at their own request: the pseudonym left in the ledger and what was kept."""

    __tablename__ = "player_erasures"
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"), primary_key=True)
    # the players /link had joined into this one, erased with it
    joined: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default="{}")
    erased_at: Mapped[datetime] = _now()
    kept: Mapped[dict] = mapped_column(JSONB)  # counts of the rows kept, by table


class BannedIdentity(Base):
    """The keyed hash of one platform account of an erased player who was banned then: a newcomer
    with that account is banned again until ``ends_at`` (None: until a moderator lifts it)."""

    __tablename__ = "banned_identities"
    identity_hash: Mapped[str] = mapped_column(Text, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))  # the erased player
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    __table_args__ = (Index("ix_banned_identities_player_id", "player_id"),)
