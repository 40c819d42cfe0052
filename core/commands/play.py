"""The player's commands: the round, attempts, history, leaderboard, balance, limits, help."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from core.actors import Actor
from core.commands.attempt_replies import confirmed, quote_reply
from core.commands.base import Arg, Command, CommandContext, Field, Reply, command
from core.logs import bind
from core.money import usdc
from core.services import attempts, limits, views
from core.services.token.common import age, percent, price_text, tokens, usd


async def bounty_status(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """Show the round: prize pool, your next fee, attempts so far, the prompt's commitment hash, time left."""
    s = await views.status(ctx.app, ctx.actor)
    if s.bounty is None:
        return Reply(
            title="No round yet",
            text="No round has started. Moderators open one with /admin bounty new.",
        )
    b = s.bounty
    demo = b.is_demo
    fields = [Field("Prize pool", usdc(s.pool, demo=demo)), Field("Attempts", f"{s.attempts:,}")]
    if s.next_fee is not None:
        fee = usdc(s.next_fee, demo=demo)
        if s.discount_bps:
            fee += f" (list {usdc(s.list_fee or 0, demo=demo)}, your discount {s.discount_bps / 100:g} %)"
        fields.append(Field("Your next attempt", fee))
    if b.open:
        if s.deadline is not None:
            left = s.deadline - ctx.app.clock()
            hours, rem = divmod(max(0, int(left.total_seconds())), 3600)
            fields.append(Field("Time left", f"{hours} h {rem // 60} min without a new attempt"))
        else:
            fields.append(
                Field("Time left", f"no deadline until {s.attempts_to_deadline} more attempts")
            )
    if s.patterns:
        fields.append(
            Field(
                "Most used attack patterns",
                ", ".join(f"{p.label} ({p.attempts:,})" for p in s.patterns),
                inline=False,
            )
        )
    if s.maintenance is not None:
        fields.append(
            Field(
                "Maintenance",
                (s.maintenance.reason or "on")
                + ": attempts, deposits and team funding wait; balances and withdrawals work",
                inline=False,
            )
        )
    fields.append(Field("Commitment (SHA-256)", b.public_commitment, inline=False))
    text = f"Status: {b.status}."
    if not b.open:
        text += f"\nThe guardian's prompt, revealed:\n{b.system_prompt}"
    title = f"Round #{b.id}: {b.name}" + (" (demo)" if demo else "")
    return Reply(
        title=title,
        text=text,
        fields=tuple(fields),
        footer=f"Guardian: {ctx.app.guardian.description}",
    )


