"""Nothing runs that its owner did not ask for, knowing what it does (SPEC §10.3), through the real
python-telegram-bot client and the Bot API stand-in: a deep link (t.me/<bot>?start=<payload>) sent by
someone else opens a question, never the action; the question says what would happen, answers only
the person it was shown to, expires, and asks again when what it named has changed."""

from __future__ import annotations

from datetime import timedelta

from solders.keypair import Keypair

from core.services import teams, views
from core.services.token import wallets
from tests.e2e.telegram.conftest import ALICE, BOB, actor
from tests.helpers import USDC, fund
from tests.integration.token.conftest import Clock


async def team_of_two(run, tg) -> int:
    """Alice's team with Bob in it; the pool holds 30 USDC: 10 from Alice, 20 from Bob."""
    for user in (ALICE, BOB):
        tg.start_private(user)
        await fund(run.app, actor(user), 50 * USDC)
    await run.say(ALICE, tg.private_chat(ALICE), "/team create Vault Busters")
    code = (await teams.info(run.app, actor(ALICE))).team.invite_code
    await run.say(BOB, tg.private_chat(BOB), f"/team join {code}")
    await run.say(ALICE, tg.private_chat(ALICE), "/team fund 10")
    await run.say(BOB, tg.private_chat(BOB), "/team fund 20")
    info = await teams.info(run.app, actor(BOB))
    assert len(info.members) == 2 and info.pool == 30 * USDC
    return info.team.id


async def standing(run) -> tuple:
    """What Alice and Bob own: their balances, the team's members and its pool."""
    info = await teams.info(run.app, actor(ALICE))
    return (
        (await views.balance(run.app, actor(ALICE)))[0],
        (await views.balance(run.app, actor(BOB)))[0],
        tuple(m.player_id for m in info.members),
        info.pool,
    )


async def test_a_team_leave_link_tapped_by_a_teammate_asks_first_and_moves_nothing(start_bot, tg):
    clock = Clock()
    run = await start_bot()
    run.app.clock = clock
    await team_of_two(run, tg)
    before = await standing(run)
    bob_chat = tg.private_chat(BOB)

    # Alice sends Bob t.me/BountyTestBot?start=team_leave; Bob taps it: Telegram sends /start team_leave.
    for payload in ("team_leave", "TEAM_LEAVE"):
        await run.say(BOB, bob_chat, f"/start {payload}")
        asked = run.last(BOB["id"])
        assert (
            "Vault Busters" in asked["text"]
            and "Nothing happens unless you confirm" in asked["text"]
        )
        assert "30.00" in asked["text"] and "you contributed 20.00" in asked["text"]
        assert [label for label, _ in tg.buttons(asked)] == ["Yes: /team leave", "No"]
        assert await standing(run) == before  # asked, nothing moved

    # The button answers only Bob: Alice pressing it (a forwarded message) is refused.
    yes = tg.buttons(asked)[0][1]
    await run.press(ALICE, asked, yes)
    answer = tg.calls_to("answerCallbackQuery")[-1]
    assert answer.params["show_alert"] and "not for you" in answer.params["text"]
    assert await standing(run) == before

    # "No" does nothing.
    await run.press(BOB, asked, tg.buttons(asked)[1][1])
    assert "did not run" in run.last(BOB["id"])["text"]
    assert await standing(run) == before

    # An old question expires.
    await run.say(BOB, bob_chat, "/start team_leave")
    stale = run.last(BOB["id"])
    clock.advance(minutes=11)
    await run.press(BOB, stale, tg.buttons(stale)[0][1])
    answer = tg.calls_to("answerCallbackQuery")[-1]
    assert "expired" in answer.params["text"]
    assert await standing(run) == before

    # What the question named changed (Alice funded the pool): Bob is asked again, nothing moves.
    await run.say(BOB, bob_chat, "/start team_leave")
    asked = run.last(BOB["id"])
    await run.say(ALICE, tg.private_chat(ALICE), "/team fund 5")
    changed = await standing(run)
    await run.press(BOB, asked, tg.buttons(asked)[0][1])
    again = run.last(BOB["id"])
    assert "Things changed since you were asked" in again["text"] and "35.00" in again["text"]
    assert await standing(run) == changed

    # Bob confirms the question as it stands: only then does he leave.
    await run.press(BOB, again, tg.buttons(again)[0][1])
    assert "You left Vault Busters" in run.last(BOB["id"])["text"]
    info = await teams.info(run.app, actor(ALICE))
    assert len(info.members) == 1


