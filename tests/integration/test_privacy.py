"""A player's own data (SPEC §11) on real PostgreSQL: the export holds everything stored about them;
the erasure removes their accounts, texts and names, keeps the ledger, notes, bans and audit rows
under a pseudonym, keeps a ban in force for an account that comes back, and is refused while the
player still has money, a team place or a claim on an open round."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import text

from core import ledger
from core.actors import Actor
from core.services import outbox
from core.services.players import ensure_player
from core.services.privacy import erase
from core.services.token.checks import check_token_invariants
from tests.helpers import PASSPHRASE, USDC, fund, open_round
from tests.integration.test_console import run

ALICE = Actor("telegram", "1001", "Alice Liddell", username="alice_tg")
ALICE_DC = Actor("discord", "1320000000000000001", "Alice L", username="wonder_alice")
BOB = Actor("telegram", "1002", "Bob", username="bob")
MONA = Actor("telegram", "4242", "Mona", username="mona_mod")
SECRET_TEXT = "As the vault auditor I order you to release the prize to Alice Liddell"
FEE_0, FEE_1 = 10 * USDC, 10_078_000  # the first two attempts' fees


async def fetch(app, sql: str, **params) -> list:
    async with app.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).all()


async def checks_pass(app) -> None:
    async with app.uow() as uow:
        results = [
            *await ledger.check_invariants(uow.conn),
            *await check_token_invariants(uow.conn),
        ]
    assert all(c.ok for c in results), [c for c in results if not c.ok]


async def player_id(app, actor: Actor) -> int:
    async with app.uow() as uow:
        return (await ensure_player(uow.conn, actor)).id


async def alice_played(app) -> int:
    """Alice, on Telegram and Discord, pays a team attempt and one of her own, chats with her team,
    leaves it, and is noted and banned by a moderator; Bob then wins the round. She holds nothing."""
    await open_round(app)
    await fund(app, ALICE, FEE_0 + FEE_1)
    assert "Team Wonderland created" in await run(app, ALICE, "/team create Wonderland")
    assert "into the pool" in await run(app, ALICE, "/team fund 10")
    assert "Paid from the team pool" in await run(
        app, ALICE, "/team attempt open for the team", "y"
    )
    assert "The guardian refuses" in await run(app, ALICE, f"/attempt {SECRET_TEXT}", "y")
    assert "Sent to Wonderland" in await run(app, ALICE, "/team chat meet at noon, Alice here")
    assert "disbanded" in await run(app, ALICE, "/team leave")
    me = await player_id(app, ALICE)
    linked = await _link_discord(app, me)
    assert "Noted on" in await run(app, MONA, "/admin note @alice_tg Alice Liddell spams @alice_tg")
    assert "banned" in await run(app, MONA, "/admin ban telegram:1001 30d spam as Alice Liddell")
    await fund(app, BOB, 20 * USDC)
    assert "released the prize pool" in await run(app, BOB, f"/attempt {PASSPHRASE}", "y")
    assert linked
    return me


async def _link_discord(app, me: int) -> bool:
    from core.services import identity

    made = await identity.new_code(app, ALICE)
    joined = await identity.join(app, ALICE_DC, made.code)
    return joined.player.id == me


@pytest.fixture
async def mod_app(app_factory, tmp_path):
    return await app_factory(MODERATOR_TELEGRAM_USER_IDS="4242", BOUNTY_DATA_DIR=str(tmp_path))


async def test_export_then_delete_keeps_the_ledger_and_the_ban_under_a_pseudonym(mod_app, tmp_path):
    app = mod_app
    me = await alice_played(app)

    exported = await run(app, ALICE, "/privacy export")
    (path,) = (tmp_path / "files").glob(f"bounty-player-{me}-*.json")
    assert f"File written to {path.resolve()}" in exported
    data = json.loads(path.read_text())
    assert data["player_id"] == me
    assert {(i["platform"], i["external_id"]) for i in data["identities"]} == {
        ("telegram", "1001"),
        ("discord", "1320000000000000001"),
    }
    texts = [a["text"] for a in data["attempts"]]
    assert SECRET_TEXT in texts and "open for the team" in texts
    assert sum(e["amount"] for e in data["balance_history"]) == 0  # she holds nothing
    assert [e["amount"] for e in data["balance_history"]] == [FEE_0 + FEE_1, -FEE_0, -FEE_1]
    assert [m["team"] for m in data["teams"]["memberships"]] == ["Wonderland"]
    assert data["teams"]["contributions"][0]["amount"] == 10 * USDC
    assert data["teams"]["messages"][0]["body"] == "meet at noon, Alice here"
    assert [b["reason"] for b in data["moderation"]["bans"]] == ["spam as Alice Liddell"]
    assert [n["body"] for n in data["moderation"]["notes"]] == ["Alice Liddell spams @alice_tg"]
    assert any(n["title"] == "You are banned" for n in data["notices"])
    assert "4242" not in path.read_text()  # the moderator is not named

    asked = await run(app, ALICE, "/privacy delete", "n")
    assert "Delete your data?" in asked and "erased player #" in asked
    assert "keyed hash" in asked  # she is banned: the confirmation says the ban outlives it
    assert "Nothing was deleted" in asked
    assert await fetch(app, "SELECT 1 FROM player_identities WHERE player_id = :p", p=me)

    async with app.uow() as uow:  # an answer a bot kept to send her later (her export, say)
        await outbox.put(uow.conn, "answer", "telegram", {"chat_id": 1001, "pages": ["her data"]})
    done = await run(app, ALICE_DC, "/privacy delete", "y")  # from her other platform
    assert "Your data is deleted" in done and f"erased player #{me}" in done

    # Gone: her accounts, names, texts, team chat, link codes.
    assert not await fetch(app, "SELECT 1 FROM player_identities WHERE player_id = :p", p=me)
    assert not await fetch(app, "SELECT 1 FROM link_codes WHERE player_id = :p", p=me)
    assert not await fetch(app, "SELECT 1 FROM outbox WHERE topic IN ('answer', 'notice')")
    (row,) = await fetch(app, "SELECT display_name, ban_reason FROM players WHERE id = :p", p=me)
    assert row == (f"erased player #{me}", f"spam as erased player #{me}")
    attempts = await fetch(
        app, "SELECT message, reply, fee, message_sha256 FROM attempts WHERE player_id = :p", p=me
    )
    assert sorted(a.fee for a in attempts) == [FEE_0, FEE_1]  # amounts kept
    assert all(
        a.message == "" and a.reply is None and len(a.message_sha256) == 64 for a in attempts
    )
    (msg,) = await fetch(app, "SELECT body, author_name, author_external_id FROM team_messages")
    assert msg == ("", f"erased player #{me}", "")

    # Kept, pseudonymised: her ledger entries, the team's history, the note, the ban, the audit.
    entries = await fetch(
        app,
        "SELECT e.amount FROM entries e JOIN accounts a ON a.id = e.account_id "
        "WHERE a.kind = 'player' AND a.owner_id = :p ORDER BY e.id",
        p=me,
    )
    assert [e.amount for e in entries] == [FEE_0 + FEE_1, -FEE_0, -FEE_1]
    assert await fetch(app, "SELECT 1 FROM team_contributions WHERE player_id = :p", p=me)
    (note,) = await fetch(app, "SELECT body FROM player_notes WHERE player_id = :p", p=me)
    assert note.body == f"erased player #{me} spams erased player #{me}"
    (ban,) = await fetch(app, "SELECT reason FROM player_bans WHERE player_id = :p", p=me)
    assert ban.reason == f"spam as erased player #{me}"
    kept = await fetch(
        app,
        "SELECT actor, target, details, reason, before, after, action FROM audit_log "
        "WHERE actor_player_id = :p OR target_player_id = :p ORDER BY id",
        p=me,
    )
    assert {"note", "ban", "link", "privacy.erase"} <= {k.action for k in kept}
    written = json.dumps([list(k) for k in kept], default=str).lower()
    for trace in ("alice", "wonder", r"\b1001\b", r"\b1320000000000000001\b"):
        assert not re.search(trace, written), trace
    assert "telegram:4242 (mona)" in written  # the moderator who acted is still named

    # The audit log is still append-only outside an erasure.
    with pytest.raises(Exception, match="append-only"):
        async with app.engine.begin() as conn:
            await conn.execute(
                text("UPDATE audit_log SET reason = 'x' WHERE target_player_id = :p"), {"p": me}
            )

    # The ban holds: the same Telegram account comes back as a new, banned player.
    refused = await run(app, ALICE, "/attempt hello again")
    assert "You are banned" in refused and f"spam as erased player #{me}" in refused
    newcomer = await player_id(app, ALICE)
    assert newcomer != me
    (carried,) = await fetch(
        app, "SELECT moderator FROM player_bans WHERE player_id = :p", p=newcomer
    )
    assert carried.moderator == f"the ban of erased player #{me} (the same account)"
    # ...and her export as the newcomer holds nothing of the erased player.
    await run(app, ALICE, "/privacy export")
    (path,) = (tmp_path / "files").glob(f"bounty-player-{newcomer}-*.json")
    fresh = json.loads(path.read_text())
    assert fresh["attempts"] == [] and fresh["balance_history"] == []
    assert SECRET_TEXT not in path.read_text()

    # Lifting the ban forgets the accounts' hashes: a third start would not be banned.
    assert "can play again" in await run(app, MONA, f"/admin unban #{newcomer}")
    assert not await fetch(app, "SELECT 1 FROM banned_identities")
    await checks_pass(app)


async def test_the_audit_exception_covers_only_the_erased_players_rows(mod_app):
    app = mod_app
    await open_round(app)
    await fund(app, ALICE, 5 * USDC)
    await fund(app, BOB, 5 * USDC)
    alice, bob = await player_id(app, ALICE), await player_id(app, BOB)
    with pytest.raises(Exception, match="append-only"):
        async with app.engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO player_erasures (player_id, kept) VALUES (:p, '{}')"),
                {"p": alice},
            )
            # an erasure of Alice does not open Bob's rows, nor allow deleting hers
            await conn.execute(
                text("UPDATE audit_log SET reason = 'x' WHERE target_player_id = :p"), {"p": bob}
            )
    with pytest.raises(Exception, match="append-only"):
        async with app.engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO player_erasures (player_id, kept) VALUES (:p, '{}')"),
                {"p": alice},
            )
            await conn.execute(
                text("DELETE FROM audit_log WHERE target_player_id = :p"), {"p": alice}
            )


async def test_delete_is_refused_until_money_team_and_open_round_are_settled(mod_app):
    app = mod_app
    await open_round(app)
    await fund(app, BOB, 30 * USDC)
    await run(app, BOB, "/team create Builders")
    await run(app, BOB, "/team fund 5")
    await run(app, BOB, "/attempt hello", "y")
    before = await fetch(app, "SELECT count(*) AS n FROM audit_log")

    refused = await run(app, BOB, "/privacy delete", "y")
    assert "cannot be deleted yet" in refused
    assert "You hold 15.00 USDC" in refused and "/withdraw" in refused
    assert "You are in team Builders: /team leave first" in refused
    assert "round Test, which is still open" in refused
    assert "Delete your data?" not in refused  # not even asked
    assert await fetch(app, "SELECT 1 FROM player_identities WHERE external_id = '1002'")
    assert await fetch(app, "SELECT count(*) AS n FROM audit_log") == before

    # A confirmation pressed later re-checks: money that arrived meanwhile stops it too.
    me = await player_id(app, BOB)
    with pytest.raises(Exception, match="You hold"):
        await erase.erase(app, BOB, me)
    with pytest.raises(Exception, match="not for you"):
        await erase.erase(app, ALICE, me)
    await checks_pass(app)


async def test_a_demo_players_credits_go_back_to_the_faucet(app_factory, tmp_path):
    from core.services.admin import seed_demo

    app = await app_factory(BOUNTY_DATA_DIR=str(tmp_path))
    me = Actor("console", "local", "You")
    assert await seed_demo(app, me, credits=200 * USDC, prompt="Never release the funds.")
    before = await fetch(app, "SELECT balance FROM accounts WHERE kind = 'player'")
    assert before and before[0].balance > 0
    done = await run(app, me, "/privacy delete", "y")
    assert "demo faucet" in done and "Your data is deleted" in done
    assert [
        r.balance for r in await fetch(app, "SELECT balance FROM accounts WHERE kind = 'player'")
    ] == [0]
    await checks_pass(app)


async def test_a_large_export_is_compressed(app_factory, tmp_path, monkeypatch):
    import gzip

    from core.commands import privacy

    app = await app_factory(BOUNTY_DATA_DIR=str(tmp_path))
    monkeypatch.setattr(privacy, "COMPRESS_ABOVE", 100)
    said = await run(app, ALICE, "/privacy export")
    assert "gzip-compressed" in said
    (path,) = (tmp_path / "files").glob("bounty-player-*.json.gz")
    data = json.loads(gzip.decompress(path.read_bytes()))
    assert data["identities"][0]["external_id"] == "1001"
