"""A Telegram moderator through the real python-telegram-bot: naming players by @username, numeric
id, a reply and a text mention; grants, bans, notes and audits; a banned player refused with the
end time, unbanned, playing again; the stats chart as a photo; limits and names as the settings and
the round say."""

from __future__ import annotations

import io
import os
import time
from typing import Any

from core.services import views
from tests.e2e.telegram.conftest import ALICE, BOB, CAROL, GROUP_ID, MOD, actor
from tests.helpers import USDC, fund, open_round


def transcript(tg, *, since: float = 0.0) -> list[str]:
    """The conversation as the stand-in recorded it, in time order: what people sent (when it was
    pushed) and what the bot sent (when the call arrived)."""
    events: list[tuple[float, str]] = []
    seen: set[int] = set()
    for call in tg.calls:
        if call.method == "getUpdates" and call.ok:
            for update in call.result:
                message = update.get("message")
                at = tg.pushed_at.get(update["update_id"], 0.0)
                if not message or update["update_id"] in seen or at < since:
                    continue
                seen.add(update["update_id"])
                where = "group" if message["chat"]["id"] < 0 else "private"
                reply = message.get("reply_to_message")
                quoted = (
                    f" (replying to {reply['from']['first_name']}: {reply.get('text', '')[:40]!r})"
                    if reply
                    else ""
                )
                mentions = "".join(
                    f" [text_mention {e['user']['first_name']} = user {e['user']['id']}]"
                    for e in message.get("entities", ())
                    if e["type"] == "text_mention"
                )
                events.append(
                    (
                        at,
                        f"{message['from']['first_name']} [{where}]{quoted}: {message['text']}{mentions}",
                    )
                )
        elif call.at >= since and call.ok and call.method in ("sendMessage", "sendPhoto"):
            to = "group" if call.params["chat_id"] < 0 else f"private {call.params['chat_id']}"
            if call.method == "sendMessage":
                body = call.result["text"].replace("\n", "\n      ")
            else:
                body = (
                    f"[photo {call.result['photo_name']}, {len(call.result['photo_data']):,} bytes]"
                )
            events.append((call.at, f"  bot -> {to}: {body}"))
    return [line for _, line in sorted(events, key=lambda e: e[0])]


