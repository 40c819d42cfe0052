"""a second moderator: grant requests over the review threshold, and payout approvals

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 13:00:00

A grant over ADMIN_GRANT_REVIEW_ABOVE waits in ``grant_requests`` until another moderator approves
it; a payout is approved once PAYOUT_APPROVALS distinct moderators, none of them its payee, have
approved it (``payout_approvals``, one row each).
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grant_requests",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.BigInteger(), nullable=False),
        sa.Column("requested_by_label", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("decided_by_label", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_grant_requests_positive")),
        sa.CheckConstraint(
            "status IN ('open','approved','rejected')", name=op.f("ck_grant_requests_status")
        ),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_grant_requests_player_id_players")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["players.id"], name=op.f("fk_grant_requests_requested_by_players")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["players.id"], name=op.f("fk_grant_requests_decided_by_players")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grant_requests")),
    )
    op.create_table(
        "payout_approvals",
        sa.Column("payout_id", sa.BigInteger(), nullable=False),
        sa.Column("moderator_player_id", sa.BigInteger(), nullable=False),
        sa.Column("moderator_label", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["payout_id"], ["payouts.id"], name=op.f("fk_payout_approvals_payout_id_payouts")
        ),
        sa.ForeignKeyConstraint(
            ["moderator_player_id"],
            ["players.id"],
            name=op.f("fk_payout_approvals_moderator_player_id_players"),
        ),
        sa.PrimaryKeyConstraint(
            "payout_id", "moderator_player_id", name=op.f("pk_payout_approvals")
        ),
    )


def downgrade() -> None:
    op.drop_table("payout_approvals")
    op.drop_table("grant_requests")
