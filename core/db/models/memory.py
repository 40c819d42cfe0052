"""The guardian's memory (SPEC §5): attack embeddings in pgvector (one row per attempt and model),
what the memory noted about each attempt, pattern statistics, and summaries of old threads."""

from __future__ import annotations

from datetime import datetime

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from core.db.models.base import Base
from core.db.models.base import now_column as _now


class AttackEmbedding(Base):
    """An attack's embedding by one model (pgvector, HNSW, cosine). Search compares one model's
    vectors only; ``bounty_id`` and ``player_id`` are copied from the attempt for filtering."""

    __tablename__ = "attack_embeddings"
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), primary_key=True)
    model: Mapped[str] = mapped_column(Text, primary_key=True)
    bounty_id: Mapped[int] = mapped_column(BigInteger, index=True)
    player_id: Mapped[int] = mapped_column(BigInteger)
    embedding: Mapped[list[float]] = mapped_column(Vector(384))
    created_at: Mapped[datetime] = _now()
    __table_args__ = (
        Index(
            "ix_attack_embeddings_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 32, "ef_construction": 128},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
        Index("ix_attack_embeddings_model_bounty", "model", "bounty_id"),
    )


class AttemptMemory(Base):
    """What the memory noted about one answered attempt: whether the guardian saw the enhanced
    context (and how many similar attacks it recognised), the pattern categories, and whether the
    statistics counted it (exactly once)."""

    __tablename__ = "attempt_memory"
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), primary_key=True)
    enhanced_context: Mapped[bool]
    similar_count: Mapped[int | None] = mapped_column(Integer)
    similarity_threshold: Mapped[float | None] = mapped_column(Float)
    embedding_model: Mapped[str | None] = mapped_column(Text)
    categories: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    rule_categories: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    llm_categories: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    classified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    counted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()


class PatternStat(Base):
    """Attempts and wins per pattern category, per round (``bounty_id``) and all-time (``bounty_id`` 0)."""

    __tablename__ = "pattern_stats"
    bounty_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    category: Mapped[str] = mapped_column(Text, primary_key=True)
    attempts: Mapped[int] = mapped_column(BigInteger, server_default="0")
    wins: Mapped[int] = mapped_column(BigInteger, server_default="0")


class MemorySummary(Base):
    """A summary of attempts that fell out of the guardian's windows: a player's older attempts in a
    round (``scope`` "thread") or the round's attempts before its last 50 ("round", no player)."""

    __tablename__ = "memory_summaries"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    scope: Mapped[str] = mapped_column(Text)
    bounty_id: Mapped[int] = mapped_column(BigInteger)
    player_id: Mapped[int | None] = mapped_column(BigInteger)
    upto_attempt_id: Mapped[int] = mapped_column(BigInteger)
    attempts_covered: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text)  # anthropic | extractive
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    __table_args__ = (
        UniqueConstraint(
            "scope",
            "bounty_id",
            "player_id",
            name="uq_memory_summaries_scope",
            postgresql_nulls_not_distinct=True,
        ),
    )
