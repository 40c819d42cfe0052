"""Moderator commands (SPEC §8): the moderator right is checked again in core's services."""

from __future__ import annotations

import asyncio
from typing import Any

from core.charts import stats_chart
from core.commands.base import Arg, Attachment, Command, CommandContext, Field, Reply, command
from core.commands.moderation import COMMANDS as MODERATION
from core.errors import InvalidArgument
from core.money import parse_amount, usdc
from core.services import admin, maintenance, oversight, stats, views


async def admin_grant(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Credit a player (audited; never yourself; a large grant waits for a second moderator)."""
    g = await admin.grant(ctx.app, ctx.actor, args["player"], args["amount"], args["reason"])
    return _grant_reply(g)


def _grant_reply(g: admin.Granted) -> Reply:
    amount = usdc(g.amount, demo=g.demo)
    who = (
        f"{g.player.display_name} (#{g.player.id})" if g.player.display_name else f"#{g.player.id}"
    )
    if g.balance is None:
        return Reply(
            title="Waiting for a second moderator",
            text=f"Grant request #{g.request_id}: {amount} to {who}. It is made once another moderator "
            f"approves it with /admin grants approve {g.request_id}.",
            private=True,
            tone="warning",
        )
    text = f"{amount} to {who}. Their balance: {usdc(g.balance, demo=g.demo)}."
    if g.exempt:
        text += f" {oversight.EXEMPT_NOTE}"
    return Reply(title="Granted", text=text, private=True, tone="success")


async def admin_grants(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """The grants waiting for a second moderator."""
    waiting = await admin.grant_requests(ctx.app, ctx.actor)
    lines = tuple(
        f"#{g.id} {usdc(g.amount)} to {g.player.display_name} (#{g.player.id}), asked by {g.requested_by} "
        f"on {g.created_at:%Y-%m-%d %H:%M}: {g.reason}"
        for g in waiting
    )
    return Reply(
        title="Grants waiting for a second moderator",
        text="" if lines else "None.",
        lines=lines,
        private=True,
    )


async def admin_grants_approve(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Approve another moderator's grant request: the grant is made."""
    return _grant_reply(await admin.decide_grant(ctx.app, ctx.actor, args["id"], True))


async def admin_grants_reject(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Reject another moderator's grant request."""
    g = await admin.decide_grant(ctx.app, ctx.actor, args["id"], False, args["reason"])
    return Reply(
        title="Grant rejected",
        text=f"Grant request #{g.request_id} ({usdc(g.amount, demo=g.demo)}) will not be made.",
        private=True,
    )


async def admin_bounty_new(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Open a new round with a seed prize and the guardian's secret prompt."""
    b = await admin.new_bounty(
        ctx.app,
        ctx.actor,
        name=args["name"],
        prompt=args["prompt"],
        seed=args["seed"],
        base_fee=None,
        growth_bps=None,
        fee_cap=None,
    )
    return Reply(
        title=f"Round #{b.id} {b.name} is open",
        fields=(
            Field("Seed", usdc(b.seed, demo=b.is_demo)),
            Field("First fee", usdc(b.base_fee, demo=b.is_demo)),
            Field("Commitment", b.public_commitment, inline=False),
        ),
        private=True,
        tone="success",
    )


async def admin_bounty_set(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Change a rule of the open round: name, base_fee, growth_bps or fee_cap."""
    field, raw = args["field"], args["value"]
    value: Any
    if field in ("base_fee", "fee_cap"):
        value = parse_amount(raw)
    elif field == "growth_bps":
        if not raw.isdigit() or len(raw) > 6:
            raise InvalidArgument("growth_bps must be a whole number of basis points, like 78.")
        value = int(raw)
    else:
        value = raw[1:-1].strip() if len(raw) > 1 and raw[0] == raw[-1] == '"' else raw
    b = await admin.set_bounty(ctx.app, ctx.actor, field, value)
    return Reply(
        title=f"Round {b.name} updated",
        text=f"base fee {usdc(b.base_fee, demo=b.is_demo)}, growth {b.growth_bps} bps, "
        f"cap {usdc(b.fee_cap, demo=b.is_demo)}",
        private=True,
    )


async def admin_pause(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """Pause the round: no attempts until it resumes."""
    b = await admin.set_paused(ctx.app, ctx.actor, True)
    return Reply(
        title=f"Round {b.name} paused",
        private=True,
        text="No attempts are taken until /admin resume; players are told in the announcement channels.",
    )


async def admin_resume(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """Resume a paused round."""
    b = await admin.set_paused(ctx.app, ctx.actor, False)
    return Reply(title=f"Round {b.name} resumed", private=True, text="Attempts are open again.")


async def admin_maintenance(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Start or end maintenance: attempts, deposits and team funding wait; balances, withdrawals and
    reads keep working (announced on every platform)."""
    m = await maintenance.set_maintenance(
        ctx.app, ctx.actor, args["state"] == "on", args.get("reason") or ""
    )
    if m.on:
        return Reply(
            title="Maintenance on",
            text="Attempts, deposits and team funding are refused with the reason until "
            "/admin maintenance off; balances, withdrawals, payouts and reads work. Announced.",
            private=True,
            tone="warning",
        )
    return Reply(title="Maintenance off", text="The game is open again. Announced.", private=True)


async def admin_refund(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Refund an attempt of this round in full (audited)."""
    amount = await admin.refund(
        ctx.app, ctx.actor, args["attempt"], args.get("reason") or "no reason given"
    )
    demo = await views.is_demo(ctx.app)
    return Reply(
        title="Refunded",
        text=f"Attempt #{args['attempt']}: {usdc(amount, demo=demo)} returned to its payer.",
        private=True,
    )


async def admin_stats(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """The round's numbers and success measures, with a chart of attempts per day and the prize pool."""
    s = await stats.round_stats(ctx.app, ctx.actor)
    if s.bounty is None:
        return Reply(title="Stats", text="No round yet.", private=True)
    demo = s.bounty.is_demo
    measures = tuple(
        Field(
            name,
            "not available yet"
            if value is None
            else value
            if isinstance(value, str)
            else f"{value / 100:.2f} %",
        )
        for name, value in s.measures
    )
    chart = await asyncio.to_thread(
        stats_chart,
        f"Round #{s.bounty.id}: {s.bounty.name}" + (" (demo)" if demo else ""),
        s.by_day,
        s.pool_over_time,
        now=ctx.app.clock(),
        demo=demo,
    )
    return Reply(
        title=f"Stats, round {s.bounty.name}",
        fields=(
            Field("Attempts", f"{s.attempts:,}"),
            Field("Players", f"{s.players:,}"),
            Field("Refunded", f"{s.refunded:,}"),
            Field("Prize pool", usdc(s.pool, demo=demo)),
            Field("Revenue", usdc(s.revenue, demo=demo)),
            Field("Success rate", f"{s.success_rate_bps / 100:.2f} %"),
            *measures,
        ),
        lines=tuple(f"{day}: {n} attempts, {usdc(fees, demo=demo)}" for day, n, fees in s.by_day),
        attachments=(Attachment(f"stats-round-{s.bounty.id}.png", chart, image=True),),
        private=True,
    )


async def _prompt_exposed(ctx: CommandContext, args: dict[str, Any]) -> str:
    return "Choose another prompt too: everyone here has read this one."


COMMANDS: list[Command] = [
    command(
        "admin grant",
        admin_grant,
        Arg(
            "player",
            "player",
            "the player: @username, a mention, their user id, #<player id> or telegram:<id>",
        ),
        Arg("amount", "amount", "how much, in USDC"),
        Arg("reason", "text", "why (kept in the audit log)", max_length=500),
        moderator=True,
        private=True,
    ),
    command("admin grants", admin_grants, bare_name="list", moderator=True, private=True),
    command(
        "admin grants approve",
        admin_grants_approve,
        Arg("id", "int", "the grant request's number", min_value=1, max_value=2**62),
        moderator=True,
        private=True,
    ),
    command(
        "admin grants reject",
        admin_grants_reject,
        Arg("id", "int", "the grant request's number", min_value=1, max_value=2**62),
        Arg("reason", "text", "why (kept in the audit log)", max_length=500),
        moderator=True,
        private=True,
    ),
    command(
        "admin bounty new",
        admin_bounty_new,
        Arg(
            "name",
            "text",
            'the round\'s name (in quotes if it has spaces: "Demo round")',
            max_length=64,
        ),
        Arg("seed", "amount", "the seed prize, in USDC"),
        Arg("prompt", "text", "the guardian's secret system prompt", max_length=4_000, secret=True),
        moderator=True,
        private=True,
        on_exposed=_prompt_exposed,
    ),
    command(
        "admin bounty set",
        admin_bounty_set,
        Arg("field", "choice", "what to change", choices=admin.BOUNTY_SETTABLE),
        Arg("value", "text", "the new value (amounts in USDC, growth in bps)", max_length=64),
        moderator=True,
        private=True,
    ),
    command("admin pause", admin_pause, moderator=True, private=True),
    command(
        "admin maintenance",
        admin_maintenance,
        Arg("state", "choice", "on or off", choices=("on", "off")),
        Arg("reason", "text", "why, told to the players", required=False, max_length=300),
        moderator=True,
        private=True,
    ),
    command("admin resume", admin_resume, moderator=True, private=True),
    command(
        "admin refund",
        admin_refund,
        Arg(
            "attempt",
            "int",
            "the attempt's number in this round, as /bounty log shows it",
            min_value=1,
            max_value=2**31 - 1,
            autocomplete="attempts",
        ),
        Arg("reason", "text", "why", required=False, max_length=500),
        moderator=True,
        private=True,
    ),
    command("admin stats", admin_stats, moderator=True, private=True, slow=True),
    *MODERATION,
]
