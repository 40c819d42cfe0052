"""The $100Bs token (SPEC §6): wallets, holdings, deposits, stakes, prices, buybacks, payouts.

Token amounts are base units (8 decimals), USDC amounts micro-units; both integers.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db.models.base import Base
from core.db.models.base import now_column as _now


class WalletChallenge(Base):
    """A message a player's wallet must sign to prove it is theirs; its nonce works once."""

    __tablename__ = "wallet_challenges"
    nonce: Mapped[str] = mapped_column(Text, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    address: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)  # exactly the text to sign (UTF-8)
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_wallet_challenges_player", "player_id", "created_at"),)


class Wallet(Base):
    """A verified wallet of a player. Unlinking keeps the row (``unlinked_at``) for the relink wait."""

    __tablename__ = "wallets"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    address: Mapped[str] = mapped_column(Text)
    challenge_nonce: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(Text)
    verified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    unlinked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        # one wallet per player and one player per wallet, among linked wallets
        Index(
            "uq_wallets_linked_player",
            "player_id",
            unique=True,
            postgresql_where=text("unlinked_at IS NULL"),
        ),
        Index(
            "uq_wallets_linked_address",
            "address",
            unique=True,
            postgresql_where=text("unlinked_at IS NULL"),
        ),
        Index("ix_wallets_address", "address", "unlinked_at"),
    )


class TokenHoldings(Base):
    """The last $100Bs balance read from the chain for a wallet (all its token accounts of the mint),
    and the last failure to read it; a failure never replaces the value."""

    __tablename__ = "token_holdings"
    address: Mapped[str] = mapped_column(Text, primary_key=True)
    amount: Mapped[int | None] = mapped_column(BigInteger)  # None: never read successfully
    accounts: Mapped[int] = mapped_column(Integer, server_default="0")
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HoldingDay(Base):
    """The lowest $100Bs balance a wallet was seen with on a UTC day, and how many reads saw it: a
    stake earns for a day only if its wallet was seen holding it (migration 0014)."""

    __tablename__ = "holding_days"
    address: Mapped[str] = mapped_column(Text, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    low: Mapped[int] = mapped_column(BigInteger)
    samples: Mapped[int] = mapped_column(Integer, server_default="1")
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DiscountUse(Base):
    """A holder discount applied to an attempt (written in the attempt's payment transaction)."""

    __tablename__ = "discount_uses"
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    discount_bps: Mapped[int] = mapped_column(Integer)
    holdings: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now()


class Deposit(Base):
    """An on-chain USDC transfer credited to a player: one row per transaction signature, ever."""

    __tablename__ = "deposits"
    signature: Mapped[str] = mapped_column(Text, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    wallet_address: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    slot: Mapped[int | None] = mapped_column(BigInteger)
    block_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    transfer_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now()
    __table_args__ = (
        CheckConstraint("amount > 0", name="positive"),
        Index("ix_deposits_player", "player_id"),
    )


class Stake(Base):
    """Tokens a player commits for 30, 60 or 90 days (non-custodial: they stay in the wallet)."""

    __tablename__ = "stakes"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    wallet_address: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    lock_days: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    unlocks_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    unstaked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        CheckConstraint("amount > 0", name="positive"),
        CheckConstraint("lock_days IN (30, 60, 90)", name="lock_days"),
        Index("ix_stakes_player_active", "player_id", postgresql_where=text("unstaked_at IS NULL")),
        Index("ix_stakes_unlocks", "unlocks_at"),
    )


class StakingDistribution(Base):
    """A month's staking pool, shared once: what was distributable, paid, and carried over."""

    __tablename__ = "staking_distributions"
    month: Mapped[str] = mapped_column(Text, primary_key=True)  # "2026-03"
    accrued: Mapped[int] = mapped_column(BigInteger)  # entered the pool during the month
    carried_in: Mapped[int] = mapped_column(BigInteger)
    pool: Mapped[int] = mapped_column(BigInteger)  # accrued + carried in: what was shared
    rewards: Mapped[int] = mapped_column(BigInteger)
    carry: Mapped[int] = mapped_column(BigInteger)  # left in the pool for the next month
    tiers: Mapped[dict] = mapped_column(JSONB)
    transfer_id: Mapped[int | None] = mapped_column(BigInteger)
    distributed_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    __table_args__ = (CheckConstraint("rewards + carry = pool", name="accounted"),)


class StakingReward(Base):
    """One position's part of a month: its weight (amount × days) and share, or its forfeit."""

    __tablename__ = "staking_rewards"
    month: Mapped[str] = mapped_column(ForeignKey("staking_distributions.month"), primary_key=True)
    stake_id: Mapped[int] = mapped_column(ForeignKey("stakes.id"), primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    lock_days: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    days: Mapped[int] = mapped_column(Integer)
    share: Mapped[int] = mapped_column(BigInteger)  # credited (0 when forfeited)
    forfeited: Mapped[bool] = mapped_column(Boolean)
    forfeited_share: Mapped[int] = mapped_column(BigInteger, server_default="0")
    __table_args__ = (Index("ix_staking_rewards_player", "player_id"),)


class TokenPrice(Base):
    """The price history: a reading from the price source, or a failure to read it (price NULL)."""

    __tablename__ = "token_prices"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    price_usd: Mapped[Decimal | None] = mapped_column(Numeric)
    source: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_token_prices_observed", "observed_at"),)


class Buyback(Base):
    """The buyback reserve spent on tokens by a moderator, with the implied price."""

    __tablename__ = "buybacks"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    usdc: Mapped[int] = mapped_column(BigInteger)
    tokens: Mapped[int] = mapped_column(BigInteger)
    price_usd: Mapped[Decimal] = mapped_column(Numeric)
    tx_signature: Mapped[str] = mapped_column(Text, unique=True)
    moderator_player_id: Mapped[int | None] = mapped_column(BigInteger)
    moderator: Mapped[str] = mapped_column(Text)
    transfer_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now()
    __table_args__ = (CheckConstraint("usdc > 0 AND tokens > 0", name="positive"),)


class Payout(Base):
    """A player's withdrawal to their verified wallet: requested, approved (or rejected), then paid.

    When the worker pays, the signed transaction and its signature are stored before it is sent,
    so a retry checks that signature on chain before anything else and never pays twice."""

    __tablename__ = "payouts"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    wallet_address: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(Text, server_default="requested")
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    signed_tx: Mapped[str | None] = mapped_column(Text)  # base64 wire bytes
    tx_signature: Mapped[str | None] = mapped_column(Text, unique=True)
    last_valid_block_height: Mapped[int | None] = mapped_column(BigInteger)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paid_by: Mapped[str | None] = mapped_column(Text)
    tries: Mapped[int] = mapped_column(Integer, server_default="0")
    next_try_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        CheckConstraint("amount > 0", name="positive"),
        CheckConstraint(
            "status IN ('requested','approved','sending','paid','rejected')", name="status"
        ),
        Index(
            "ix_payouts_open",
            "status",
            "id",
            postgresql_where=text("status IN ('requested','approved','sending')"),
        ),
        Index("ix_payouts_player", "player_id"),
    )
