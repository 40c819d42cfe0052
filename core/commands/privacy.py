"""A player's own data (SPEC §11): the export as a file, and the erasure after a confirmation that
says what goes, what stays and why."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

from core.actors import Actor
from core.commands.base import Attachment, Command, CommandContext, Confirm, Reply, command
from core.errors import ConfirmationExpired, NotPermitted
from core.money import usdc
from core.services.privacy import erase, export

CONFIRM_FOR = timedelta(minutes=10)
COMPRESS_ABOVE = 8_000_000  # bytes

REMOVED = (
    "Removed: your platform accounts here (ids, names, usernames), the texts of your attempts and the "
    "guardian's replies (and what its memory made of them), your team chat messages, your wallet link "
    "and its signature, your link codes and the notices sent to you."
)
KEPT = (
    "Kept, under the pseudonym {name}, because the ledger and the game's fairness need them: every "
    "amount that moved to or from you ({entries:,} ledger entries: fees, refunds, grants, winnings, "
    "deposits, payouts), your attempts' numbers, fees and SHA-256 hashes (the round's public log and "
    "everyone's fees rest on them), your team memberships and contributions (how team pools were "
    "shared), the transaction signatures and wallet addresses of deposits, payouts and stakes (where "
    "money came from and went, on chain), and moderators' notes, bans and the audit log about you, "
    "with your names replaced."
)


async def privacy_export(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """Get a file of everything stored about you: accounts, balance history, attempts, teams, wallet, notices."""
    player_id, document = await export.export_data(ctx.app, ctx.actor)
    day = ctx.app.clock().astimezone(UTC).strftime("%Y%m%d")
    name = f"bounty-player-{player_id}-{day}.json"
    how = "as a JSON file"
    if len(document) > COMPRESS_ABOVE:  # Discord takes files up to 10 MB from a bot
        document, name, how = (
            gzip.compress(document),
            name + ".gz",
            "as a gzip-compressed JSON file",
        )
    return Reply(
        title="Your data",
        text=f"Everything the game stores about you, {how}. Amounts are in minor units "
        "(1 USDC = 1,000,000). /privacy delete erases it.",
        attachments=(Attachment(name, document),),
        private=True,
    )


def _token(player_id: int, expires_at: datetime) -> str:
    return f"privacydelete:{player_id}.{int(expires_at.timestamp())}"


async def privacy_delete(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """Delete your data: your accounts, texts and names go, the ledger keeps amounts under a pseudonym."""
    plan = await erase.plan(ctx.app, ctx.actor)
    if plan.blockers:
        raise NotPermitted(
            "Your data cannot be deleted yet. First:\n" + "\n".join(f"- {b}" for b in plan.blockers)
        )
    name = erase.pseudonym(plan.player_id)
    parts = [
        REMOVED,
        KEPT.format(name=name, entries=plan.entries),
    ]
    if plan.demo_balance:
        parts.append(
            f"Your {usdc(plan.demo_balance, demo=True)} go back to the demo faucet (demo credits, not money)."
        )
    if plan.banned:
        parts.append(
            "You are banned: a keyed hash of each of your platform accounts is kept until the ban "
            "ends, so the ban holds if you come back."
        )
    parts.append("This cannot be undone. If you play again later, you start as a new player.")
    expires = ctx.app.clock() + CONFIRM_FOR
    return Reply(
        title="Delete your data?",
        tone="danger",
        private=True,
        text="\n\n".join(parts),
        footer=("Accounts: " + ", ".join(plan.identities)) if plan.identities else None,
        confirm=Confirm(
            token=_token(plan.player_id, expires),
            prompt="Delete your data for good?",
            accept_label="Delete my data",
            cancel_label="Keep it",
            expires_at=expires,
        ),
    )


COMMANDS: list[Command] = [
    command("privacy export", privacy_export, private=True, slow=True),
    # slow: answered after a deferral, like /team disband (a private first answer with buttons)
    command("privacy delete", privacy_delete, private=True, slow=True),
]


async def _confirm_delete(app, actor: Actor, ref: str, accept: bool) -> Reply:
    player, _, expires = ref.partition(".")
    if not player.isdigit() or not expires.isdigit():
        raise ConfirmationExpired("That button is no longer valid.")
    if not accept:
        return Reply(title="Kept", text="Nothing was deleted.", private=True)
    if app.clock().timestamp() > int(expires):
        raise ConfirmationExpired("That confirmation expired: send /privacy delete again.")
    done = await erase.erase(app, actor, int(player))
    text = f"Your accounts, texts and names are gone. The ledger keeps its amounts as {done.pseudonym}."
    if done.banned:
        text += " Your ban still holds for these accounts."
    return Reply(
        title="Your data is deleted",
        tone="success",
        private=True,
        text=text + " If you use a command again, you start as a new player.",
    )


CONFIRMATIONS = {"privacydelete": _confirm_delete}
