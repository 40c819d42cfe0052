"""$100Bs token commands (SPEC §6): wallet, deposits, staking, buyback, withdrawals, and their
moderator side."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from core.commands import previews
from core.commands.base import Arg, Command, CommandContext, Field, Reply, command
from core.errors import InvalidArgument, NotConfigured
from core.money import parse_amount, usdc
from core.services import oversight
from core.services.players import require_moderator
from core.services.token import buyback, deposits, payouts, staking, wallets
from core.services.token.common import (
    age,
    associated_account,
    parse_month,
    percent,
    price_text,
    tier_bps,
    token_currency,
    tokens,
    treasury_usdc_account,
    when,
)
from core.services.token.holdings import Holdings


def _holdings_line(ctx: CommandContext, held: Holdings) -> str:
    now = ctx.app.clock()
    if held.amount is None:
        return "not read yet" + (" (Solana did not answer; retrying)" if held.failing else "")
    line = f"{tokens(held.amount, ctx.app.settings)} (read {age(held.checked_at, now)}"
    if held.failing:
        line += f"; the last refresh failed {age(held.last_error_at, now)}, so this is the last known value"
    return line + ")"


# --- wallet ---


async def wallet_show(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """Show your linked wallet and its $100Bs holdings."""
    view = await wallets.show(ctx.app, ctx.actor)
    if view.address is None:
        text = "No wallet is linked. Link one with /wallet link <address> to deposit, withdraw, stake and get holder discounts."
        if view.pending is not None:
            text += (
                f"\nA link to {view.pending.address} waits for its signature until {when(view.pending.expires_at)}: "
                "/wallet verify <signature>."
            )
        return Reply(title="Your wallet", text=text, private=True)
    bps = tier_bps(view.holdings.amount, ctx.app.settings)
    recent = await payouts.mine(ctx.app, ctx.actor)
    deposit_to = _deposit_address(ctx)
    lines = tuple(
        f"Payout #{p.id}: {usdc(p.amount)} {p.status}"
        + (f" (tx {p.tx_signature})" if p.tx_signature else "")
        for p in recent
    )
    return Reply(
        title="Your wallet",
        fields=(
            Field("Address", view.address, inline=False),
            Field("Verified", when(view.verified_at)),  # type: ignore[arg-type]
            Field("Holdings", _holdings_line(ctx, view.holdings), inline=False),
            Field("Holder discount", percent(bps) if bps else "none"),
        )
        + ((Field("Deposit USDC to", deposit_to, inline=False),) if deposit_to else ()),
        lines=lines,
        private=True,
    )


def _deposit_address(ctx: CommandContext) -> str | None:
    """Where players send USDC: the treasury wallet (wallet apps pay its USDC account) or the account."""

    s = ctx.app.settings
    try:
        account = treasury_usdc_account(s)
    except NotConfigured:
        return None
    if s.TREASURY_WALLET and account == associated_account(s.TREASURY_WALLET, s.USDC_MINT):
        return f"{s.TREASURY_WALLET} (its USDC account {account}), then /deposit <signature>"
    return f"the USDC account {account}, then /deposit <signature>"


async def wallet_link(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Start linking your Solana wallet: you get a message to sign with it."""
    challenge = await wallets.start_link(ctx.app, ctx.actor, args["address"])
    minutes = ctx.app.settings.WALLET_CHALLENGE_SECONDS // 60
    return Reply(
        title="Sign this message with your wallet",
        text=(
            f"Sign the message below exactly as shown (Phantom or Solflare: sign message), with the wallet "
            f"{challenge.address}, then send /wallet verify <signature>. It expires in {minutes} minutes and "
            "works once."
        ),
        code=challenge.message,
        private=True,
    )


def _linked_reply(
    ctx: CommandContext, linked: wallets.Linked, *, signature: str | None = None
) -> Reply:
    bps = tier_bps(linked.holdings.amount, ctx.app.settings)
    fields = [
        Field("Address", linked.address, inline=False),
        Field("Holdings", _holdings_line(ctx, linked.holdings), inline=False),
        Field("Holder discount", percent(bps) if bps else "none"),
    ]
    if signature:
        fields.insert(1, Field("Signature", signature, inline=False))
    note = (
        "Solana did not answer just now; your holdings are read again in a moment."
        if linked.holdings_error
        else "Deposits from this wallet can be credited, and payouts go to it."
    )
    return Reply(
        title="Wallet linked", text=note, fields=tuple(fields), private=True, tone="success"
    )


