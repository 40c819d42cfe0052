"""Team channels on Discord: a private text channel per team under "Teams", "Teams 2"… (50 channels
a category), a private thread instead when the server nears its 500 channels, permission overwrites
kept exactly in step with the team, a channel deleted or edited by hand repaired (gateway events and
a periodic check), archived when the team disbands; and Discord's side of the team chat bridge.

Core says what changed through the outbox (topic ``team_sync``); this module makes the channel match
the team's state as core has it now, so a sync asked twice, late, or after a missed event still
lands on the right result."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord.utils import escape_markdown

from bots.discord.render import NO_MENTIONS
from core.actors import Actor
from core.services import outbox, teams

if TYPE_CHECKING:
    from bots.discord.bot import BountyDiscordBot

log = logging.getLogger("bounty.discord.teams")

# Permission bits (Discord's documentation, "Permissions").
MANAGE_CHANNELS = 1 << 4
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_HISTORY = 1 << 16
MANAGE_ROLES = 1 << 28  # on a channel: Manage Permissions
MANAGE_WEBHOOKS = 1 << 29
SEND_IN_THREADS = 1 << 38

MEMBER_ALLOW = (
    VIEW_CHANNEL | SEND_MESSAGES | READ_HISTORY | EMBED_LINKS | ATTACH_FILES | ADD_REACTIONS
)
CAPTAIN_ALLOW = MEMBER_ALLOW | MANAGE_MESSAGES  # the captain may pin and tidy the team's channel
MODERATOR_ALLOW = VIEW_CHANNEL | SEND_MESSAGES | READ_HISTORY | MANAGE_MESSAGES
BOT_ALLOW = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | READ_HISTORY
    | EMBED_LINKS
    | MANAGE_MESSAGES
    | MANAGE_WEBHOOKS
    | MANAGE_ROLES
)
ARCHIVED_MODERATOR_ALLOW = VIEW_CHANNEL | READ_HISTORY

REQUIRED_RIGHTS = {
    "Manage Channels": MANAGE_CHANNELS,
    "Manage Roles": MANAGE_ROLES,
    "Manage Webhooks": MANAGE_WEBHOOKS,
    "View Channels": VIEW_CHANNEL,
    "Send Messages": SEND_MESSAGES,
}
CATEGORY_LIMIT = 50  # channels per category
CATEGORY = 4
TEXT = 0
PRIVATE_THREAD = 12
THREADS_CHANNEL = "team-threads"
WEBHOOK_NAME = "Team chat bridge"
MARKER = re.compile(r"\[team:(\d+)\]")


def marker(team_id: int) -> str:
    return f"[team:{team_id}]"


def slug(name: str) -> str:
    """A Discord channel name: lower case, words joined by dashes."""
    text = re.sub(r"[^\w-]+", "-", name.lower()).strip("-")
    return ("team-" + text)[:100] or "team"


def webhook_name(author: str, label: str) -> str:
    """The name a relayed message carries: Discord refuses names containing "discord" or "clyde"."""
    name = f"{' '.join(author.split())[:60]} ({label})"
    return re.sub(
        r"(?i)(d)(iscord)|(c)(lyde)", lambda m: (m[1] or m[3]) + "\u200b" + (m[2] or m[4]), name
    )[:80]


def intents_for(read_team_chat: bool) -> discord.Intents:
    """Guilds (channels, roles) always; the team chat bridge also reads the team channels' messages,
    which needs the privileged Message Content intent (enable it in the Developer Portal)."""
    intents = discord.Intents(guilds=True)
    if read_team_chat:
        intents.guild_messages = True
        intents.message_content = True
    return intents


def desired_overwrites(
    state: teams.ChatState, guild_id: int, bot_id: int, moderator_roles: list[int]
) -> list[dict]:
    """The exact overwrites of a team's channel: hidden from @everyone; the bot, the moderator roles
    and each member can see it; the captain can also manage messages."""
    out = [
        {"id": str(guild_id), "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)},
        {"id": str(bot_id), "type": 1, "allow": str(BOT_ALLOW), "deny": "0"},
    ]
    out += [
        {"id": str(r), "type": 0, "allow": str(MODERATOR_ALLOW), "deny": "0"}
        for r in moderator_roles
    ]
    for account in dict.fromkeys(state.member_accounts):
        if account == str(bot_id):
            continue
        allow = CAPTAIN_ALLOW if account in state.captain_accounts else MEMBER_ALLOW
        out.append({"id": account, "type": 1, "allow": str(allow), "deny": "0"})
    return canonical(out)


def archived_overwrites(guild_id: int, bot_id: int, moderator_roles: list[int]) -> list[dict]:
    out = [
        {"id": str(guild_id), "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)},
        {"id": str(bot_id), "type": 1, "allow": str(BOT_ALLOW), "deny": "0"},
    ]
    out += [
        {
            "id": str(r),
            "type": 0,
            "allow": str(ARCHIVED_MODERATOR_ALLOW),
            "deny": str(SEND_MESSAGES),
        }
        for r in moderator_roles
    ]
    return canonical(out)


def canonical(overwrites: list[dict]) -> list[dict]:
    return sorted(
        (
            {
                "id": str(o["id"]),
                "type": int(o["type"]),
                "allow": str(o["allow"]),
                "deny": str(o["deny"]),
            }
            for o in overwrites
        ),
        key=lambda o: (o["type"], o["id"]),
    )


def cached_overwrites(channel: discord.abc.GuildChannel) -> list[dict]:
    out = []
    for target, overwrite in channel.overwrites.items():
        allow, deny = overwrite.pair()
        is_role = isinstance(target, discord.Role) or getattr(target, "type", None) is discord.Role
        out.append(
            {
                "id": str(target.id),
                "type": 0 if is_role else 1,
                "allow": str(allow.value),
                "deny": str(deny.value),
            }
        )
    return canonical(out)


class DiscordTeams:
    """The Discord bot's part of teams. ``install`` registers the outbox topics; ``attach`` the
    gateway events; ``start``/``stop`` the periodic check."""

    def __init__(self, bot: BountyDiscordBot) -> None:
        self.bot = bot
        self.app = bot.app
        self.settings = bot.settings
        self._check: asyncio.Task[None] | None = None
        self.checks = 0  # periodic checks completed (tests wait on it)

    # --- wiring -------------------------------------------------------------------------------

    def install(self, delivery) -> None:
        delivery.handle(teams.SYNC, self.on_sync)
        if self.settings.TEAM_DISCORD_BRIDGE:
            delivery.handle(teams.RELAY, self.on_relay)

    def attach(self, client: discord.Client) -> None:
        """Gateway events, set as the client's event handlers."""
        client.on_guild_channel_delete = self.on_channel_gone  # type: ignore[attr-defined]
        client.on_guild_channel_update = self.on_channel_update  # type: ignore[attr-defined]
        client.on_raw_thread_delete = self.on_raw_thread_delete  # type: ignore[attr-defined]
        client.on_thread_update = self.on_channel_update  # type: ignore[attr-defined]
        if self.bot.reads_team_chat:
            client.on_message = self.on_message  # type: ignore[attr-defined]
            client.on_raw_message_edit = self.on_raw_message_edit  # type: ignore[attr-defined]

    def start(self) -> None:
        guild = self.guild()
        if guild is not None:
            missing = self.missing_rights(guild)
            if missing:
                log.warning(
                    "team channels: the bot lacks %s in %s; grant them to its role",
                    ", ".join(missing),
                    guild.name,
                )
        self._check = asyncio.create_task(self._check_loop(), name="discord-team-check")

    async def stop(self) -> None:
        if self._check is not None:
            self._check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._check
            self._check = None

    @property
    def client(self) -> discord.Client:
        assert self.bot.client is not None
        return self.bot.client

    def guild(self) -> discord.Guild | None:
        gid = self.settings.DISCORD_GUILD_ID
        if gid:
            return self.client.get_guild(gid)
        guilds = self.client.guilds
        return (
            guilds[0] if len(guilds) == 1 else None
        )  # team channels need one server: DISCORD_GUILD_ID

    def moderator_roles(self, guild: discord.Guild) -> list[int]:
        return [
            int(r)
            for r in self.settings.MODERATOR_DISCORD_ROLE_IDS
            if guild.get_role(int(r)) is not None
        ]

    @staticmethod
    def missing_rights(guild: discord.Guild) -> list[str]:
        """The rights team channels need that the bot's roles do not give it."""
        me = guild.me
        if me is None:
            return list(REQUIRED_RIGHTS)
        have = me.guild_permissions
        if have.administrator:
            return []
        return [name for name, bit in REQUIRED_RIGHTS.items() if not have.value & bit]

    # --- making the channel match the team -----------------------------------------------------

    async def on_sync(self, item: outbox.OutboxItem) -> None:
        await self.sync_team(int(item.payload["team_id"]))

    async def sync_team(self, team_id: int) -> None:
        guild = self.guild()
        if guild is None:
            raise outbox.Undeliverable("no Discord server for team channels: set DISCORD_GUILD_ID")
        missing = self.missing_rights(guild)
        if missing:
            problem = (
                f"The Discord bot cannot make or update your team's channel: it lacks {', '.join(missing)} "
                "in the server. A server admin must grant them to the bot's role."
            )
            await teams.tell_captain(self.app, team_id, "Discord", problem)
            raise outbox.Undeliverable(problem)  # the periodic check tries again once it has them
        async with teams.chat_lock(self.app, team_id):
            state = await teams.chat_state(self.app, team_id, "discord")
            if not state.team.active:
                await self._archive(guild, state)
                return
            if state.chat is not None and state.chat.kind == "thread":
                raw = await self._fetch(state.chat.chat_id)
                if raw is not None and not raw.get("thread_metadata", {}).get("archived"):
                    await self._sync_thread(raw, state)
                    return
            raw = await self._fetch(state.chat.chat_id) if state.chat is not None else None
            if raw is None or raw.get("type") not in (TEXT, PRIVATE_THREAD):
                raw = await self._find_marked(guild, team_id)
            if raw is None:
                raw = await self._create(guild, state)
            elif raw.get("type") == TEXT:
                await self._reconcile(guild, raw, state)
            else:
                await self._sync_thread(raw, state)
            if state.chat is None or state.chat.chat_id != str(raw["id"]):
                kind = "thread" if raw.get("type") == PRIVATE_THREAD else "channel"
                meta = {"parent_id": raw.get("parent_id")} if kind == "thread" else {}
                await teams.record_chat(self.app, team_id, "discord", str(raw["id"]), kind, meta)

    async def _fetch(self, channel_id: str) -> dict | None:
        try:
            return await self.client.http.get_channel(int(channel_id))
        except discord.NotFound:
            return None

    async def _find_marked(self, guild: discord.Guild, team_id: int) -> dict | None:
        """A channel made for this team whose id was not recorded (a crash between making and recording)."""
        for channel in await self.client.http.get_all_guild_channels(guild.id):
            if channel.get("type") == TEXT and marker(team_id) in (channel.get("topic") or ""):
                return channel
        return None

    def _desired(self, guild: discord.Guild, state: teams.ChatState) -> list[dict]:
        return desired_overwrites(state, guild.id, self.client.user.id, self.moderator_roles(guild))  # type: ignore[union-attr]

    def _topic(self, state: teams.ChatState) -> str:
        bridged = (
            " Bridged with the team's Telegram group." if self.settings.TEAM_DISCORD_BRIDGE else ""
        )
        return f"Private chat of team {state.team.name}.{bridged} {marker(state.team.id)}"

    async def _reconcile(self, guild: discord.Guild, raw: dict, state: teams.ChatState) -> None:
        changes: dict[str, Any] = {}
        desired = self._desired(guild, state)
        if canonical(raw.get("permission_overwrites") or []) != desired:
            changes["permission_overwrites"] = desired
        if raw.get("name") != slug(state.team.name):
            changes["name"] = slug(state.team.name)
        if raw.get("topic") != self._topic(state):
            changes["topic"] = self._topic(state)
        if changes:
            await self.client.http.edit_channel(
                int(raw["id"]), reason="team channel kept in step", **changes
            )

    async def _create(self, guild: discord.Guild, state: teams.ChatState) -> dict:
        async with teams.chat_lock(self.app, None):
            channels = await self.client.http.get_all_guild_channels(guild.id)
            if len(channels) >= self.settings.TEAM_DISCORD_THREADS_AT:
                return await self._create_thread(guild, channels, state)
            for _ in range(
                3
            ):  # another process may fill a category between our look and our create
                parent = await self._category_with_room(guild, channels)
                try:
                    return await self.client.http.create_channel(
                        guild.id,
                        TEXT,
                        name=slug(state.team.name),
                        parent_id=parent,
                        topic=self._topic(state),
                        permission_overwrites=self._desired(guild, state),
                        reason=f"team {state.team.name}",
                    )
                except discord.HTTPException as exc:
                    if exc.code != 50035 or "CHANNEL_PARENT_MAX_CHANNELS" not in str(exc.text):
                        raise
                    channels = await self.client.http.get_all_guild_channels(guild.id)
            raise RuntimeError("no team category with room after three tries")

    def _category_names(self) -> list[str]:
        base = self.settings.TEAM_DISCORD_CATEGORY
        return [base] + [f"{base} {n}" for n in range(2, 11)]

    async def _category_with_room(self, guild: discord.Guild, channels: list[dict]) -> str:
        """The first "Teams", "Teams 2"… category with fewer than 50 channels, made if none has room."""
        names = self._category_names()
        categories = {
            c["name"]: c for c in channels if c.get("type") == CATEGORY and c.get("name") in names
        }
        for name in names:
            category = categories.get(name)
            if category is None:
                made = await self.client.http.create_channel(
                    guild.id,
                    CATEGORY,
                    name=name,
                    reason="team channels",
                    permission_overwrites=[
                        {"id": str(guild.id), "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)},
                        {
                            "id": str(self.client.user.id),
                            "type": 1,  # type: ignore[union-attr]
                            "allow": str(BOT_ALLOW),
                            "deny": "0",
                        },
                    ],
                )
                return str(made["id"])
            if sum(1 for c in channels if c.get("parent_id") == category["id"]) < CATEGORY_LIMIT:
                return str(category["id"])
        raise RuntimeError("every team category is full")

    async def _threads_parent(self, guild: discord.Guild, channels: list[dict]) -> int:
        configured = self.settings.TEAM_DISCORD_THREAD_CHANNEL_ID
        if configured:
            return configured
        found = next(
            (c for c in channels if c.get("type") == TEXT and c.get("name") == THREADS_CHANNEL),
            None,
        )
        if found is not None:
            return int(found["id"])
        # Members must see the parent to see their private thread; nobody posts in the parent itself.
        made = await self.client.http.create_channel(
            guild.id,
            TEXT,
            name=THREADS_CHANNEL,
            topic="Each team's private thread lives here.",
            permission_overwrites=[
                {
                    "id": str(guild.id),
                    "type": 0,
                    "allow": str(VIEW_CHANNEL | SEND_IN_THREADS),
                    "deny": str(SEND_MESSAGES),
                },
                {
                    "id": str(self.client.user.id),
                    "type": 1,  # type: ignore[union-attr]
                    "allow": str(BOT_ALLOW),
                    "deny": "0",
                },
            ],
            reason="private team threads: the server is near its 500 channels",
        )
        return int(made["id"])

    async def _create_thread(
        self, guild: discord.Guild, channels: list[dict], state: teams.ChatState
    ) -> dict:
        parent = await self._threads_parent(guild, channels)
        thread = await self.client.http.start_thread_without_message(
            parent,
            name=slug(state.team.name),
            auto_archive_duration=10080,
            type=PRIVATE_THREAD,
            invitable=False,
            reason=f"team {state.team.name} (the server is near its channel cap)",
        )
        await self._sync_thread(thread, state)
        return thread

    async def _sync_thread(self, thread: dict, state: teams.ChatState) -> None:
        """A private thread has no overwrites: its members are exactly the team's (moderators see
        private threads through Manage Threads)."""
        tid = int(thread["id"])
        have = {int(m["user_id"]) for m in await self.client.http.get_thread_members(tid)}
        want = {int(a) for a in state.member_accounts} | {self.client.user.id}  # type: ignore[union-attr]
        for uid in sorted(want - have):
            await self.client.http.add_user_to_thread(tid, uid)
        for uid in sorted(have - want):
            await self.client.http.remove_user_from_thread(tid, uid)

    async def _archive(self, guild: discord.Guild, state: teams.ChatState) -> None:
        """A disbanded team's channel: members lose access, moderators keep it read-only."""
        chat = state.chat
        if chat is None:
            return
        raw = await self._fetch(chat.chat_id)
        if raw is not None and raw.get("type") == PRIVATE_THREAD:
            for uid in [
                int(m["user_id"]) for m in await self.client.http.get_thread_members(int(raw["id"]))
            ]:
                if uid != self.client.user.id:  # type: ignore[union-attr]
                    await self.client.http.remove_user_from_thread(int(raw["id"]), uid)
            await self.client.http.edit_channel(
                int(raw["id"]), archived=True, locked=True, reason="team disbanded"
            )
        elif raw is not None:
            await self.client.http.edit_channel(
                int(raw["id"]),
                name=("archived-" + slug(state.team.name))[:100],
                topic=f"Archived: team {state.team.name} was disbanded. {marker(state.team.id)}",
                permission_overwrites=archived_overwrites(
                    guild.id,
                    self.client.user.id,  # type: ignore[union-attr]
                    self.moderator_roles(guild),
                ),
                reason="team disbanded",
            )
        await teams.unlink_chat(self.app, chat.id)

    # --- drift: gateway events and the periodic check -----------------------------------------

    async def on_channel_gone(self, channel: discord.abc.GuildChannel) -> None:
        team_id = await teams.team_for_chat(self.app, "discord", str(channel.id))
        if team_id is not None:
            log.info("team %s's channel %s was deleted; recreating it", team_id, channel.id)
            await teams.request_sync(self.app, [team_id], "discord", "the channel was deleted")

    async def on_raw_thread_delete(self, payload: discord.RawThreadDeleteEvent) -> None:
        await self.on_channel_gone(discord.Object(payload.thread_id))  # type: ignore[arg-type]

    async def on_channel_update(self, before: Any, after: Any) -> None:
        team_id = await teams.team_for_chat(self.app, "discord", str(after.id))
        if team_id is not None and await self._drifted(after, team_id):
            log.info("team %s's channel %s was changed by hand; repairing it", team_id, after.id)
            await teams.request_sync(self.app, [team_id], "discord", "the channel was edited")

    async def _drifted(
        self, channel: Any, team_id: int, state: teams.ChatState | None = None
    ) -> bool:
        guild = self.guild()
        if guild is None:
            return False
        state = state or await teams.chat_state(self.app, team_id, "discord")
        if isinstance(channel, discord.Thread):
            return channel.archived or channel.locked
        return cached_overwrites(channel) != self._desired(guild, state) or channel.name != slug(
            state.team.name
        )

    async def check(self) -> list[int]:
        """Compare every live team with its channel in the cache; ask a repair for those that drifted."""
        guild = self.guild()
        if guild is None or self.missing_rights(guild):
            return []
        drifted = []
        for state in await teams.active_chat_states(self.app, "discord"):
            channel = (
                guild.get_channel_or_thread(int(state.chat.chat_id))
                if state.chat is not None
                else None
            )
            if channel is None or await self._drifted(channel, state.team.id, state):
                drifted.append(state.team.id)
        if drifted:
            await teams.request_sync(
                self.app, drifted, "discord", "the periodic check found it out of step"
            )
        return drifted

    async def _check_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.TEAM_DISCORD_CHECK_SECONDS)
            try:
                await self.check()
            except Exception:
                log.exception("the periodic team channel check failed")
            self.checks += 1

    # --- the bridge ---------------------------------------------------------------------------

    def _maybe_team_channel(self, channel: Any) -> bool:
        """Only team categories and threads can hold a team chat: other channels never cost a query."""
        if isinstance(channel, discord.Thread):
            return True
        category = getattr(channel, "category", None)
        return category is not None and category.name in self._category_names()

    async def on_message(self, message: discord.Message) -> None:
        if message.guild is None or message.author.bot or message.webhook_id is not None:
            return  # the bot's own posts and every webhook's (our relays) are never relayed
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        if not self._maybe_team_channel(message.channel):
            return
        body = message.content
        for attachment in message.attachments:
            body += f"\n[{attachment.filename}] {attachment.url}"
        author = Actor("discord", str(message.author.id), message.author.display_name)
        reply_to = (
            str(message.reference.message_id)
            if message.reference and message.reference.message_id
            else None
        )
        await teams.record_message(
            self.app,
            "discord",
            str(message.channel.id),
            str(message.id),
            author,
            body,
            reply_to=reply_to,
        )

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        data = payload.data
        if "content" not in data or data.get("webhook_id") or (data.get("author") or {}).get("bot"):
            return
        await teams.record_edit(
            self.app, "discord", str(payload.channel_id), str(payload.message_id), data["content"]
        )

    async def on_relay(self, item: outbox.OutboxItem) -> None:
        view = await teams.relay_view(self.app, int(item.payload["message_id"]), "discord")
        if view is None or view.chat is None:
            return  # the team has no Discord channel (any more): nothing to show
        if view.copy_id is not None and view.copy_version >= view.version:
            return  # shown already: never twice
        content = self._relay_content(view)
        thread = (
            discord.Object(int(view.chat.chat_id))
            if view.chat.kind == "thread"
            else discord.utils.MISSING
        )
        for fresh in (False, True):
            hook = await self._webhook(view.chat, fresh=fresh)
            try:
                if view.copy_id is None:
                    sent = await hook.send(
                        content,
                        username=webhook_name(view.author_name, view.label),
                        allowed_mentions=NO_MENTIONS,
                        wait=True,
                        thread=thread,
                    )
                    await teams.record_copy(
                        self.app,
                        view.message_id,
                        "discord",
                        view.chat.chat_id,
                        str(sent.id),
                        view.version,
                    )
                else:
                    await hook.edit_message(
                        int(view.copy_id),
                        content=content,
                        allowed_mentions=NO_MENTIONS,
                        thread=thread,
                    )
                    await teams.record_copy(
                        self.app,
                        view.message_id,
                        "discord",
                        view.chat.chat_id,
                        view.copy_id,
                        view.version,
                    )
                return
            except discord.NotFound:
                if fresh or view.copy_id is not None:
                    raise outbox.Undeliverable(
                        f"relay {view.message_id}: the webhook or message is gone"
                    ) from None

    @staticmethod
    def _relay_content(view: teams.RelayView) -> str:
        body = escape_markdown(view.body)
        if view.reply_author is not None:
            quoted = " ".join((view.reply_body or "").split())[:100]
            body = (
                f"> ↪ **{escape_markdown(view.reply_author)}**: {escape_markdown(quoted)}\n{body}"
            )
        return body[:2000]

    async def _webhook(self, chat: teams.ChatRow, *, fresh: bool) -> discord.Webhook:
        """The webhook that carries relayed authors' names (one per channel; a thread uses its parent's)."""
        meta = chat.meta
        if not fresh and meta.get("webhook_id") and meta.get("webhook_token"):
            return discord.Webhook.partial(
                int(meta["webhook_id"]), meta["webhook_token"], client=self.client
            )
        channel_id = (
            int(meta.get("parent_id") or chat.chat_id)
            if chat.kind == "thread"
            else int(chat.chat_id)
        )
        made = await self.client.http.create_webhook(
            channel_id, name=WEBHOOK_NAME, reason="team chat bridge"
        )
        await teams.update_chat_meta(
            self.app, chat.id, {"webhook_id": made["id"], "webhook_token": made["token"]}
        )
        return discord.Webhook.partial(int(made["id"]), made["token"], client=self.client)
