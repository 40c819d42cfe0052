"""The command table knows what each command changes and which arguments are secrets, so every
adapter can ask first when a command was not typed by its owner (SPEC §10.3) and refuse a secret
typed where others see it (§10.6)."""

from __future__ import annotations

from bots.common import confirm as wire
from bots.telegram.render import MAX_CALLBACK_DATA
from bots.telegram.routing import DeepLinks, telegram_name
from core.commands import COMMANDS, consent


def test_every_command_says_what_it_changes():
    for c in COMMANDS:
        assert c.changes in ("view", "state", "money"), c.name
    changes = {c.name: c.changes for c in COMMANDS}
    # what SPEC §10.3 names: moving money, leaving a team, unlinking a wallet, joining accounts
    for name in ("team fund", "team attempt", "attempt", "withdraw", "deposit", "team disband"):
        assert changes[name] == "money", name
    for name in ("team leave", "team accept", "team link", "wallet unlink", "link"):
        assert changes[name] != "view", name
    for name in ("bounty", "balance", "history", "team info", "wallet", "help", "staking"):
        assert changes[name] == "view", name


def test_what_a_deep_link_opens_asks_first_or_is_a_view():
    """A deep link (t.me/<bot>?start=<payload>) reaches commands with no required argument; each that
    changes something either asks anyway or says exactly what it would do, and its question's
    button fits Telegram's callback data."""
    reachable = [c for c in COMMANDS if DeepLinks.payload_for(c) is not None]
    assert {"team_leave", "team_accept", "wallet_unlink", "team_link"} <= {
        DeepLinks.payload_for(c) for c in reachable
    }
    for c in reachable:
        if c.changes == "view" or c.confirms:
            continue
        assert c.preview is not None, f"/{c.name} changes something but has no question"
        token = f"{consent.KIND}:{consent.command_ref(c)}.{'f' * 8}.{'o' * 8}.{'t' * 16}"
        wire.encode(token, True, max_bytes=MAX_CALLBACK_DATA, where=c.name)


def test_a_tappable_command_never_acts_at_once():
    """In a Telegram message, /name (or /name@bot) is a link: one tap sends it, without arguments.
    Every top-level name that runs bare either changes nothing or asks first."""
    for c in COMMANDS:
        if len(c.path) != 1 or any(a.required for a in c.args) or c.moderator:
            continue
        assert c.changes == "view" or c.confirms, f"/{telegram_name(c.path[0])} acts on one tap"


def test_secrets_are_marked_and_answered_privately():
    secret = {c.name: c.secret_args for c in COMMANDS if c.secret_args}
    assert secret["admin bounty new"] == ("prompt",) and secret["link"] == ("code",)
    for c in COMMANDS:
        if c.secret_args:
            # Discord: the options reach only the bot and the answer is ephemeral.
            assert c.private, f"/{c.name} carries a secret but answers in public"
