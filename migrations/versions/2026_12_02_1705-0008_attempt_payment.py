"""attempt payment in one round trip: the quote's attempt number, and bounty_pay_attempt()

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 17:05:00

Paying an attempt is the game's hot path. Its rules stay in Python (core/services/attempts.py: the
fee table, the confirmed maximum, the messages); what must happen atomically in the database (claim
the quote, take the cooldown, the round's shared lock, the attempt number, the payer's guarded debit,
the ledger entries, the attempt row) runs here as one statement, so a payment costs one round trip
instead of about eight. A refusal raises a BBxxx SQLSTATE and the whole statement rolls back.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PAY = r"""
CREATE FUNCTION bounty_pay_attempt(
    p_quote text, p_player bigint, p_now timestamptz, p_cooldown_s integer, p_day_start timestamptz,
    p_base bigint, p_growth integer, p_cap bigint, p_fees bigint[], p_tail_fee bigint,
    p_shared bigint[], p_split integer[], p_guardian text, p_turns integer, p_team_checked boolean)
RETURNS TABLE (attempt_id bigint, bounty_id bigint, number bigint, fee bigint, list_fee bigint,
               discount_bps integer, message text, similar_count integer, history json,
               payer_account_id bigint, team_id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
-- p_fees: list fees for attempt numbers first_number .. first_number + n - 1 that the quote accepts;
-- p_tail_fee: the list fee of every later number (the cap), or NULL when later numbers cost more
-- than the quote's maximum. p_shared: the prize pool, staking pool, buyback reserve and operations
-- accounts; p_split: the prize, staking and buyback shares in basis points (core/rules.split_payment,
-- whose rounding this repeats: prize of the fee, staking and buyback of the rest, operations the remainder). Errors: BB001 quote not claimable, BB002 round not active, BB003 banned, BB004 excluded,
-- BB005 cooldown, BB006 fee moved past the maximum, BB007 daily limit, BB008 insufficient funds,
-- BB009 a team's quote confirmed without the team's checks (p_team_checked: the caller made them).
DECLARE
    q record;
    b record;
    p record;
    seq regclass;
    last_number bigint;
    n bigint;
    lf bigint;
    f bigint;
    paid bigint;
    transfer bigint;
    prize bigint;
    revenue bigint;
    staking bigint;
    buyback bigint;
    turns json;
    cooled boolean;
    new_id bigint;
    similar_n integer;
    digest text;
BEGIN
    -- Every refusal that needs no lock is decided before anything is written, so a refused payment
    -- (the fee moved past the maximum under load) costs reads only.
    SELECT aq.bounty_id, aq.payer_account_id, aq.team_id, aq.message, aq.max_fee, aq.discount_bps,
           aq.first_number INTO q
        FROM attempt_quotes aq
        WHERE aq.id = p_quote AND aq.status = 'open' AND aq.player_id = p_player AND aq.expires_at > p_now;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'quote not claimable' USING ERRCODE = 'BB001';
    END IF;
    IF q.team_id IS NOT NULL AND NOT p_team_checked THEN
        RAISE EXCEPTION 'team quote' USING ERRCODE = 'BB009';
    END IF;
    -- Refuse before taking a number when the fee has visibly moved past the confirmed maximum.
    seq := ('bounty_attempt_numbers_' || q.bounty_id)::regclass;
    last_number := pg_sequence_last_value(seq);
    n := coalesce(last_number + 1, 0);
    IF n - q.first_number >= coalesce(array_length(p_fees, 1), 0) AND p_tail_fee IS NULL THEN
        RAISE EXCEPTION 'fee moved' USING ERRCODE = 'BB006', DETAIL = n::text;
    END IF;
    -- Claimed once, whatever the retries: the row lock makes a concurrent claim or cancel wait.
    UPDATE attempt_quotes AS aq SET status = 'paid' WHERE aq.id = p_quote AND aq.status = 'open';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'quote not claimable' USING ERRCODE = 'BB001';
    END IF;
    -- Payments share the round's lock; a win or an expiry takes it exclusively.
    PERFORM pg_advisory_xact_lock_shared(1, q.bounty_id::integer);
    SELECT bo.status, bo.name, bo.base_fee, bo.growth_bps, bo.fee_cap INTO b FROM bounties bo WHERE bo.id = q.bounty_id;
    IF b.status <> 'active' THEN
        RAISE EXCEPTION 'round not active' USING ERRCODE = 'BB002', DETAIL = b.status;
    END IF;
    IF b.base_fee <> p_base OR b.growth_bps <> p_growth OR b.fee_cap <> p_cap THEN
        RAISE EXCEPTION 'fee rules changed' USING ERRCODE = 'BB006';
    END IF;
    UPDATE players AS pl SET last_attempt_at = p_now
        WHERE pl.id = p_player AND (pl.last_attempt_at IS NULL
                                    OR pl.last_attempt_at <= p_now - make_interval(secs => p_cooldown_s))
        RETURNING pl.banned_until, pl.ban_reason, pl.excluded_until, pl.daily_limit, pl.last_attempt_at INTO p;
    cooled := FOUND;
    IF NOT cooled THEN
        SELECT pl.banned_until, pl.ban_reason, pl.excluded_until, pl.daily_limit, pl.last_attempt_at
            INTO p FROM players pl WHERE pl.id = p_player;
    END IF;
    IF p.banned_until > p_now THEN
        RAISE EXCEPTION 'banned' USING ERRCODE = 'BB003', DETAIL = p.banned_until::text, HINT = coalesce(p.ban_reason, '');
    END IF;
    IF p.excluded_until > p_now THEN
        RAISE EXCEPTION 'excluded' USING ERRCODE = 'BB004', DETAIL = p.excluded_until::text;
    END IF;
    IF NOT cooled THEN
        RAISE EXCEPTION 'cooldown' USING ERRCODE = 'BB005',
            DETAIL = extract(epoch FROM p.last_attempt_at + make_interval(secs => p_cooldown_s) - p_now)::text;
    END IF;
    n := nextval(seq);
    IF n - q.first_number < coalesce(array_length(p_fees, 1), 0) THEN
        lf := p_fees[n - q.first_number + 1];
    ELSIF p_tail_fee IS NOT NULL THEN
        lf := p_tail_fee;
    ELSE
        RAISE EXCEPTION 'fee moved' USING ERRCODE = 'BB006', DETAIL = n::text;
    END IF;
    f := lf - lf * q.discount_bps / 10000;
    IF f > q.max_fee THEN
        RAISE EXCEPTION 'fee moved' USING ERRCODE = 'BB006', DETAIL = n::text;
    END IF;
    IF p.daily_limit IS NOT NULL THEN
        SELECT coalesce(sum(a.fee), 0) INTO paid FROM attempts a
            WHERE a.player_id = p_player AND a.created_at >= p_day_start AND a.status <> 'refunded';
        IF paid + f > p.daily_limit THEN
            RAISE EXCEPTION 'daily limit' USING ERRCODE = 'BB007', DETAIL = paid || ' ' || f || ' ' || p.daily_limit;
        END IF;
    END IF;
    -- The ledger transfer (core/ledger.py's rules): one guarded debit, entries summing to zero.
    UPDATE accounts SET balance = balance - f WHERE id = q.payer_account_id AND balance >= f;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'insufficient funds' USING ERRCODE = 'BB008', DETAIL = f::text;
    END IF;
    INSERT INTO transfers (idempotency_key, kind) VALUES ('attempt:' || p_quote, 'attempt') RETURNING id INTO transfer;
    prize := f * p_split[1] / 10000;
    revenue := f - prize;
    staking := revenue * p_split[2] / 10000;
    buyback := revenue * p_split[3] / 10000;
    INSERT INTO entries (transfer_id, account_id, amount)
        SELECT transfer, leg.account, leg.amount FROM (VALUES
            (q.payer_account_id, -f), (p_shared[1], prize), (p_shared[2], staking), (p_shared[3], buyback),
            (p_shared[4], revenue - staking - buyback)) AS leg(account, amount)
        WHERE leg.amount <> 0;
    -- The player's last exchanges of the round (the plain conversation), newest first, read through
    -- the (player_id, created_at) index without touching the rest of the player's history.
    SELECT json_agg(json_build_array(h.message, h.reply) ORDER BY h.created_at DESC) INTO turns FROM (
        SELECT a.message, a.reply, a.created_at FROM attempts a
        WHERE a.player_id = p_player AND a.bounty_id = q.bounty_id AND a.status IN ('rejected', 'late')
        ORDER BY a.created_at DESC LIMIT p_turns) h;
    digest := encode(sha256(convert_to(q.message, 'UTF8')), 'hex');
    INSERT INTO attempts (bounty_id, number, player_id, payer_account_id, team_id, quote_id, message,
                          message_sha256, fee, list_fee, discount_bps, status, guardian, similar_count, created_at)
        VALUES (q.bounty_id, n, p_player, q.payer_account_id, q.team_id, p_quote, q.message, digest, f, lf,
                q.discount_bps, 'pending', p_guardian,
                (SELECT count(*) FROM attempts a WHERE a.message_sha256 = digest AND a.status <> 'refunded'), p_now)
        RETURNING attempts.id, attempts.similar_count INTO new_id, similar_n;
    RETURN QUERY SELECT new_id, q.bounty_id, n, f, lf, q.discount_bps, q.message, similar_n, turns,
                        q.payer_account_id, q.team_id;
END $$
"""


def upgrade() -> None:
    op.add_column(
        "attempt_quotes",
        sa.Column("first_number", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.execute(PAY)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION bounty_pay_attempt(text, bigint, timestamptz, integer, timestamptz, bigint, integer, "
        "bigint, bigint[], bigint, bigint[], integer[], text, integer, boolean)"
    )
    op.drop_column("attempt_quotes", "first_number")
