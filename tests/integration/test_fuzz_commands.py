"""Every command of the table, fuzzed through the command layer (the entry point every adapter and
the console use): random strings, unicode (right-to-left marks, zero-width, combining, emoji),
control characters, both platforms' markup, mentions, huge and negative numbers, as a text platform
types them (one line) and as Discord sends them (one value per option), by a player in a private
chat, a player in a group and a moderator. Every case is answered (a reply or a typed error with a
message), nothing escapes as a crash, and a refused command moves no money and changes no state.

``BOUNTY_FUZZ_EXAMPLES`` (default 12) sets the examples per command; the counts are printed. The
examples are the same on every run unless ``BOUNTY_FUZZ_RANDOM=1``."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from solders.keypair import Keypair
from sqlalchemy import text

from core.actors import Actor
from core.commands import COMMANDS, Reply, parse_text_args, run_command, run_confirmation
from core.errors import BountyError
from core.services import teams
from core.services.token import wallets
from tests.conftest import reset_database
from tests.helpers import USDC, fund, open_round

EXAMPLES = int(os.environ.get("BOUNTY_FUZZ_EXAMPLES", "12"))
# The same examples on every run (a red build is a real finding, not a draw); BOUNTY_FUZZ_RANDOM=1
# explores new ones.
DERANDOMIZE = os.environ.get("BOUNTY_FUZZ_RANDOM") != "1"
COUNTS: Counter[str] = Counter()

ALICE = Actor("telegram", "1001", "Alice", username="alice")
BOB_IN_GROUP = Actor(
    "telegram",
    "1002",
    "Bob",
    username="bob",
    chat_id="-100200300",
    private_chat=False,
    shown_to_others=True,
)
MOD = Actor("telegram", "4242", "Mona", username="mona")
DISCORD = Actor("discord", "1320000000000000001", "Dee", username="dee", chat_id="1")
CONSOLE = Actor("console", "operator", "operator")
ACTORS = (ALICE, BOB_IN_GROUP, MOD, DISCORD, CONSOLE)

SPECIAL = [
    "",
    " ",
    "0",
    "-1",
    "-0",
    "+5",
    "1e9",
    "0x10",
    "9" * 40,
    str(2**63),
    f"-{2**63}",
    "1.0000001",
    "0.000001",
    "12.5",
    "NaN",
    "inf",
    "-inf",
    "１２",  # full-width digits
    "٣",  # an Arabic-Indic digit
    "@alice",
    "@bob",
    "@",
    "#1",
    "#0",
    "#-3",
    "#99999999999999999999",
    "telegram:1001",
    "discord:1320000000000000001",
    "console:operator",
    "<@1001>",
    "<@!1001>",
    "<@&1>",
    "<#1>",
    "@everyone",
    "@here",
    "<b>x</b>",
    "</code><a href='x'>",
    "*bold* _it_ `code` ```block``` ||spoiler|| ~~s~~",
    "[link](http://example.invalid)",
    "\u202eevil\u202c",
    "\u200f\u200e",
    "a\u200bb\u200dc\ufeff",
    "e\u0301\u0301\u0301\u0301",
    "👨‍👩‍👧‍👦🏳️‍🌈",
    "\x00\x07\x1b[31m\x7f",
    "line\nbreak\r\n",
    "\ud7ff\U0010ffff",
    '"unclosed',
    "“curly”",
    "«guillemets»",
    "ABCD-EFGH",
    "30",
    "60",
    "90",
    "rotate",
    "show",
    "proportional",
    "equal",
    "members",
    "captain",
    "name",
    "base_fee",
    "2026-11",
    "1999-13",
    "7d",
    "30m",
    "-5d",
    "99999999d",
    "/etc/passwd",
    "/",
    ".",
    "../../../etc/shadow",
    "open sesame",
    "Vault Busters",
    "x" * 5_000,
]
# What a client would not send, but a raw API call could: NUL inside a word, a lone surrogate.
UNSTORABLE = ["a\x00b", "\x00", "\ud800", "x\udfffy"]
value = st.one_of(
    st.sampled_from(SPECIAL + UNSTORABLE),
    st.text(max_size=40),
    st.integers(-(2**70), 2**70).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=9).map(str),
)


async def snapshot(app) -> tuple:
    """Everything a refused command must leave as it was: money, standing, teams, wallets, stakes,
    payouts, rounds, the audit log. (Not players' rows: any command notes who spoke, and not link
    codes: a code typed where others saw it is put out of use on purpose.)"""
    queries = {
        # (a view may open an account with nothing in it, like a month's staking pool)
        "accounts": "SELECT coalesce(sum(hashtext(id::text || ':' || balance::text)), 0) FROM accounts WHERE balance <> 0",
        "entries": "SELECT count(*) FROM entries",
        "transfers": "SELECT count(*) FROM transfers",
        "attempts": "SELECT coalesce(sum(hashtext(id::text || status)), 0) FROM attempts",
        "bounties": "SELECT coalesce(sum(hashtext(row(id, status, base_fee, growth_bps, fee_cap, name)::text)), 0) FROM bounties",
        "members": "SELECT coalesce(sum(hashtext(row(team_id, player_id, left_at)::text)), 0) FROM team_members",
        "teams": "SELECT coalesce(sum(hashtext(row(id, captain_player_id, invite_code, split_mode, spend_mode, disbanded_at)::text)), 0) FROM teams",
        "invitations": "SELECT coalesce(sum(hashtext(row(id, status)::text)), 0) FROM team_invitations",
        "wallets": "SELECT coalesce(sum(hashtext(row(player_id, address, unlinked_at)::text)), 0) FROM wallets",
        "stakes": "SELECT coalesce(sum(hashtext(row(id, unstaked_at)::text)), 0) FROM stakes",
        "payouts": "SELECT coalesce(sum(hashtext(row(id, status)::text)), 0) FROM payouts",
        "standing": "SELECT coalesce(sum(hashtext(row(id, banned_until, excluded_until, daily_limit, merged_into)::text)), 0) FROM players",
        "identities": "SELECT coalesce(sum(hashtext(row(platform, external_id, player_id)::text)), 0) FROM player_identities",
        "audit": "SELECT count(*) FROM audit_log",
    }
    async with app.engine.connect() as conn:
        return tuple(
            [(n, (await conn.execute(text(sql))).scalar_one()) for n, sql in queries.items()]
        )


@pytest.fixture
async def world(app_factory, chain):
    """A game in which most commands can act: an open round, funded players, a team with a pool
    and an invitation, a linked wallet, a few attempts."""
    app = await app_factory(
        MODERATOR_TELEGRAM_USER_IDS="4242", SOLANA_RPC_URL=chain.url, ATTEMPT_COOLDOWN_SECONDS=0
    )

    async def build() -> None:
        await reset_database(app)
        await open_round(app, name="Fuzz")
        for who in ACTORS:
            await fund(app, who, 100 * USDC)
        await teams.create_team(app, ALICE, "Vault Busters", False)
        code = (await teams.info(app, ALICE)).team.invite_code
        await teams.join_team(app, BOB_IN_GROUP, code)
        await teams.fund(app, ALICE, 10 * USDC)
        await teams.invite(app, ALICE, "@dee")
        keypair = Keypair()
        challenge = await wallets.start_link(app, ALICE, str(keypair.pubkey()))
        await wallets.verify(app, ALICE, str(keypair.sign_message(challenge.message.encode())))

    app.fuzz_build = build  # type: ignore[attr-defined]
    return app


def answered(reply: object) -> bool:
    return isinstance(reply, Reply) and bool(reply.as_text().strip() or reply.confirm)


async def one_case(app, command, actor: Actor, raw: dict) -> None:
    """Run one fuzzed case: answered, and refused means nothing moved."""
    before = await snapshot(app)
    try:
        reply = await run_command(app, actor, command, raw)
    except BountyError as exc:
        assert exc.message.strip(), (command.name, raw)
        assert await snapshot(app) == before, (command.name, actor.label, raw)
        COUNTS["refused"] += 1
        return
    assert answered(reply), (command.name, raw, reply)
    COUNTS["answered"] += 1


async def built(app) -> None:
    """The world built once per test (the examples of one command share it)."""
    if not getattr(app, "fuzz_built", False):
        await app.fuzz_build()
        app.fuzz_built = True


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name.replace(" ", "_"))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(actor=st.sampled_from(ACTORS), words=st.lists(value, max_size=4), data=st.data())
async def test_every_command_answers_any_input_and_a_refusal_moves_nothing(
    world, command, actor, words, data
):
    await built(world)
    as_options = data.draw(st.booleans(), label="as Discord options")
    options = data.draw(st.fixed_dictionaries({a.name: value for a in command.args}))
    COUNTS["cases"] += 1
    COUNTS[command.name] += 1
    if as_options:
        raw = {k: v for k, v in options.items() if v != ""}
    else:  # as Telegram and the console type it: one line
        try:
            raw = parse_text_args(command, " ".join(words))
        except BountyError as exc:
            assert exc.message.strip()
            COUNTS["refused"] += 1
            return
    await one_case(world, command, actor, raw)


@settings(
    max_examples=max(EXAMPLES * 5, 50),
    deadline=None,
    database=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@example(
    kind="attempt", ref="\x00", accept=False, actor=ALICE
)  # found by this test: NUL reached SQL
@given(
    kind=st.sampled_from(
        ["attempt", "teamattempt", "teamdisband", "link", "run", "nosuch", "", "x" * 70]
    ),
    ref=value,
    accept=st.booleans(),
    actor=st.sampled_from(ACTORS),
)
async def test_any_confirmation_token_is_answered_and_moves_nothing(
    world, kind, ref, accept, actor
):
    if not getattr(world, "fuzz_built", False):
        await world.fuzz_build()
        world.fuzz_built = True  # type: ignore[attr-defined]
    before = await snapshot(world)
    COUNTS["tokens"] += 1
    try:
        reply = await run_confirmation(world, actor, f"{kind}:{ref}", accept)
    except BountyError as exc:
        assert exc.message.strip()
        assert await snapshot(world) == before, (kind, ref)
        return
    assert answered(reply)


async def test_opening_any_command_a_link_reaches_changes_nothing(world):
    """A deep link reaches every command without a required argument (and no moderator's): opened,
    each shows something or asks; none changes anything until its question is confirmed."""
    from core.commands.consent import open_command

    await built(world)
    opened = 0
    for command in COMMANDS:
        if command.moderator or any(a.required for a in command.args):
            continue
        for actor in (ALICE, BOB_IN_GROUP, DISCORD):
            before = await snapshot(world)
            try:
                reply = await open_command(world, actor, command)
            except BountyError as exc:
                assert exc.message.strip()
            else:
                assert answered(reply)
                if command.changes != "view" and not command.confirms:
                    assert reply.confirm is not None, command.name
            assert await snapshot(world) == before, (command.name, actor.label)
            opened += 1
    assert opened > 30


def test_zz_fuzz_counts(capsys):
    """The counts of the run (printed; this file's cases run first)."""
    with capsys.disabled():
        print(
            f"\nfuzz: {sum(1 for c in COMMANDS if COUNTS[c.name])} commands, {COUNTS['cases']} command cases "
            f"({COUNTS['answered']} answered, {COUNTS['refused']} refused, 0 crashes), "
            f"{COUNTS['tokens']} confirmation tokens, {EXAMPLES} examples per command"
        )
