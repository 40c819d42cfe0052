"""Team groups on Telegram: the captain links a group where the bot is an administrator
(``/team link``), the bot admits only members (join requests approved for members, single-use invite
links sent to members privately), removes a player who leaves or is kicked (ban, then unban, so they
may come back one day), and carries the group's side of the team chat bridge.

Core says what changed through the outbox (topic ``team_sync``), so a membership change made on
Discord or the console reaches the group, and nothing is lost while this bot is down."""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from telegram import ChatJoinRequest, LinkPreviewOptions, ReplyParameters, Update
from telegram.constants import ChatMemberStatus, ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import Application, ChatJoinRequestHandler, ContextTypes, MessageHandler, filters

from core.actors import Actor
from core.errors import BountyError
from core.services import outbox, teams

if TYPE_CHECKING:
    from bots.telegram.runner import TelegramBot

log = logging.getLogger("bounty.telegram.teams")

HANDLER_GROUP = 1  # after the command handlers (group 0), so commands in a team group still work
NEEDED_RIGHTS = {"can_invite_users": "Invite users via link", "can_restrict_members": "Ban users"}
INVITE_VALID = timedelta(days=1)
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
MAX_RELAYED = 3_800  # leaves room for the author line within Telegram's 4,096


def no_mentions(text: str) -> str:
    """@name in a relayed message would notify that user: a word joiner keeps it from being a mention."""
    return text.replace("@", "@\u2060")


