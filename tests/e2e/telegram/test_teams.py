"""Team groups through the real python-telegram-bot and the stand-in: /team link (refused where the
bot is not an administrator, lacks rights, or the group is linked already), members' single-use
invite links, join requests approved for members and declined for others, removal on leave and kick."""

from __future__ import annotations

from core.services import teams
from tests.e2e.team_helpers import settled
from tests.e2e.telegram.conftest import ALICE, BOB, CAROL, GROUP_ID, MOD, actor
from tests.standins.telegram_server import TelegramStandin

OTHER_GROUP = -100_777


async def team_with_group(run, tg, *, name: str = "Vault Busters") -> tuple[dict, int]:
    for user in (ALICE, BOB):
        tg.start_private(user)
    await run.say(ALICE, tg.private_chat(ALICE), f"/team create {name}")
    team = (await teams.info(run.app, actor(ALICE))).team
    group = tg.group(GROUP_ID, "Vault Busters HQ")
    tg.add_member(group, ALICE, "creator")
    tg.make_bot_admin(group)
    await run.say(ALICE, group, "/team link")
    assert "Checking my administrator rights" in run.last(GROUP_ID)["text"]
    await settled(run.app, "telegram")
    assert "is now the team chat of Vault Busters" in run.last(GROUP_ID)["text"]
    return group, team.id


def invite_link_in(tg: TelegramStandin, user: dict) -> str:
    sent = [m["text"] for m in tg.messages_to(user["id"]) if "invite link" in m.get("text", "")]
    assert sent, f"no invite link was sent to {user['first_name']}"
    return sent[-1].rsplit(" ", 1)[-1]


async def test_link_then_members_join_by_single_use_link_or_approved_request(start_bot, tg):
    run = await start_bot()
    group, team_id = await team_with_group(run, tg)
    state = await teams.chat_state(run.app, team_id, "telegram")
    assert state.chat.chat_id == str(GROUP_ID) and state.chat.kind == "group"

    # Bob joins the team: he gets a single-use link privately, and it works once
    code = (await teams.info(run.app, actor(ALICE))).team.invite_code
    await run.say(BOB, tg.private_chat(BOB), f"/team join {code}")
    await settled(run.app, "telegram")
    link = invite_link_in(tg, BOB)
    (made,) = tg.calls_to("createChatInviteLink")
    assert (
        made.params["member_limit"] == 1
        and made.params["chat_id"] == GROUP_ID
        and "expire_date" in made.params
    )
    assert tg.use_invite_link(BOB, link) and tg.status_in(group, BOB) == "member"
    assert not tg.use_invite_link(CAROL, link)  # used up: a forwarded link lets nobody else in

    # join requests: approved for a member, declined for anyone else
    tg.members[GROUP_ID].pop(BOB["id"])
    for user in (BOB, CAROL):
        await run.handled(tg.push_join_request(user, group))
    assert [c.params["user_id"] for c in tg.calls_to("approveChatJoinRequest")] == [BOB["id"]]
    assert [c.params["user_id"] for c in tg.calls_to("declineChatJoinRequest")] == [CAROL["id"]]
    assert tg.status_in(group, BOB) == "member" and tg.status_in(group, CAROL) == "left"


async def test_a_player_who_leaves_or_is_kicked_is_removed_and_may_come_back(start_bot, tg):
    run = await start_bot()
    group, _ = await team_with_group(run, tg)
    code = (await teams.info(run.app, actor(ALICE))).team.invite_code
    await run.say(BOB, tg.private_chat(BOB), f"/team join {code}")
    await settled(run.app, "telegram")
    tg.add_member(group, BOB)
    mark = tg.mark()
    await run.say(BOB, tg.private_chat(BOB), "/team leave")
    await settled(run.app, "telegram")
    assert [
        (c.method, c.params["user_id"]) for c in tg.calls[mark:] if c.method.endswith("ChatMember")
    ] == [("banChatMember", BOB["id"]), ("unbanChatMember", BOB["id"])]
    assert tg.status_in(group, BOB) == "left"  # out of the group, not banned: he may return

    # back in the team: a fresh link gets him in again; then the captain kicks him (from the console too)
    await run.say(BOB, tg.private_chat(BOB), f"/team join {code}")
    await settled(run.app, "telegram")
    assert tg.use_invite_link(BOB, invite_link_in(tg, BOB))
    bob_id = (await teams.info(run.app, actor(BOB))).members[1].player_id
    await run.say(ALICE, tg.private_chat(ALICE), f"/team kick #{bob_id}")
    await settled(run.app, "telegram")
    assert tg.status_in(group, BOB) == "left"