async def bounty_log(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """List every attempt of the round with its time, player and the SHA-256 of its text."""
    bounty, items = await views.attempt_log(ctx.app)
    if bounty is None:
        return Reply(title="No round yet", text="Nothing to list.")
    lines = []
    revealed = not bounty.open
    if revealed and bounty.commitment is not None:
        # What the round committed to, as written: anyone can recompute its SHA-256 (docs/verify.md).
        lines.append(f"commitment sha256: {bounty.commitment_sha256}")
        lines.append(f"commitment: {bounty.commitment}")
    for it in items:
        line = f"#{it.number + 1} {it.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} {it.player} sha256:{it.sha256} {it.status}"
        if it.message is not None:
            line += f"\n    text: {it.message}\n    reply: {it.reply or '-'}"
            proof = {"n": it.number + 1, "salt": it.salt, "text": it.message, "sha256": it.sha256}
            line += f"\n    verify: {json.dumps(proof, ensure_ascii=False, sort_keys=True)}"
        lines.append(line)
    note = (
        "Texts, replies and the salts of their hashes are public now that the round has ended; "
        "each `verify:` line lets anyone recompute its hash."
        if revealed
        else "Texts stay secret until the round ends; each hash commits to one (salted, so a guess "
        "cannot be confirmed before)."
    )
    return Reply(
        title=f"Attempt log, round {bounty.name} ({len(items)} attempts)",
        text=note,
        lines=tuple(lines),
    )


async def attempt(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Pay to send a message to the guardian; you confirm the exact fee first."""
    quote = await attempts.quote_attempt(ctx.app, ctx.actor, args["message"])
    bind(round_id=quote.bounty_id)
    return quote_reply(quote)


async def history(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """Your last attempts with their fees and the guardian's replies."""
    items = await views.history(ctx.app, ctx.actor)
    if not items:
        return Reply(
            title="Your history", text="No attempts yet. Try /attempt <message>.", private=True
        )
    lines = []
    for it in items:
        lines.append(
            f"{it.created_at.astimezone(UTC):%m-%d %H:%M} {it.bounty_name} #{it.number + 1} "
            f"{usdc(it.fee, demo=it.is_demo)} {it.status}\n  you: {_clip(it.message, 200)}\n  guardian: {_clip(it.reply or '-', 300)}"
        )
    return Reply(title="Your history", lines=tuple(lines), private=True)


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


async def leaderboard(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """The most active players of this round and the past winners."""
    lb = await views.leaderboard(ctx.app)
    demo = bool(lb.bounty and lb.bounty.is_demo)
    lines = ["Most attempts this round:"]
    lines += [
        f"{i}. {name}: {n} attempts, {usdc(paid, demo=demo)}"
        for i, (name, n, paid) in enumerate(lb.most_attempts, 1)
    ] or ["  nobody yet"]
    lines.append("Winners:")
    lines += [
        f"  {name} won {rnd} ({usdc(prize, demo=demo)})" for name, rnd, prize in lb.winners
    ] or ["  nobody yet"]
    return Reply(title="Leaderboard", lines=tuple(lines))


async def balance(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """Your credits, your $100Bs holdings and holder tier, and what they are worth."""

    amount, demo = await views.balance(ctx.app, ctx.actor)
    text = "Demo credits for trying the game locally; they are not real money." if demo else ""
    fields = [Field("Balance", usdc(amount, demo=demo))]  # your credits
    t = await views.token_balance(ctx.app, ctx.actor)
    held, s, now = t.holdings, ctx.app.settings, ctx.app.clock()
    if held.address is None:
        fields.append(
            Field(
                "$100Bs",
                "no wallet linked: /wallet link <address> for holder discounts",
                inline=False,
            )
        )
    elif held.amount is None:
        fields.append(Field("$100Bs", "holdings not read yet", inline=False))
    else:
        note = f"read {age(held.checked_at, now)}" + (
            ", last refresh failed: last known value" if held.failing else ""
        )
        fields.append(Field("$100Bs", f"{tokens(held.amount, s)} ({note})", inline=False))
        fields.append(
            Field(
                "Holder tier",
                f"{percent(t.discount_bps)} off attempts" if t.discount_bps else "none",
            )
        )
        if t.next_tier is not None:
            bps, needed = t.next_tier
            fields.append(Field("Next tier", f"{percent(bps)} with {tokens(needed, s)} more"))
        if t.usd_value is not None and t.price.price is not None:
            stale = ""
            if t.price.stale:
                stale = (
                    " — stale: the price source is not answering"
                    if t.price.last_error
                    else " — stale: no newer reading"
                )
            fields.append(
                Field(
                    "Worth",
                    f"{usd(t.usd_value)} at {price_text(t.price.price)} per token "
                    f"(price from {age(t.price.observed_at, now)}{stale})",
                    inline=False,
                )
            )
        else:
            fields.append(Field("Worth", "no token price recorded yet", inline=False))
    return Reply(title="Your balance", fields=tuple(fields), text=text, private=True)


async def limits_show(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """Show your responsible-play limits."""
    return Reply(title="Your limits", text=await limits.show(ctx.app, ctx.actor), private=True)


async def limits_daily(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Cap what you can spend on attempts per day; raising it waits 24 hours."""
    return Reply(
        title="Daily limit set",
        text=await limits.set_daily_limit(ctx.app, ctx.actor, args["amount"]),
        private=True,
    )


async def limits_exclude(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Exclude yourself from paying for attempts for some days; it cannot be undone early."""
    return Reply(
        title="Self-exclusion",
        text=await limits.exclude(ctx.app, ctx.actor, args["days"]),
        private=True,
    )


COMMANDS: list[Command] = [
    command("bounty", bounty_status, bare_name="status"),
    command("bounty log", bounty_log, slow=True),
    command(
        "attempt",
        attempt,
        Arg(
            "message",
            "text",
            "what you say to the guardian",
            max_length_setting="ATTEMPT_MAX_CHARS",
        ),
        private=True,
        slow=True,
        effect="money",
        confirms=True,
    ),
    command("history", history, private=True),
    command("leaderboard", leaderboard),
    command("balance", balance, private=True),
    command("limits", limits_show, private=True, bare_name="show"),
    command(
        "limits daily",
        limits_daily,
        Arg("amount", "amount", "the most you may spend per UTC day, in USDC"),
        private=True,
        effect="state",
    ),
    command(
        "limits exclude",
        limits_exclude,
        Arg("days", "int", "how many days to stay away", min_value=1, max_value=3650),
        private=True,
        effect="state",
    ),
]


async def _confirm_attempt(app, actor: Actor, quote_id: str, accept: bool) -> Reply:
    if not accept:
        await attempts.cancel_quote(app, actor, quote_id)
        return Reply(title="Cancelled", text="Nothing was charged.", private=True)
    return await confirmed(app, actor, quote_id)


CONFIRMATIONS = {"attempt": _confirm_attempt}