class TelegramTeams:
    def __init__(self, bot: TelegramBot) -> None:
        self.bot = bot
        self.app = bot.app

    def install(self, application: Application, delivery) -> None:
        text = filters.TEXT | filters.CAPTION
        application.add_handler(ChatJoinRequestHandler(self.on_join_request), group=HANDLER_GROUP)
        application.add_handler(
            MessageHandler(
                filters.UpdateType.MESSAGE & filters.ChatType.GROUPS & text & ~filters.COMMAND,
                self.on_group_message,
            ),
            group=HANDLER_GROUP,
        )
        application.add_handler(
            MessageHandler(
                filters.UpdateType.EDITED_MESSAGE & filters.ChatType.GROUPS & text, self.on_edit
            ),
            group=HANDLER_GROUP,
        )
        delivery.handle(teams.SYNC, self.on_sync)
        delivery.handle(teams.RELAY, self.on_relay)

    @property
    def tg(self):
        return self.bot.application.bot

    # --- rights ---------------------------------------------------------------------------------

    async def missing_rights(self, chat_id: int) -> list[str] | None:
        """None when the bot is not an administrator of the chat; else the rights it lacks."""
        me = await self.tg.get_chat_member(chat_id, self.tg.id)
        if me.status == ChatMemberStatus.OWNER:
            return []
        if me.status != ChatMemberStatus.ADMINISTRATOR:
            return None
        return [label for right, label in NEEDED_RIGHTS.items() if not getattr(me, right, False)]

    async def _captain_may_link(self, chat_id: int, by: str | None) -> str | None:
        """Why the captain who sent /team link may not hand this group to the bot (None: they may).

        Linking lets the bot decline join requests and remove people, so only someone who could do
        that here themselves may ask for it: the group's owner, or an administrator with the rights
        the bot will use."""
        if not by:
            return "I do not know who asked. Send /team link again."
        try:
            member = await self.tg.get_chat_member(chat_id, int(by))
        except (BadRequest, Forbidden) as exc:
            log.info("could not read the captain's rights in %s: %s", chat_id, exc.message)
            return "I could not check that you are an administrator here. Send /team link again."
        if member.status == ChatMemberStatus.OWNER:
            return None
        if member.status != ChatMemberStatus.ADMINISTRATOR:
            return (
                "only an administrator of a group may make it a team's chat, and you are not one "
                "here. Link a group you run."
            )
        lacking = [
            label for right, label in NEEDED_RIGHTS.items() if not getattr(member, right, False)
        ]
        if lacking:
            return (
                f"you lack the administrator rights {', '.join(lacking)} here, which linking "
                "would hand to me."
            )
        return None

    async def _say(self, chat_id: int | str, text: str) -> None:
        try:
            await self.tg.send_message(
                int(chat_id), text, parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW
            )
        except TelegramError as exc:
            log.info("could not write to team group %s: %s", chat_id, exc)

    # --- what core asks -------------------------------------------------------------------------

    async def on_sync(self, item: outbox.OutboxItem) -> None:
        p = item.payload
        event = p["event"]
        if event == "link":
            await self._link(p)
        elif event in ("linked", "joined", "invite"):
            await self._send_invites(p)
        elif event in ("left", "kicked"):
            await self._remove(p)
        elif event == "disbanded" and p.get("chat_id"):
            await self._say(
                p["chat_id"], "This team was disbanded, so the group is no longer linked to it."
            )

    async def _link(self, p: dict[str, Any]) -> None:
        chat_id = int(p["chat_id"])
        try:
            missing = await self.missing_rights(chat_id)
        except (BadRequest, Forbidden) as exc:
            raise outbox.Undeliverable(f"group {chat_id}: {exc.message}") from None
        if missing is None or missing:
            why = (
                "I am not an administrator here"
                if missing is None
                else f"I lack the administrator rights {', '.join(missing)}"
            )
            await self._say(
                chat_id,
                f"I cannot link this group: {why}. Make me an administrator with "
                f"{' and '.join(NEEDED_RIGHTS.values())}, then send /team link again.",
            )
            return
        refusal = await self._captain_may_link(chat_id, p.get("by"))
        if refusal is not None:
            await self._say(chat_id, f"I cannot link this group: {refusal}")
            return
        try:
            team = await teams.link_checked(
                self.app, int(p["team_id"]), str(chat_id), int(p["players"][0])
            )
        except BountyError as exc:
            await self._say(chat_id, f"I cannot link this group: {html.escape(exc.message)}")
            return
        await self._say(
            chat_id,
            f"This group is now the team chat of <b>{html.escape(team.name)}</b>. I admit only "
            "its members: each gets a single-use invite link privately, and join requests are "
            "approved for members only. Messages here are shared with the team's Discord channel.",
        )

    async def _linked_chat(self, team_id: int) -> teams.ChatRow | None:
        return (await teams.chat_state(self.app, team_id, "telegram")).chat

    async def _send_invites(self, p: dict[str, Any]) -> None:
        state = await teams.chat_state(self.app, int(p["team_id"]), "telegram")
        if state.chat is None or not state.team.active:
            return
        chat_id = int(state.chat.chat_id)
        team = state.team.name
        for accounts in (p.get("accounts") or {}).values():
            for account in accounts:
                user_id = int(account)
                member = await self.tg.get_chat_member(chat_id, user_id)
                if member.status in (
                    ChatMemberStatus.MEMBER,
                    ChatMemberStatus.ADMINISTRATOR,
                    ChatMemberStatus.OWNER,
                ):
                    continue
                if member.status == ChatMemberStatus.BANNED:
                    await self.tg.unban_chat_member(chat_id, user_id, only_if_banned=True)
                link = await self.tg.create_chat_invite_link(
                    chat_id,
                    member_limit=1,
                    expire_date=datetime.now(UTC) + INVITE_VALID,
                    name=f"team member {user_id}"[:32],
                )
                try:
                    await self.bot.pacer.wait(user_id)
                    await self.tg.send_message(
                        user_id,
                        f"Your invite link to the Telegram group of team <b>{html.escape(team)}</b> "
                        f"(single use, valid for a day): {html.escape(link.invite_link)}",
                        parse_mode=ParseMode.HTML,
                        link_preview_options=NO_PREVIEW,
                    )
                except (Forbidden, BadRequest) as exc:
                    # They never opened a private chat with the bot: /team link there asks for a new link.
                    log.info("invite link for %s not delivered: %s", user_id, exc.message)

    async def _remove(self, p: dict[str, Any]) -> None:
        chat = await self._linked_chat(int(p["team_id"]))
        if chat is None:
            return
        for accounts in (p.get("accounts") or {}).values():
            for account in accounts:
                try:
                    # A ban removes them; the unban right after lets them come back if they rejoin the team.
                    await self.tg.ban_chat_member(int(chat.chat_id), int(account))
                    await self.tg.unban_chat_member(
                        int(chat.chat_id), int(account), only_if_banned=True
                    )
                except BadRequest as exc:
                    log.warning(
                        "could not remove %s from team group %s: %s",
                        account,
                        chat.chat_id,
                        exc.message,
                    )
                    if "rights" in exc.message.lower():
                        await teams.tell_captain(
                            self.app,
                            int(p["team_id"]),
                            "Telegram",
                            "The bot could not remove a former member from your team's group: "
                            f"it lacks the right {NEEDED_RIGHTS['can_restrict_members']}.",
                        )

    # --- what members do in the group ----------------------------------------------------------

    async def on_join_request(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        request: ChatJoinRequest | None = update.chat_join_request
        if request is None:
            return
        team_id, member = await teams.may_join_chat(
            self.app, "telegram", str(request.chat.id), str(request.from_user.id)
        )
        if team_id is None:
            return  # not a team group: the bot leaves its join requests to its admins
        if member:
            await request.approve()
        else:
            await request.decline()

    async def on_group_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        user = update.effective_user
        if message is None or user is None or user.is_bot or message.sender_chat is not None:
            return
        body = message.text or message.caption or ""
        reply = message.reply_to_message
        author = Actor("telegram", str(user.id), user.full_name or user.username or str(user.id))
        await teams.record_message(
            self.app,
            "telegram",
            str(message.chat.id),
            str(message.message_id),
            author,
            body,
            reply_to=str(reply.message_id) if reply is not None else None,
        )

    async def on_edit(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.edited_message
        if message is None or message.from_user is None or message.from_user.is_bot:
            return
        await teams.record_edit(
            self.app,
            "telegram",
            str(message.chat.id),
            str(message.message_id),
            message.text or message.caption or "",
        )

    # --- the bridge, this side -------------------------------------------------------------------

    @staticmethod
    def _relay_text(view: teams.RelayView) -> str:
        head = f"<b>{html.escape(view.author_name)}</b> <i>({html.escape(view.label)})</i>"
        if view.reply_author is not None and view.reply_copy_id is None:
            quoted = " ".join((view.reply_body or "").split())[:100]
            head += f"\n↪ <i>{html.escape(no_mentions(view.reply_author))}: {html.escape(no_mentions(quoted))}</i>"
        return f"{head}\n{html.escape(no_mentions(view.body[:MAX_RELAYED]))}"

    async def on_relay(self, item: outbox.OutboxItem) -> None:
        view = await teams.relay_view(self.app, int(item.payload["message_id"]), "telegram")
        if view is None or view.chat is None:
            return
        if view.copy_id is not None and view.copy_version >= view.version:
            return  # shown already: never twice
        chat_id = int(view.chat.chat_id)
        text = self._relay_text(view)
        try:
            await self.bot.pacer.wait(chat_id)
            if view.copy_id is None:
                reply = (
                    ReplyParameters(int(view.reply_copy_id), allow_sending_without_reply=True)
                    if view.reply_copy_id is not None
                    else None
                )
                sent = await self.tg.send_message(
                    chat_id,
                    text,
                    parse_mode=ParseMode.HTML,
                    link_preview_options=NO_PREVIEW,
                    reply_parameters=reply,
                )
                await teams.record_copy(
                    self.app,
                    view.message_id,
                    "telegram",
                    view.chat.chat_id,
                    str(sent.message_id),
                    view.version,
                )
            else:
                try:
                    await self.tg.edit_message_text(
                        text,
                        chat_id=chat_id,
                        message_id=int(view.copy_id),
                        parse_mode=ParseMode.HTML,
                        link_preview_options=NO_PREVIEW,
                    )
                except BadRequest as exc:
                    if "not modified" not in exc.message.lower():
                        raise
                await teams.record_copy(
                    self.app,
                    view.message_id,
                    "telegram",
                    view.chat.chat_id,
                    view.copy_id,
                    view.version,
                )
        except Forbidden as exc:
            raise outbox.Undeliverable(f"team group {chat_id}: {exc.message}") from None
