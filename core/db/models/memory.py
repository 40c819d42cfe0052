"""The guardian's memory (SPEC §5): attack embeddings in pgvector."""

from __future__ import annotations

from datetime import datetime

from pgvector.sqlalchemy import Vector
from sqlalchemy import BigInteger, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from core.db.models.base import Base
from core.db.models.base import now_column as _now


class AttackEmbedding(Base):
    """An attack's embedding for the guardian's semantic memory (pgvector, HNSW, cosine)."""

    __tablename__ = "attack_embeddings"
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), primary_key=True)
    bounty_id: Mapped[int] = mapped_column(BigInteger, index=True)
    embedding: Mapped[list[float]] = mapped_column(Vector(384))
    created_at: Mapped[datetime] = _now()
    __table_args__ = (
        Index(
            "ix_attack_embeddings_hnsw", "embedding", postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64}, postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
    )
