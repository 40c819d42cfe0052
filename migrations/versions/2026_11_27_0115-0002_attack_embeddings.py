"""attack embeddings for the guardian's memory (pgvector, HNSW)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 01:15:00
"""

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attack_embeddings",
        sa.Column("attempt_id", sa.BigInteger(), nullable=False),
        sa.Column("bounty_id", sa.BigInteger(), nullable=False),
        sa.Column("embedding", Vector(384), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["attempt_id"], ["attempts.id"], name=op.f("fk_attack_embeddings_attempt_id_attempts")
        ),
        sa.PrimaryKeyConstraint("attempt_id", name=op.f("pk_attack_embeddings")),
    )
    op.create_index(op.f("ix_attack_embeddings_bounty_id"), "attack_embeddings", ["bounty_id"])
    op.create_index(
        "ix_attack_embeddings_hnsw",
        "attack_embeddings",
        ["embedding"],
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_attack_embeddings_hnsw", table_name="attack_embeddings")
    op.drop_index(op.f("ix_attack_embeddings_bounty_id"), table_name="attack_embeddings")
    op.drop_table("attack_embeddings")
