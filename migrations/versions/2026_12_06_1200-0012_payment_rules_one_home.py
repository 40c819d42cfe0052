"""the payment's rules in one home; numbers a payment that does not happen cannot consume; escrow

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 12:00:00

- ``bounty_attempt_refusal`` and ``bounty_spend_refusal`` are the rules of who may pay an attempt now
  (the round, the cooldown, a team's rights; a ban, a self-exclusion) and ``bounty_daily_room`` what
  a daily limit leaves. The quote reads them in its one statement and the payment calls them under its
  locks, so the two cannot disagree; Python only turns their codes into words
  (core/services/attempts/refusals.py). The fee table and the split stay in Python (core/rules.py):
  the payment receives the fees of the numbers the quote accepts.
- ``bounty_pay_attempt`` decides every refusal before it takes a number, except those that depend on
  the number itself (the fee moved past the maximum, the daily limit, the balance). A number taken for
  a payment that then does not happen goes to ``attempt_numbers_free`` in the same statement, and the
  next payment takes the lowest free number first; ``bounty_next_number`` is what the next payment
  gets. So no refusal, abandon or replay moves anyone's fee; only a crash of the database server in the
  middle of a payment can leave a gap (repaired by the recovery job, checked by ``bounty check``).
- The quote is locked first: a second tap on the same confirmation waits for the first and then finds
  it paid (a replay), never a "fee moved".
- An attempt's fee goes to escrow until the guardian has answered; the answer splits it (prize pool,
  staking, buyback, operations) and a refund takes it back from escrow. So a refund never takes money
  back from a pool that may have been shared or spent meanwhile.
- The round's lock key comes from core/db/locks.py (an argument), not a number written here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

NEXT_NUMBER = r"""
CREATE FUNCTION bounty_next_number(p_bounty bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
    -- The number the next payment of the round takes: the lowest free one, else the sequence's next.
    SELECT coalesce(
        (SELECT min(f.number) FROM attempt_numbers_free f WHERE f.bounty_id = p_bounty),
        coalesce(pg_sequence_last_value(CAST('bounty_attempt_numbers_' || p_bounty AS regclass)) + 1, 0))
$$
"""

SPEND_REFUSAL = r"""
CREATE FUNCTION bounty_spend_refusal(p_player bigint, p_now timestamptz)
RETURNS TABLE (code text, detail text, extra text)
LANGUAGE sql STABLE AS $$
    -- May this player's own money go to the game now (an attempt, a team contribution)? The first
    -- refusal, or no row.
    SELECT x.code, x.detail, x.extra FROM players p, LATERAL (VALUES
        (1, 'maintenance',
         coalesce((SELECT g.value ->> 'reason' FROM game_meta g WHERE g.key = 'maintenance'), ''), '',
         EXISTS (SELECT 1 FROM game_meta g WHERE g.key = 'maintenance')),
        (2, 'banned', p.banned_until::text, coalesce(p.ban_reason, ''), p.banned_until > p_now),
        (3, 'excluded', p.excluded_until::text, '', p.excluded_until > p_now)
    ) AS x(o, code, detail, extra, refused)
    WHERE p.id = p_player AND x.refused ORDER BY x.o LIMIT 1
$$
"""

DAILY_ROOM = r"""
CREATE FUNCTION bounty_daily_room(p_player bigint, p_day_start timestamptz)
RETURNS TABLE (daily_limit bigint, spent bigint)
LANGUAGE sql STABLE AS $$
    -- A daily limit counts what the player's own money paid today: attempts paid from their balance
    -- (not refunded) and contributions to a team pool. No limit: no row.
    SELECT p.daily_limit,
           (SELECT coalesce(sum(a.fee), 0) FROM attempts a WHERE a.player_id = p_player
              AND a.created_at >= p_day_start AND a.team_id IS NULL AND a.status <> 'refunded')
         + (SELECT coalesce(sum(c.amount), 0) FROM team_contributions c WHERE c.player_id = p_player
              AND c.created_at >= p_day_start)
    FROM players p WHERE p.id = p_player AND p.daily_limit IS NOT NULL
$$
"""

ATTEMPT_REFUSAL = r"""
CREATE FUNCTION bounty_attempt_refusal(p_player bigint, p_team bigint, p_bounty bigint,
                                       p_now timestamptz, p_cooldown_s integer)
RETURNS TABLE (code text, detail text, extra text)
LANGUAGE sql STABLE AS $$
    -- May this player pay an attempt in this round now (from this team's pool, when p_team is
    -- given)? The first refusal, or no row. What may go to the game at all is bounty_spend_refusal's.
    SELECT x.code, x.detail, x.extra FROM (
        SELECT b.status, b.name, p.last_attempt_at, t.name AS team_name, t.disbanded_at, t.spend_mode,
               t.captain_player_id,
               EXISTS (SELECT 1 FROM team_members m WHERE m.team_id = p_team AND m.player_id = p_player
                       AND m.left_at IS NULL) AS member
        FROM (SELECT 1) one
        LEFT JOIN bounties b ON b.id = p_bounty
        LEFT JOIN players p ON p.id = p_player
        LEFT JOIN teams t ON t.id = p_team
    ) s, LATERAL (VALUES
        (1, 'round', coalesce(s.status, 'none'), coalesce(s.name, ''), s.status IS DISTINCT FROM 'active'),
        (2, 'cooldown',
         ceil(extract(epoch FROM s.last_attempt_at + make_interval(secs => p_cooldown_s) - p_now))::text,
         p_cooldown_s::text, s.last_attempt_at > p_now - make_interval(secs => p_cooldown_s)),
        (3, 'team_gone', coalesce(s.team_name, ''), '',
         p_team IS NOT NULL AND (s.team_name IS NULL OR s.disbanded_at IS NOT NULL)),
        (4, 'not_member', coalesce(s.team_name, ''), '', p_team IS NOT NULL AND NOT s.member),
        (5, 'captain_spends', coalesce(s.team_name, ''), '',
         p_team IS NOT NULL AND s.spend_mode = 'captain' AND s.captain_player_id <> p_player)
    ) AS x(o, code, detail, extra, refused)
    WHERE x.refused ORDER BY x.o LIMIT 1
$$
"""

PAY = r"""
CREATE FUNCTION bounty_pay_attempt(
    p_quote text, p_player bigint, p_platform text, p_external text, p_via_team boolean,
    p_now timestamptz, p_cooldown_s integer, p_day_start timestamptz, p_round_lock bigint,
    p_rules bigint[], p_fees bigint[], p_tail boolean, p_escrow bigint, p_guardian text, p_turns integer)
RETURNS TABLE (refusal text, detail text, extra text, attempt_id bigint, bounty_id bigint, number bigint,
               fee bigint, list_fee bigint, discount_bps integer, message text, similar_count integer,
               history json, payer_account_id bigint, team_id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
-- p_rules: the round's fee rules the fees were computed for (base, growth, cap).
-- p_fees: 2-D, one row per attempt number from the quote's first number on: (list fee, fee after the
-- quote's discount), for every number whose fee stays within the quote's maximum. p_tail: the last row
-- holds for every later number too (the fee reached its cap). Computed by core/rules.py.
-- A refusal is returned (refusal, detail, extra), not raised: the statement still commits the free
-- number a refused payment took, and nothing else.
DECLARE
    q record;
    b record;
    r record;
    room_limit bigint;
    room_spent bigint;
    balance_ bigint;
    seq regclass;
    n bigint;
    fresh boolean := false;
    i integer;
    k integer;
    lf bigint;
    f bigint;
    why text;
    why_detail text := '';
    why_extra text := '';
    transfer bigint;
    turns json;
    new_id bigint;
    similar_n integer;
    digest text;
    text_digest text;
BEGIN
    -- 1. The quote, locked: a second tap waits here for the first, then finds it paid.
    SELECT aq.bounty_id, aq.payer_account_id, aq.team_id, aq.message, aq.max_fee, aq.discount_bps,
           aq.first_number, aq.status, aq.player_id, aq.expires_at, aq.salt INTO q
        FROM attempt_quotes aq WHERE aq.id = p_quote FOR UPDATE;
    IF NOT FOUND OR q.status <> 'open' OR q.player_id <> p_player OR q.expires_at <= p_now THEN
        RETURN QUERY SELECT 'not_claimable'::text, ''::text, ''::text, NULL::bigint, NULL::bigint,
            NULL::bigint, NULL::bigint, NULL::bigint, NULL::integer, NULL::text, NULL::integer, NULL::json,
            NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    IF q.team_id IS NOT NULL AND NOT p_via_team THEN
        why := 'team_button';
    -- The identity that confirms still names this player (not linked or unlinked meanwhile).
    ELSIF NOT EXISTS (SELECT 1 FROM player_identities pi WHERE pi.platform = p_platform
                      AND pi.external_id = p_external AND pi.player_id = p_player) THEN
        why := 'stale_identity';
    END IF;
    IF why IS NULL THEN
        -- 2. The round, shared with other payments; a win, an expiry or a rule change waits.
        PERFORM pg_advisory_xact_lock_shared(p_round_lock);
        SELECT bo.base_fee, bo.growth_bps, bo.fee_cap INTO b FROM bounties bo WHERE bo.id = q.bounty_id;
        IF ARRAY[b.base_fee, b.growth_bps::bigint, b.fee_cap] <> p_rules THEN
            why := 'fee_moved';
        END IF;
    END IF;
    IF why IS NULL THEN
        -- 3. The player (one payment of theirs at a time), the team (a leave, a kick or a disband waits).
        PERFORM 1 FROM players pl WHERE pl.id = p_player FOR UPDATE;
        IF q.team_id IS NOT NULL THEN
            PERFORM 1 FROM teams te WHERE te.id = q.team_id FOR SHARE;
        END IF;
        SELECT * INTO r FROM bounty_spend_refusal(p_player, p_now);
        IF NOT FOUND THEN
            SELECT * INTO r FROM bounty_attempt_refusal(p_player, q.team_id, q.bounty_id, p_now, p_cooldown_s);
        END IF;
        IF FOUND THEN
            why := r.code; why_detail := r.detail; why_extra := r.extra;
        END IF;
    END IF;
    IF why IS NOT NULL THEN
        RETURN QUERY SELECT why, why_detail, why_extra, NULL::bigint, q.bounty_id, NULL::bigint, NULL::bigint,
            NULL::bigint, NULL::integer, q.message, NULL::integer, NULL::json, q.payer_account_id, q.team_id;
        RETURN;
    END IF;
    -- 4. The payer's balance, locked; what the player may still spend today (own money only).
    SELECT ac.balance INTO balance_ FROM accounts ac WHERE ac.id = q.payer_account_id FOR UPDATE;
    IF q.team_id IS NULL THEN
        SELECT d.daily_limit, d.spent INTO room_limit, room_spent FROM bounty_daily_room(p_player, p_day_start) d;
    END IF;
    -- 5. The number: the lowest free one (a payment that did not happen left it), else the next.
    SELECT fr.number INTO n FROM attempt_numbers_free fr
        WHERE fr.bounty_id = q.bounty_id AND fr.number >= q.first_number
        ORDER BY fr.number LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        seq := ('bounty_attempt_numbers_' || q.bounty_id)::regclass;
        n := nextval(seq);
        fresh := true;
    END IF;
    i := n - q.first_number + 1;
    k := coalesce(array_length(p_fees, 1), 0);
    IF i > k AND p_tail AND k > 0 THEN
        i := k;
    END IF;
    IF i > k THEN
        why := 'fee_moved'; why_detail := n::text;
    ELSE
        lf := p_fees[i][1];
        f := p_fees[i][2];
        IF room_limit IS NOT NULL AND room_spent + f > room_limit THEN
            why := 'daily_limit'; why_detail := room_spent || ' ' || f; why_extra := room_limit::text;
        ELSIF balance_ < f THEN
            why := 'funds'; why_detail := f::text; why_extra := balance_::text;
        END IF;
    END IF;
    IF why IS NOT NULL THEN
        IF fresh THEN  -- nobody paid this number: it is the next payment's
            INSERT INTO attempt_numbers_free (bounty_id, number) VALUES (q.bounty_id, n);
        END IF;
        RETURN QUERY SELECT why, why_detail, why_extra, NULL::bigint, q.bounty_id, n, f, lf, NULL::integer,
            q.message, NULL::integer, NULL::json, q.payer_account_id, q.team_id;
        RETURN;
    END IF;
    -- 6. Pay. Nothing below refuses: every lock is held and every check made.
    IF NOT fresh THEN
        DELETE FROM attempt_numbers_free fr WHERE fr.bounty_id = q.bounty_id AND fr.number = n;
    END IF;
    UPDATE attempt_quotes aq SET status = 'paid' WHERE aq.id = p_quote;
    UPDATE players pl SET last_attempt_at = p_now WHERE pl.id = p_player;
    UPDATE accounts ac SET balance = ac.balance - f WHERE ac.id = q.payer_account_id;
    INSERT INTO transfers (idempotency_key, kind) VALUES ('attempt:' || p_quote, 'attempt') RETURNING id INTO transfer;
    INSERT INTO entries (transfer_id, account_id, amount)
        VALUES (transfer, q.payer_account_id, -f), (transfer, p_escrow, f);
    -- The player's last exchanges of the round (the plain conversation), newest first.
    SELECT json_agg(json_build_array(h.message, h.reply) ORDER BY h.created_at DESC) INTO turns FROM (
        SELECT a.message, a.reply, a.created_at FROM attempts a
        WHERE a.player_id = p_player AND a.bounty_id = q.bounty_id AND a.status IN ('rejected', 'late')
        ORDER BY a.created_at DESC LIMIT p_turns) h;
    -- The public hash is salted (the salt is revealed with the texts when the round ends), so a guessed
    -- text cannot be confirmed before; the unsalted one only counts identical attempts the player may
    -- know of: their own, and those of rounds already revealed.
    digest := encode(sha256(convert_to(q.salt || ':' || q.message, 'UTF8')), 'hex');
    text_digest := encode(sha256(convert_to(q.message, 'UTF8')), 'hex');
    INSERT INTO attempts (bounty_id, number, player_id, payer_account_id, team_id, quote_id, message,
                          message_sha256, salt, text_sha256, fee, list_fee, discount_bps, status, guardian,
                          similar_count, created_at)
        VALUES (q.bounty_id, n, p_player, q.payer_account_id, q.team_id, p_quote, q.message, digest, q.salt,
                text_digest, f, lf, q.discount_bps, 'pending', p_guardian,
                (SELECT count(*) FROM attempts a JOIN bounties bo ON bo.id = a.bounty_id
                 WHERE a.text_sha256 = text_digest AND a.status <> 'refunded'
                   AND (a.player_id = p_player OR bo.status IN ('won', 'expired'))), p_now)
        RETURNING attempts.id, attempts.similar_count INTO new_id, similar_n;
    RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, new_id, q.bounty_id, n, f, lf, q.discount_bps,
        q.message, similar_n, turns, q.payer_account_id, q.team_id;
END $$;
"""

OLD_PAY_SIGNATURE = (
    "bounty_pay_attempt(text, bigint, timestamptz, integer, timestamptz, bigint, integer, bigint, bigint[], "
    "bigint, bigint[], integer[], text, integer, boolean)"
)
NEW_PAY_SIGNATURE = (
    "bounty_pay_attempt(text, bigint, text, text, boolean, timestamptz, integer, timestamptz, bigint, "
    "bigint[], bigint[], boolean, bigint, text, integer)"
)


def upgrade() -> None:
    op.create_table(
        "attempt_numbers_free",
        sa.Column("bounty_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bounty_id", "number", name=op.f("pk_attempt_numbers_free")),
    )
    op.add_column("attempt_quotes", sa.Column("successor_id", sa.Text(), nullable=True))
    op.create_index(
        "ix_team_contributions_player_created", "team_contributions", ["player_id", "created_at"]
    )
    # Salted attempt hashes (the salt revealed at the round's end); the unsalted hash kept apart.
    op.add_column("attempt_quotes", sa.Column("salt", sa.Text(), server_default="", nullable=False))
    op.add_column("attempts", sa.Column("salt", sa.Text(), nullable=True))
    op.add_column("attempts", sa.Column("text_sha256", sa.Text(), nullable=True))
    op.execute("UPDATE attempts SET text_sha256 = message_sha256")  # before: unsalted
    op.drop_index("ix_attempts_message_sha256", table_name="attempts")
    op.create_index("ix_attempts_text_sha256", "attempts", ["text_sha256"])
    op.execute(f"DROP FUNCTION {OLD_PAY_SIGNATURE}")
    for statement in (NEXT_NUMBER, SPEND_REFUSAL, DAILY_ROOM, ATTEMPT_REFUSAL, PAY):
        op.execute(statement)


def downgrade() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("2026_12_02_1705-0008_attempt_payment.py")
    spec = importlib.util.spec_from_file_location("migration_0008", path)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    op.execute(f"DROP FUNCTION {NEW_PAY_SIGNATURE}")
    for fn in (
        "bounty_attempt_refusal(bigint, bigint, bigint, timestamptz, integer)",
        "bounty_daily_room(bigint, timestamptz)",
        "bounty_spend_refusal(bigint, timestamptz)",
        "bounty_next_number(bigint)",
    ):
        op.execute(f"DROP FUNCTION {fn}")
    op.execute(old.PAY)
    op.drop_index("ix_attempts_text_sha256", table_name="attempts")
    op.create_index("ix_attempts_message_sha256", "attempts", ["message_sha256"])
    op.drop_column("attempts", "text_sha256")
    op.drop_column("attempts", "salt")
    op.drop_column("attempt_quotes", "salt")
    op.drop_index("ix_team_contributions_player_created", table_name="team_contributions")
    op.drop_column("attempt_quotes", "successor_id")
    op.drop_table("attempt_numbers_free")
