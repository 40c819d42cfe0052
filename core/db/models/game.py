"""The game's tables: players, the ledger, rounds, attempts, the audit log, announcements."""

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
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db.models.base import Base
from core.db.models.base import now_column as _now


class Player(Base):
    """A person, whatever platforms they play from."""

    __tablename__ = "players"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    display_name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    banned_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ban_reason: Mapped[str | None] = mapped_column(Text)
    excluded_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    daily_limit: Mapped[int | None] = mapped_column(BigInteger)
    daily_limit_set_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when /link joined this player's identities onto another player (moderation migration 0004).
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("players.id"))


class PlayerIdentity(Base):
    """One platform account (discord user id, telegram user id, console) of a player."""

    __tablename__ = "player_identities"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"), index=True)
    platform: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    # What the platform shows of this person now (moderation migration 0004): a username without "@",
    # lower-case (usernames change and are reused: the newest holder keeps it), and whether the
    # platform made them a moderator when last seen.
    username: Mapped[str | None] = mapped_column(Text)
    username_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    seen_as_moderator: Mapped[bool] = mapped_column(Boolean, server_default="false")
    __table_args__ = (
        UniqueConstraint("platform", "external_id"),
        Index(
            "ix_player_identities_username",
            "platform",
            "username",
            postgresql_where="username IS NOT NULL",
        ),
    )


class Account(Base):
    """A ledger account. Guarded accounts (players, team pools) keep a locked balance that may never
    go negative; shared system accounts derive their balance from entries so attempts never lock them."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Text, default="USDC")
    guarded: Mapped[bool] = mapped_column(Boolean)
    balance: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = _now()
    __table_args__ = (
        UniqueConstraint("kind", "owner_id", "currency", postgresql_nulls_not_distinct=True),
        CheckConstraint("NOT guarded OR balance >= 0", name="guarded_not_negative"),
        CheckConstraint("guarded OR balance = 0", name="shared_balance_derived"),
    )


class Transfer(Base):
    """One movement of money; its entries add up to zero. The idempotency key makes retries safe."""

    __tablename__ = "transfers"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(Text)
    memo: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class Entry(Base):
    """One leg of a transfer. Its transfer and account are checked by ``bounty check``, not by foreign
    keys: a foreign key check locks the referenced row (KEY SHARE), and every attempt's entries reference
    the same shared accounts, so every payment would lock them (migration 0009)."""

    __tablename__ = "entries"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    transfer_id: Mapped[int] = mapped_column(BigInteger, index=True)
    account_id: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        CheckConstraint("amount <> 0", name="nonzero"),
        Index("ix_entries_account_amount", "account_id", postgresql_include=["amount"]),
    )


class Bounty(Base):
    """A round: the guardian's secret prompt (committed by hash), its seed and fee rules."""

    __tablename__ = "bounties"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    system_prompt: Mapped[str] = mapped_column(Text)
    prompt_sha256: Mapped[str] = mapped_column(Text)
    # What decides a win, committed when the round opens (migration 0016, core/services/commitment):
    # the canonical document (published at the end), its SHA-256 (published at the start), and the
    # hash of its guardian-and-memory part (checked before every attempt).
    commitment: Mapped[str | None] = mapped_column(Text)
    commitment_sha256: Mapped[str | None] = mapped_column(Text)
    config_sha256: Mapped[str | None] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(BigInteger)
    base_fee: Mapped[int] = mapped_column(BigInteger)
    growth_bps: Mapped[int] = mapped_column(Integer)
    fee_cap: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(Text, default="active")
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    created_at: Mapped[datetime] = _now()
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    winner_attempt_id: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (
        CheckConstraint("status IN ('active','paused','won','expired')", name="status"),
        CheckConstraint(
            "base_fee > 0 AND fee_cap >= base_fee AND growth_bps BETWEEN 0 AND 10000", name="fees"
        ),
        Index(
            "uq_bounties_one_open",
            "status",
            unique=True,
            postgresql_where="status IN ('active','paused')",
        ),
    )