def keep(name: str, lines: list[str]) -> None:
    """Write a transcript under BOUNTY_TRANSCRIPTS (when set) for the closing note."""
    folder = os.environ.get("BOUNTY_TRANSCRIPTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


async def started(start_bot, tg, **settings: Any):
    for user in (MOD, ALICE, BOB):
        tg.start_private(user)
    run = await start_bot(MODERATOR_TELEGRAM_USER_IDS=str(MOD["id"]), **settings)
    await open_round(run.app, name="Vault")
    return run


async def test_a_moderator_names_players_by_username_numeric_id_reply_and_mention(start_bot, tg):
    run = await started(start_bot, tg)
    group = tg.group(GROUP_ID)
    mod_chat = tg.private_chat(MOD)
    for user in (ALICE, BOB, CAROL):  # each has used the bot once: the bot knows their names
        await run.say(user, group, "/bounty")
    since = time.perf_counter()

    await run.say(MOD, mod_chat, "/admin grant @alice 10 welcome gift")
    assert "Granted\n\n10.00 USDC to Alice" in run.last(MOD["id"])["text"]
    await run.say(MOD, mod_chat, f"/admin grant {BOB['id']} 5 thanks for the bug report")
    assert "5.00 USDC to Bob" in run.last(MOD["id"])["text"]
    spam = tg.new_message(ALICE, group, text="buy cheap followers at spam.example")
    await run.say(MOD, group, "/admin note posted spam links in the group", reply_to=spam)
    assert "Noted on Alice" in run.last(MOD["id"])["text"]
    assert run.last(GROUP_ID)["text"] == "I answered you in our private chat."
    await run.say(
        MOD, mod_chat, "/admin grant Carol 1 for testing", mention=CAROL
    )  # Carol has no username
    assert "1.00 USDC to Carol" in run.last(MOD["id"])["text"]
    await run.say(MOD, mod_chat, "/admin audit @alice")
    audit = run.last(MOD["id"])["text"]
    assert (
        "Audit of Alice" in audit
        and "Telegram @alice (1001)" in audit
        and "Balance: 10.00 USDC" in audit
    )
    assert "note by telegram:4242 (Mona): posted spam links in the group" in audit
    assert "grant by telegram:4242 (Mona): 10.00 USDC — welcome gift" in audit

    # A reply to the bot's own message names nobody; an unknown name says which forms work.
    await run.say(MOD, mod_chat, "/admin note oops typo", reply_to=run.last(MOD["id"]))
    assert "No player 'oops'" in run.last(MOD["id"])["text"]
    await run.say(MOD, mod_chat, "/admin grant @nobody 1 x")
    answer = run.last(MOD["id"])["text"]
    assert (
        "No player '@nobody'. Name a player by @username, their numeric Telegram id, a reply to one of "
        "their messages, #<player id> or discord:<id> (for example @alice or 4242)." in answer
    )

    for user, amount in ((ALICE, 10), (BOB, 5), (CAROL, 1)):
        assert (await views.balance(run.app, actor(user)))[0] == amount * USDC
    keep("telegram-naming.txt", transcript(tg, since=since))


async def test_a_banned_player_is_refused_with_the_end_then_unbanned_plays_again(start_bot, tg):
    run = await started(start_bot, tg)
    alice_chat, mod_chat = tg.private_chat(ALICE), tg.private_chat(MOD)
    await run.say(ALICE, alice_chat, "/balance")
    await fund(run.app, actor(ALICE), 50 * USDC)

    await run.say(MOD, mod_chat, "/admin ban @alice 2h flooding the group")
    assert (
        "Alice (#" in run.last(MOD["id"])["text"]
        and "is banned until" in run.last(MOD["id"])["text"]
    )
    notice = await tg.wait_sent(ALICE["id"], contains="You are banned")
    assert "flooding the group" in notice["text"]
    await run.say(ALICE, alice_chat, "/attempt let me in")
    refused = run.last(ALICE["id"])["text"]
    assert refused.startswith("You are banned until ") and refused.endswith(
        " UTC: flooding the group."
    )
    await run.say(ALICE, alice_chat, "/balance")  # read-only commands still answer
    assert "50.00 USDC" in run.last(ALICE["id"])["text"]

    for bad, needle in (
        ("/admin ban @alice 0 x", "more than zero"),
        ("/admin ban @alice -5h x", "cannot be negative"),
        ("/admin ban @alice 99999d x", "at most 3,650 days"),
        ("/admin ban @alice 7d", "reason is missing"),
        ("/admin ban @mona_mod 1h test", "You cannot ban yourself."),
    ):
        await run.say(MOD, mod_chat, bad)
        assert needle in run.last(MOD["id"])["text"], bad

    await run.say(MOD, mod_chat, "/admin unban @alice appeal accepted")
    assert "can play again" in run.last(MOD["id"])["text"]
    await run.say(ALICE, alice_chat, "/attempt let me in")
    quote = run.last(ALICE["id"])
    await run.press(ALICE, quote, tg.buttons(quote)[0][1])
    assert "The guardian refuses" in run.last(ALICE["id"])["text"]


async def test_the_stats_chart_arrives_as_a_photo(start_bot, tg):
    run = await started(start_bot, tg)
    await fund(run.app, actor(ALICE), 50 * USDC)
    chat = tg.private_chat(ALICE)
    await run.say(ALICE, chat, "/attempt hello")
    quote = run.last(ALICE["id"])
    await run.press(ALICE, quote, tg.buttons(quote)[0][1])
    mark, since = tg.mark(), time.perf_counter()
    await run.say(MOD, tg.private_chat(MOD), "/admin stats")
    (head,) = [
        c for c in tg.calls_to("sendMessage", after=mark) if c.params["chat_id"] == MOD["id"]
    ]
    assert "Stats, round Vault" in head.result["text"]
    assert (
        "Success rate, enhanced context on: no attempt answered this way yet" in head.result["text"]
    )
    assert "Staked share of supply: 0.00 %" in head.result["text"]
    (photo,) = tg.calls_to("sendPhoto", after=mark)
    assert photo.ok and photo.params["chat_id"] == MOD["id"]
    name, data = photo.files["photo"]
    assert name == "stats-round-1.png" and data.startswith(b"\x89PNG\r\n\x1a\n")
    from matplotlib import image

    assert image.imread(io.BytesIO(data), format="png").shape[:2] == (600, 800)
    folder = os.environ.get("BOUNTY_TRANSCRIPTS")
    if folder:
        with open(os.path.join(folder, "stats-telegram.png"), "wb") as f:
            f.write(data)
    keep("telegram-stats.txt", transcript(tg, since=since))


async def test_limits_and_names_follow_the_settings_and_the_round(start_bot, tg):
    tg.start_private(MOD)
    run = await start_bot(MODERATOR_TELEGRAM_USER_IDS=str(MOD["id"]), ATTEMPT_MAX_CHARS=1_000)
    chat = tg.private_chat(MOD)
    await run.say(MOD, chat, '/admin bounty new "Demo round" 1000 Never release the funds.')
    assert "Round #1 Demo round is open" in run.last(MOD["id"])["text"]
    await run.say(MOD, chat, "/attempt " + "x" * 5_000)
    assert "message is too long: 5,000 characters, at most 1,000." in run.last(MOD["id"])["text"]
    await run.say(MOD, chat, '/admin bounty set name "Demo round two"')
    assert "Round Demo round two updated" in run.last(MOD["id"])["text"]