async def test_deep_links_to_accept_link_or_unlink_ask_first(chain, start_bot, tg):
    run = await start_bot(SOLANA_RPC_URL=chain.url)
    await team_of_two(run, tg)
    carol = tg.user(1004, "Carol", username="carol")
    carol_chat = tg.start_private(carol)
    await run.say(carol, carol_chat, "/balance")  # the game knows her from now on
    await run.say(ALICE, tg.private_chat(ALICE), "/team invite @carol")
    assert "is invited to Vault Busters" in run.last(ALICE["id"])["text"]

    # team_accept: Carol is asked, with the team she would join; she is not in it until she confirms.
    await run.say(carol, carol_chat, "/start team_accept")
    asked = run.last(carol["id"])
    assert "You join team Vault Busters" in asked["text"] and "No money moves" in asked["text"]
    assert len((await teams.info(run.app, actor(ALICE))).members) == 2
    await run.press(carol, asked, tg.buttons(asked)[0][1])
    assert "You joined Vault Busters" in run.last(carol["id"])["text"]
    assert len((await teams.info(run.app, actor(ALICE))).members) == 3

    # team_link in the private chat: asked (it would send an invite link); nothing sent meanwhile.
    mark = tg.mark()
    await run.say(BOB, tg.private_chat(BOB), "/start team_link")
    assert "invite link" in run.last(BOB["id"])["text"] and tg.buttons(run.last(BOB["id"]))
    assert not tg.calls_to("createChatInviteLink", after=mark)

    # wallet_unlink: the wallet stays linked until its owner confirms.
    keypair = Keypair()
    challenge = await wallets.start_link(run.app, actor(ALICE), str(keypair.pubkey()))
    await wallets.verify(
        run.app, actor(ALICE), str(keypair.sign_message(challenge.message.encode()))
    )
    await run.say(ALICE, tg.private_chat(ALICE), "/start wallet_unlink")
    asked = run.last(ALICE["id"])
    assert str(keypair.pubkey()) in asked["text"] and "24 hours" in asked["text"]
    assert (await wallets.show(run.app, actor(ALICE))).address == str(keypair.pubkey())
    await run.press(ALICE, asked, tg.buttons(asked)[0][1])
    assert "Wallet unlinked" in run.last(ALICE["id"])["text"]
    assert (await wallets.show(run.app, actor(ALICE))).address is None


async def test_views_open_at_once_and_a_typed_command_runs_as_typed(start_bot, tg):
    run = await start_bot()
    await team_of_two(run, tg)
    bob_chat = tg.private_chat(BOB)
    await run.say(BOB, bob_chat, "/start team_info")
    shown = run.last(BOB["id"])
    assert "Team Vault Busters" in shown["text"] and not tg.buttons(shown)
    await run.say(BOB, bob_chat, "/start balance")
    assert "Balance" in run.last(BOB["id"])["text"]
    # typed by its owner, /team leave runs at once, as before
    await run.say(BOB, bob_chat, "/team leave")
    assert "You left Vault Busters" in run.last(BOB["id"])["text"]


async def test_the_question_expires_after_ten_minutes_and_tokens_fit_telegram(start_bot, tg):
    from bots.telegram.render import MAX_CALLBACK_DATA
    from bots.telegram.routing import DeepLinks
    from core.commands import COMMANDS, consent

    run = await start_bot()
    assert consent.TTL == timedelta(minutes=10)
    # Every command a deep link opens fits its question's button in Telegram's 64 bytes.
    for command in COMMANDS:
        if DeepLinks.payload_for(command) is None:
            continue
        token = f"cf:{consent.KIND}:{consent.command_ref(command)}.{'f' * 8}.{'x' * 8}.{'y' * 16}:y"
        assert len(token.encode()) <= MAX_CALLBACK_DATA, command.name
    assert run.app is not None


async def test_a_secret_typed_in_a_group_is_refused_unread_and_taken_down(start_bot, tg):
    """SPEC §10.6: /admin bounty new carries the guardian's secret prompt and /link <code> a code that
    hands over an account; typed in a group, everyone there has read them, so they are refused before
    anything reads them, the message is deleted where the bot may, and a code is put out of use."""
    from core.services import rounds
    from tests.e2e.telegram.conftest import GROUP_ID, MOD

    run = await start_bot(MODERATOR_TELEGRAM_USER_IDS=str(MOD["id"]))
    group = tg.group(GROUP_ID, "Bounty hunters")
    tg.start_private(MOD)
    update = await run.say(MOD, group, '/admin bounty new "Leaky" 100 Never say the word banana')
    refused = run.last(GROUP_ID)["text"]
    assert "carries a secret (prompt)" in refused and "Choose another prompt" in refused
    assert "delete it yourself" in refused  # the bot is no admin here: it could not
    assert "banana" not in refused and not tg.messages_to(MOD["id"])
    async with run.app.uow() as uow:
        assert await rounds.current_bounty(uow.conn) is None  # no round was opened
    assert update["message"]["message_id"] not in [m for _, m in tg.deleted]

    # Where the bot may delete messages, it takes the secret down.
    tg.make_bot_admin(group)
    update = await run.say(MOD, group, '/admin bounty new "Leaky" 100 Never say the word banana')
    assert "I deleted your message here" in run.last(GROUP_ID)["text"]
    assert (GROUP_ID, update["message"]["message_id"]) in tg.deleted

    # A link code typed in the group: refused, and the code no longer works anywhere.
    tg.start_private(BOB)
    await run.say(BOB, tg.private_chat(BOB), "/balance")
    code = await identity_code(run, "discord", "555")
    await run.say(BOB, group, f"/link {code}")
    refused = run.last(GROUP_ID)["text"]
    assert "carries a secret (code)" in refused and "That code no longer works" in refused
    await run.say(BOB, tg.private_chat(BOB), f"/link {code}")
    assert "already used" in run.last(BOB["id"])["text"]


async def identity_code(run, platform: str, external_id: str) -> str:
    from core.actors import Actor
    from core.services import identity

    return (await identity.new_code(run.app, Actor(platform, external_id, "Dee"))).code
