"""a denser HNSW graph for attack embeddings: m = 32, ef_construction = 128

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 20:30:00

Real sentence embeddings of attacks crowd together (the same few techniques, reworded), and in those
crowds the m = 16 / ef_construction = 64 graph lost true neighbours: recall@5 of the memory's search on
real MiniLM vectors among 100,000 stored was 0.91-0.95 whatever hnsw.ef_search (up to 320); rebuilt
with m = 32 / ef_construction = 128 it was 1.0 at ef_search 40 (bounty bench, search part). The index
is rebuilt once here; on a large table that takes a while (about a minute per 100,000 rows on 2 cores
with maintenance_work_mem 512MB), during which new embeddings wait.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _build(m: int, ef_construction: int) -> None:
    op.execute("DROP INDEX IF EXISTS ix_attack_embeddings_hnsw")
    op.execute(
        "CREATE INDEX ix_attack_embeddings_hnsw ON attack_embeddings USING hnsw (embedding vector_cosine_ops) "
        f"WITH (m = {m}, ef_construction = {ef_construction})"
    )


def upgrade() -> None:
    _build(32, 128)


def downgrade() -> None:
    _build(16, 64)