class AttemptQuote(Base):
    """A fee shown to a player, awaiting confirmation; paying it is idempotent on its id."""

    __tablename__ = "attempt_quotes"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    bounty_id: Mapped[int] = mapped_column(
        BigInteger
    )  # no foreign key: it would lock the round's row
    payer_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    team_id: Mapped[int | None] = mapped_column(BigInteger)
    message: Mapped[str] = mapped_column(Text)
    max_fee: Mapped[int] = mapped_column(BigInteger)
    discount_bps: Mapped[int] = mapped_column(Integer, default=0)
    first_number: Mapped[int] = mapped_column(
        BigInteger, server_default="0"
    )  # the attempt number quoted
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(Text, default="open")  # open, paid, cancelled, superseded
    # The confirmation that replaced this one when the fee moved past its maximum (status superseded).
    successor_id: Mapped[str | None] = mapped_column(Text)
    salt: Mapped[str] = mapped_column(Text, server_default="")  # the paid attempt's hash salt


class AttemptNumberFree(Base):
    """An attempt number a payment took and then did not make (refused): the next payment takes it,
    so no refusal moves the fee (migration 0012)."""

    __tablename__ = "attempt_numbers_free"
    bounty_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class Attempt(Base):
    """A paid message to the guardian and what became of it."""

    __tablename__ = "attempts"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bounty_id: Mapped[int] = mapped_column(
        BigInteger
    )  # no foreign key: it would lock the round's row
    number: Mapped[int] = mapped_column(Integer)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    payer_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    team_id: Mapped[int | None] = mapped_column(BigInteger)
    quote_id: Mapped[str] = mapped_column(Text, unique=True)
    message: Mapped[str] = mapped_column(Text)
    message_sha256: Mapped[str] = mapped_column(Text)  # SHA-256 of "<salt>:<message>" (public)
    salt: Mapped[str | None] = mapped_column(Text)  # revealed with the text when the round ends
    text_sha256: Mapped[str | None] = mapped_column(Text)  # unsalted: counts identical attempts
    fee: Mapped[int] = mapped_column(BigInteger)
    list_fee: Mapped[int] = mapped_column(BigInteger)
    discount_bps: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(Text, default="pending")
    guardian: Mapped[str | None] = mapped_column(Text)
    reply: Mapped[str | None] = mapped_column(Text)
    verdict_reason: Mapped[str | None] = mapped_column(Text)
    similar_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = _now()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        CheckConstraint("status IN ('pending','rejected','won','refunded','late')", name="status"),
        UniqueConstraint("bounty_id", "number"),
        Index("ix_attempts_bounty_created", "bounty_id", "created_at"),
        Index("ix_attempts_player_created", "player_id", "created_at"),
        Index("ix_attempts_player_round", "player_id", "bounty_id", "created_at"),
        Index("ix_attempts_pending", "created_at", postgresql_where="status = 'pending'"),
        Index("ix_attempts_text_sha256", "text_sha256"),
    )


class AuditLog(Base):
    """Append-only record of every moderator action (a trigger refuses UPDATE and DELETE)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    actor_player_id: Mapped[int | None] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    target: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = _now()
    # The player an action was about, why, and the state before and after (moderation migration 0004).
    target_player_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)
    __table_args__ = (
        Index(
            "ix_audit_log_target_player",
            "target_player_id",
            "id",
            postgresql_where="target_player_id IS NOT NULL",
        ),
    )


class Announcement(Base):
    """Outbox: written in the transaction that caused it, delivered by every adapter after commit."""

    __tablename__ = "announcements"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class GameMeta(Base):
    """Small facts about this installation (e.g. that it is a local demo)."""

    __tablename__ = "game_meta"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[dict] = mapped_column(JSONB)
