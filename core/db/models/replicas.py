"""Running more than one copy of a bot (SPEC §2): Telegram updates taken by one webhook replica."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.models.base import Base
from core.db.models.base import now_column as _now


class TelegramUpdate(Base):
    """An update id a webhook replica took: the first replica to insert it handles the update, any
    other copy of it (Telegram retrying on another replica) is dropped. Purged after two days."""

    __tablename__ = "telegram_updates"
    bot_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    taken_by: Mapped[str] = mapped_column(Text)  # the replica, for an operator reading the table
    taken_at: Mapped[datetime] = _now()
    __table_args__ = (Index("ix_telegram_updates_taken_at", "taken_at"),)