async def wallet_verify(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Finish linking: the wallet's signature of the message, in base58."""
    return _linked_reply(ctx, await wallets.verify(ctx.app, ctx.actor, args["signature"]))


async def wallet_sign(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Sign the waiting wallet link with a local keypair file and verify it (console only)."""
    signature, linked = await wallets.sign_with_keypair_file(
        ctx.app, ctx.actor, args["keypair_file"]
    )
    return _linked_reply(ctx, linked, signature=signature)


async def wallet_unlink(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """Unlink your wallet (another player can link it only after 24 hours)."""
    address, stakes = await wallets.unlink(ctx.app, ctx.actor)
    text = f"{address} is no longer linked to you."
    if stakes:
        text += (
            f" Your {stakes} active stake{'s' if stakes != 1 else ''} earn nothing until that wallet is "
            "linked again."
        )
    return Reply(title="Wallet unlinked", text=text, private=True)


# --- deposits and withdrawals ---


async def deposit(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Credit a USDC transfer from your verified wallet to the treasury, by its transaction signature."""
    done = await deposits.deposit(ctx.app, ctx.actor, args["signature"])
    return Reply(
        title="Deposit credited",
        text=f"{usdc(done.amount)} credited.",
        fields=(Field("Balance", usdc(done.balance)),),
        private=True,
        tone="success",
    )


async def withdraw(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Ask for a payout of USDC to your verified wallet; a moderator approves it."""
    row, left = await payouts.request(ctx.app, ctx.actor, args["amount"])
    return Reply(
        title=f"Payout #{row.id} requested",
        text=(
            f"{usdc(row.amount)} to {row.wallet_address} waits for a moderator's approval; it is held aside "
            "until then (a rejection returns it)."
        ),
        fields=(Field("Balance", usdc(left)),),
        private=True,
    )


# --- staking ---


def _token_amount(ctx: CommandContext, raw: str) -> int:
    try:
        return parse_amount(raw, token_currency(ctx.app.settings))
    except InvalidArgument as exc:
        raise InvalidArgument(f"`amount`: {exc.message}") from None


async def stake(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Stake $100Bs your wallet holds for 30, 60 or 90 days, for a share of the revenue."""
    row, staked, held = await staking.stake(
        ctx.app, ctx.actor, _token_amount(ctx, args["amount"]), int(args["lock"])
    )
    s = ctx.app.settings
    return Reply(
        title=f"Stake #{row.id}: {tokens(row.amount, s)} for {row.lock_days} days",
        text=(
            f"Locked until {when(row.unlocks_at)}. It earns a share of each month's staking pool for the days it "
            "is staked, while your wallet keeps holding the staked tokens."
        ),
        fields=(Field("Staked in all", tokens(staked, s)), Field("Wallet holds", tokens(held, s))),
        private=True,
        tone="success",
    )


async def unstake(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """End a stake whose lock is over."""
    row = await staking.unstake(ctx.app, ctx.actor, args["id"])
    return Reply(
        title=f"Stake #{row.id} ended",
        text=f"{tokens(row.amount, ctx.app.settings)} are free again.",
        private=True,
    )


async def staking_show(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """Your stakes, this month's staking pool, and an estimate of your share."""
    o = await staking.overview(ctx.app, ctx.actor)
    s = ctx.app.settings
    now = ctx.app.clock()
    lines = []
    for st in o.stakes:
        if st.unstaked_at is not None:
            state = f"ended {st.unstaked_at.astimezone(UTC):%Y-%m-%d}"
        elif st.unlocks_at <= now:
            state = "unlocked: no longer earning, /unstake frees it"
        else:
            state = f"locked until {when(st.unlocks_at)}"
        lines.append(
            f"#{st.id} {tokens(st.amount, s)}, {st.lock_days} days, {state}, "
            f"{o.days_this_month.get(st.id, 0)} days in {o.month.label}"
        )
    lines += [f"{m}: stake #{sid} earned {usdc(amount)}" for m, sid, amount in o.last_rewards]
    return Reply(
        title="Staking",
        text=(
            "Each month's staking pool goes 20 % to 30-day, 30 % to 60-day and 50 % to 90-day stakes, inside a "
            "tier by amount × days staked in the month."
            + ("" if o.stakes else " You have no stakes: /stake <amount> <30|60|90>.")
        ),
        fields=(
            Field(f"Pool for {o.month.label} so far", usdc(o.pool_now)),
            Field("Your estimate", f"{usdc(o.estimate)} (if the month ended with today's pool)"),
            Field("Wallet holds", _holdings_line(ctx, o.holdings), inline=False),
        ),
        lines=tuple(lines),
        private=True,
    )


# --- buyback ---


async def buyback_history(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """The buyback reserve and every buyback with its price."""
    h = await buyback.history(ctx.app)
    s = ctx.app.settings
    lines = tuple(
        f"#{b.id} {b.created_at.astimezone(UTC):%Y-%m-%d} {usdc(b.usdc)} for {tokens(b.tokens, s)} at "
        f"{price_text(b.price_usd)} per token, tx {b.tx_signature}"
        for b in h.events
    )
    return Reply(
        title="Buybacks",
        fields=(
            Field("Reserve", usdc(h.reserve)),
            Field("Spent", usdc(h.spent)),
            Field("Bought", tokens(h.bought, s)),
        ),
        text="" if h.events else "No buyback yet.",
        lines=lines,
    )


async def admin_buyback(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Record a buyback: USDC spent from the reserve, tokens bought, its transaction (audited)."""
    try:
        bought = parse_amount(args["tokens"], token_currency(ctx.app.settings))
    except InvalidArgument as exc:
        raise InvalidArgument(f"`tokens`: {exc.message}") from None
    row, left = await buyback.record(ctx.app, ctx.actor, args["usdc"], bought, args["tx"])
    return Reply(
        title=f"Buyback #{row.id} recorded",
        text=f"{usdc(row.usdc)} for {tokens(row.tokens, ctx.app.settings)}: {price_text(row.price_usd)} per token.",
        fields=(Field("Reserve left", usdc(left)),),
        private=True,
        tone="success",
    )


# --- payouts (moderators) ---


def _payout_line(p: payouts.PayoutRow) -> str:
    line = f"#{p.id} {p.requested_at.astimezone(UTC):%Y-%m-%d %H:%M} {p.player} (#{p.player_id}) {usdc(p.amount)} -> {p.wallet_address}: {p.status}"
    if p.tx_signature:
        line += f", tx {p.tx_signature}"
    if p.status == "rejected" and p.reason:
        line += f" ({p.reason})"
    if p.last_error and p.status in payouts.OPEN:
        line += f"\n    last try: {p.last_error}"
    return line


async def admin_payouts(ctx: CommandContext, _: dict[str, Any]) -> Reply:
    """Payout requests waiting, being paid, and recently done."""
    open_, done = await payouts.listing(ctx.app, ctx.actor)
    lines = (
        ["Open:"]
        + ([_payout_line(p) for p in open_] or ["  none"])
        + ["Recent:"]
        + ([_payout_line(p) for p in done] or ["  none"])
    )
    how = (
        "The worker pays approved payouts (treasury keypair configured)."
        if payouts.keypair_configured(ctx.app)
        else "No treasury keypair: after paying, use /admin payouts paid <id> <signature>."
    )
    return Reply(title="Payouts", text=how, lines=tuple(lines), private=True)


async def admin_payout_approve(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Approve a payout request (audited; a payout needs the approvals of PAYOUT_APPROVALS
    moderators, never its payee's)."""
    a = await payouts.approve(ctx.app, ctx.actor, args["id"])
    row = a.payout
    if not a.approved:
        return Reply(
            title=f"Payout #{row.id}: approval {a.approvals} of {a.needed}",
            text=f"{usdc(row.amount)} to {row.wallet_address}. It waits for "
            f"{a.needed - a.approvals} more moderator{'s' if a.needed - a.approvals > 1 else ''} "
            f"to approve it (/admin payouts approve {row.id}).",
            private=True,
            tone="warning",
        )
    return Reply(
        title=f"Payout #{row.id} approved",
        text=f"{usdc(row.amount)} to {row.wallet_address}. "
        + (
            "The worker pays it and marks it paid once the transaction is finalized."
            if a.worker_pays
            else "Pay it from the treasury, then /admin payouts paid <id> <signature>."
        )
        + (f" {oversight.EXEMPT_NOTE}" if a.exempt else ""),
        private=True,
        tone="success",
    )


async def admin_payout_reject(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Reject a payout request; the amount goes back to the player (audited)."""
    row = await payouts.reject(ctx.app, ctx.actor, args["id"], args["reason"])
    return Reply(
        title=f"Payout #{row.id} rejected",
        text=f"{usdc(row.amount)} returned to {row.player}.",
        private=True,
    )


async def admin_payout_paid(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Mark an approved payout paid by the transaction that paid it (checked on chain, audited)."""
    row = await payouts.mark_paid(ctx.app, ctx.actor, args["id"], args["signature"])
    return Reply(
        title=f"Payout #{row.id} paid",
        text=f"{usdc(row.amount)} to {row.wallet_address}, tx {row.tx_signature}.",
        private=True,
        tone="success",
    )


async def admin_distribute(ctx: CommandContext, args: dict[str, Any]) -> Reply:
    """Share a past month's staking pool among its stakers (once per month, audited)."""

    require_moderator(ctx.app.settings, ctx.actor)
    month = parse_month(args["month"])
    d = await staking.distribute(ctx.app, month, by=f"{ctx.actor.label} ({ctx.actor.display_name})")
    r = d.shares
    lines = [
        f"{t.lock_days}-day tier: {usdc(t.amount)}, paid {usdc(t.paid)}, forfeited {usdc(t.forfeited)}, "
        f"remainder {usdc(t.remainder)}"
        for t in r.tiers
    ]
    lines += [
        f"stake #{s.position.stake_id} ({s.position.lock_days} d, {s.position.days} days): "
        + (usdc(s.paid) if s.position.covered else f"forfeited {usdc(s.share)}")
        for s in r.shares
    ]
    title = f"{d.month} was already distributed" if d.already else f"{d.month} distributed"
    return Reply(
        title=title,
        text="Nothing moved now: a month is distributed once."
        if d.already
        else f"By {d.distributed_by}.",
        fields=(
            Field("Pool", usdc(r.pool)),
            Field("Accrued in the month", usdc(d.accrued)),
            Field("Carried in", usdc(d.carried_in)),
            Field("Rewards", usdc(r.rewards)),
            Field("Carried over", usdc(r.carry)),
        ),
        lines=tuple(lines),
        private=True,
        tone="info" if d.already else "success",
    )


SIGNATURE_ARG = 100  # base58 of 64 bytes is at most 88 characters

COMMANDS: list[Command] = [
    command("wallet", wallet_show, bare_name="show", private=True),
    command(
        "wallet link",
        wallet_link,
        Arg("address", "word", "your wallet's address (base58)", max_length=60),
        private=True,
        effect="state",
    ),
    command(
        "wallet verify",
        wallet_verify,
        Arg(
            "signature",
            "word",
            "your wallet's signature of the message, in base58",
            max_length=SIGNATURE_ARG,
        ),
        private=True,
        slow=True,
        effect="state",
    ),
    command(
        "wallet sign",
        wallet_sign,
        Arg(
            "keypair_file",
            "text",
            "a Solana keypair file (JSON array of 64 numbers)",
            max_length=1_000,
        ),
        private=True,
        slow=True,
        platforms=("console",),
        effect="state",
    ),
    command(
        "wallet unlink",
        wallet_unlink,
        private=True,
        effect="state",
        preview=previews.wallet_unlink,
    ),
    command(
        "deposit",
        deposit,
        Arg(
            "signature",
            "word",
            "the signature of your USDC transfer to the treasury",
            max_length=SIGNATURE_ARG,
        ),
        private=True,
        slow=True,
        refuses_banned=True,
        effect="money",
    ),
    command(
        "withdraw",
        withdraw,
        Arg("amount", "amount", "how much USDC to pay to your verified wallet"),
        private=True,
        refuses_banned=True,
        effect="money",
    ),
    command(
        "stake",
        stake,
        Arg("amount", "word", "how many $100Bs, like 1000000", max_length=40),
        Arg("lock", "choice", "the lock in days", choices=tuple(str(d) for d in staking.LOCKS)),
        private=True,
        slow=True,
        refuses_banned=True,
    ),
    command(
        "unstake",
        unstake,
        Arg("id", "int", "the stake's number, as /staking shows it", min_value=1, max_value=2**62),
        private=True,
        refuses_banned=True,
    ),
    command("staking", staking_show, private=True, slow=True),
    command("buyback", buyback_history),
    command(
        "admin buyback",
        admin_buyback,
        Arg("usdc", "amount", "USDC spent from the reserve"),
        Arg("tokens", "word", "$100Bs bought", max_length=40),
        Arg("tx", "word", "the purchase's transaction signature", max_length=SIGNATURE_ARG),
        moderator=True,
        private=True,
    ),
    command("admin payouts", admin_payouts, bare_name="list", moderator=True, private=True),
    command(
        "admin payouts approve",
        admin_payout_approve,
        Arg("id", "int", "the payout's number", min_value=1, max_value=2**62),
        moderator=True,
        private=True,
    ),
    command(
        "admin payouts reject",
        admin_payout_reject,
        Arg("id", "int", "the payout's number", min_value=1, max_value=2**62),
        Arg("reason", "text", "why (the player is told)", max_length=500),
        moderator=True,
        private=True,
    ),
    command(
        "admin payouts paid",
        admin_payout_paid,
        Arg("id", "int", "the payout's number", min_value=1, max_value=2**62),
        Arg("signature", "word", "the transaction that paid it", max_length=SIGNATURE_ARG),
        moderator=True,
        private=True,
        slow=True,
    ),
    command(
        "admin distribute",
        admin_distribute,
        Arg("month", "word", "the month, as YYYY-MM", max_length=20),
        moderator=True,
        private=True,
        slow=True,
    ),
]
CONFIRMATIONS: dict = {}
