"""the guardian's memory (SPEC §5): the model of every vector, attempt notes, pattern statistics,
summaries of old threads

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 17:02:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Vectors stored before models were recorded came from no known model: marked so, never
    # searched, and replaced by the re-embedding job.
    op.add_column(
        "attack_embeddings", sa.Column("model", sa.Text(), server_default="unknown", nullable=False)
    )
    op.alter_column("attack_embeddings", "model", server_default=None)
    op.add_column("attack_embeddings", sa.Column("player_id", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE attack_embeddings e SET player_id = a.player_id FROM attempts a WHERE a.id = e.attempt_id"
    )
    op.alter_column("attack_embeddings", "player_id", nullable=False)
    op.drop_constraint("pk_attack_embeddings", "attack_embeddings", type_="primary")
    op.create_primary_key("pk_attack_embeddings", "attack_embeddings", ["attempt_id", "model"])
    op.create_index(
        "ix_attack_embeddings_model_bounty", "attack_embeddings", ["model", "bounty_id"]
    )

    op.create_table(
        "attempt_memory",
        sa.Column("attempt_id", sa.BigInteger(), nullable=False),
        sa.Column("enhanced_context", sa.Boolean(), nullable=False),
        sa.Column("similar_count", sa.Integer(), nullable=True),
        sa.Column("similarity_threshold", sa.Float(), nullable=True),
        sa.Column("embedding_model", sa.Text(), nullable=True),
        sa.Column("categories", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("rule_categories", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("llm_categories", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("classified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["attempt_id"], ["attempts.id"], name=op.f("fk_attempt_memory_attempt_id_attempts")
        ),
        sa.PrimaryKeyConstraint("attempt_id", name=op.f("pk_attempt_memory")),
    )
    op.create_table(
        "pattern_stats",
        sa.Column("bounty_id", sa.BigInteger(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("attempts", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("wins", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("bounty_id", "category", name=op.f("pk_pattern_stats")),
    )
    op.create_table(
        "memory_summaries",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("bounty_id", sa.BigInteger(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=True),
        sa.Column("upto_attempt_id", sa.BigInteger(), nullable=False),
        sa.Column("attempts_covered", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_summaries")),
        sa.UniqueConstraint(
            "scope",
            "bounty_id",
            "player_id",
            name="uq_memory_summaries_scope",
            postgresql_nulls_not_distinct=True,
        ),
    )


def downgrade() -> None:
    op.drop_table("memory_summaries")
    op.drop_table("pattern_stats")
    op.drop_table("attempt_memory")
    op.drop_index("ix_attack_embeddings_model_bounty", table_name="attack_embeddings")
    # One vector per attempt again: keep the newest model's.
    op.execute(
        "DELETE FROM attack_embeddings e USING attack_embeddings f "
        "WHERE e.attempt_id = f.attempt_id AND (e.created_at, e.model) < (f.created_at, f.model)"
    )
    op.drop_constraint("pk_attack_embeddings", "attack_embeddings", type_="primary")
    op.create_primary_key("pk_attack_embeddings", "attack_embeddings", ["attempt_id"])
    op.drop_column("attack_embeddings", "player_id")
    op.drop_column("attack_embeddings", "model")