async def test_linking_is_refused_without_admin_rights_or_when_already_linked(start_bot, tg):
    run = await start_bot()
    tg.start_private(ALICE)
    tg.start_private(MOD)
    await run.say(ALICE, tg.private_chat(ALICE), "/team create Red Team")
    await run.say(MOD, tg.private_chat(MOD), "/team create Blue Team")
    red = (await teams.info(run.app, actor(ALICE))).team

    group = tg.group(GROUP_ID, "no rights here")
    await run.say(ALICE, group, "/team link")
    await settled(run.app, "telegram")
    assert "I am not an administrator here" in run.last(GROUP_ID)["text"]

    tg.make_bot_admin(group, can_restrict_members=False)
    await run.say(ALICE, group, "/team link")
    await settled(run.app, "telegram")
    assert "I lack the administrator rights Ban users" in run.last(GROUP_ID)["text"]
    assert (await teams.chat_state(run.app, red.id, "telegram")).chat is None

    tg.make_bot_admin(group)
    tg.add_member(group, ALICE, "creator")  # the captain runs this group
    await run.say(ALICE, group, "/team link")
    await settled(run.app, "telegram")
    assert "is now the team chat of Red Team" in run.last(GROUP_ID)["text"]

    # the same group for another team, or again: refused at once, nothing changes
    await run.say(MOD, group, "/team link")
    assert "already linked to team Red Team" in run.last(GROUP_ID)["text"]
    await run.say(ALICE, group, "/team link")
    assert "already linked to your team" in run.last(GROUP_ID)["text"]
    # a non-captain may not link a group
    tg.start_private(BOB)
    await run.say(BOB, tg.private_chat(BOB), f"/team join {red.invite_code}")
    other = tg.group(OTHER_GROUP, "elsewhere")
    tg.make_bot_admin(other)
    await run.say(BOB, other, "/team link")
    assert "Only the captain of Red Team" in run.last(OTHER_GROUP)["text"]
    assert (await teams.chat_state(run.app, red.id, "telegram")).chat.chat_id == str(GROUP_ID)


async def test_a_captain_who_is_not_an_admin_of_a_group_cannot_hand_it_to_the_bot(start_bot, tg):
    """The attack: a community group where the bot is an administrator (for its own admins' use) is
    not the captain's to bridge; linking it would let the bot decline its join requests and let
    back in users its admins banned. Only the group's owner, or an administrator with the rights
    linking hands over, may link it."""
    run = await start_bot()
    tg.start_private(ALICE)
    await run.say(ALICE, tg.private_chat(ALICE), "/team create Red Team")
    red = (await teams.info(run.app, actor(ALICE))).team
    community = tg.group(OTHER_GROUP, "A community that added the bot")
    tg.make_bot_admin(community)
    tg.add_member(community, ALICE)  # a plain member
    mark = tg.mark()
    await run.say(ALICE, community, "/team link")
    await settled(run.app, "telegram")
    assert (
        "only an administrator of a group may make it a team's chat"
        in run.last(OTHER_GROUP)["text"]
    )
    (asked,) = [
        c for c in tg.calls_to("getChatMember", after=mark) if c.params["user_id"] == ALICE["id"]
    ]
    assert asked.params["chat_id"] == OTHER_GROUP
    assert (await teams.chat_state(run.app, red.id, "telegram")).chat is None
    assert not tg.calls_to("createChatInviteLink", after=mark)

    # an administrator without the rights linking hands over (ban, invite): refused too
    tg.add_member(community, ALICE, "administrator", can_restrict_members=False)
    await run.say(ALICE, community, "/team link")
    await settled(run.app, "telegram")
    assert "you lack the administrator rights Ban users" in run.last(OTHER_GROUP)["text"]
    assert (await teams.chat_state(run.app, red.id, "telegram")).chat is None

    # the group's owner may
    tg.add_member(community, ALICE, "creator")
    await run.say(ALICE, community, "/team link")
    await settled(run.app, "telegram")
    assert "is now the team chat of Red Team" in run.last(OTHER_GROUP)["text"]
