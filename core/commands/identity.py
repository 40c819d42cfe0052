"""One player on several platforms (SPEC §8): linking accounts with a one-time code.

Entering a code never joins at once (SPEC §10.3): the person typing it is first shown both accounts,
what each holds, and which one stays; only their confirmation joins them. The code, a secret, is
refused (and put out of use) when typed where others see it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.actors import Actor
from core.commands.base import Arg, Command, CommandContext, Confirm, Field, Reply, command
from core.commands.consent import pressed, question_token
from core.money import usdc
from core.services import identity

QUESTION_TTL = timedelta(minutes=5)
AGAIN = "send /link with the code again."


def _holding(side: identity.Side, demo: bool) -> str:
    if not side.holds:
        return "nothing yet (no money, no history)"
    holds = [h for h in side.holds if not h.startswith("a balance of")]
    return ", ".join([f"a balance of {usdc(side.balance, demo=demo)}", *holds])


def link_question(plan: identity.JoinPlan) -> str:
    """What joining would do, naming both accounts, what each holds and which one stays."""
    mine, theirs, stays = plan.enterer, plan.issuer, plan.survivor
    demo = plan.is_demo
    lines = [
        f"This account ({mine.label()}) holds {_holding(mine, demo)}.",
        f"The account that made the code ({theirs.label()}) holds {_holding(theirs, demo)}.",
    ]
    if stays is mine:
        lines.append(
            f"Yours stays: {theirs.label()} becomes part of it and can spend your balance of "
            f"{usdc(mine.balance, demo=demo)}, play, stake and withdraw it to a wallet it links. "
            "Confirm only if that account is yours: anyone who asked you to type their code is "
            "asking for your money."
        )
    else:
        lines.append(
            f"Theirs stays: this account becomes part of {theirs.label()} and shares its balance, "
            "history, wallet and team; anything you do here is done as that player."
        )
    return "\n".join(lines)


def _question(
    app,
    actor: Actor,
    plan: identity.JoinPlan,
    title: str = "Join these two accounts into one player?",
) -> Reply:
    question = link_question(plan)
    expires_at = min(app.clock() + QUESTION_TTL, plan.code_expires_at)
    return Reply(
        title=title,
        text=f"{question}\nNothing is joined unless you confirm.",
        private=True,
        tone="danger" if plan.survivor is plan.enterer else "warning",
        confirm=Confirm(
            token=question_token(actor, "link", str(plan.code_id), expires_at, question),
            prompt="Join the two accounts?",
            accept_label="Join them",
            cancel_label="Do not join",
            expires_at=expires_at,
        ),
    )


async def link(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Play as one player on Discord and Telegram: /link gives a code, /link <code> on the other joins."""
    if args.get("code"):
        plan = await identity.plan_join(ctx.app, ctx.actor, args["code"])
        return _question(ctx.app, ctx.actor, plan)
    made = await identity.new_code(ctx.app, ctx.actor)
    return Reply(
        title="Link your accounts",
        text=(
            "On your other platform (Discord or Telegram), send /link with this code within 10 minutes. "
            "It works once.\nWhoever enters it joins their account with yours and shares your balance: "
            "never give it to anyone else."
        ),
        code=made.code,
        footer=f"Valid until {made.expires_at:%H:%M} UTC.",
        private=True,
    )


async def _code_exposed(ctx: CommandContext, args: dict[str, Any]) -> str:
    if await identity.refuse_code(ctx.app, ctx.actor, args["code"], why="exposed"):
        return "That code no longer works: send /link on your other platform for a new one."
    return ""


async def _confirm_link(app, actor: Actor, token_ref: str, accept: bool) -> Reply:
    press = pressed(app, actor, "link", token_ref, again=AGAIN)
    try:
        code_id = int(press.ref)
    except ValueError:
        code_id = 0
    if not accept:
        await identity.refuse_code(app, actor, code_id=code_id, why="declined")
        return Reply(
            title="Not joined",
            text="Nothing was joined, and that code no longer works.",
            private=True,
        )
    plan = await identity.plan_join(app, actor, code_id=code_id)
    if not press.still_reads(actor, link_question(plan)):
        return _question(app, actor, plan, "The accounts changed since you were asked")
    joined = await identity.join(app, actor, code_id=code_id, survivor_id=plan.survivor.player_id)
    return Reply(
        title="Accounts linked",
        text="These accounts are one player now: one balance, one history, the same limits and standing.",
        fields=(
            Field("Accounts", ", ".join(i.label() for i in joined.identities), inline=False),
            Field("Balance", usdc(joined.balance, demo=joined.is_demo)),
        ),
        private=True,
        tone="success",
    )


COMMANDS: list[Command] = [
    command(
        "link",
        link,
        Arg(
            "code",
            "word",
            "the code /link gave you on your other platform",
            required=False,
            max_length=20,
            secret=True,
        ),
        private=True,
        # answered after a deferral: a first answer carrying buttons would make discord.py keep a
        # timer for them that outlives a bot stopping sooner (see /team disband)
        slow=True,
        effect="state",
        confirms=True,
        on_exposed=_code_exposed,
    ),
]
CONFIRMATIONS = {"link": _confirm_link}
