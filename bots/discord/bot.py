"""Building, starting and stopping the Discord bot: the discord.py client, its slash commands
(synced only when they changed), the confirmation buttons, and what the game asks it to send."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from bots.common.delivery import DeliveryTask, announcement_handler, notice_reply
from bots.common.observability import PlatformLink
from bots.discord.buttons import ConfirmButton, confirm_view
from bots.discord.commands import build_app_commands, same_commands
from bots.discord.endpoints import discord_endpoints
from bots.discord.handlers import BountyHandlers
from bots.discord.late import LATE_ANSWER, late_messages, nonce
from bots.discord.render import NO_MENTIONS, render
from bots.discord.teams import DiscordTeams, intents_for
from core.app import App
from core.commands import Command, Reply, commands_for
from core.health import platform_probe
from core.services import outbox
from core.services.announcements import AnnouncementRow
from core.settings import Settings

log = logging.getLogger("bounty.discord")

# Slash commands and buttons arrive as interactions whatever the intents; "guilds" keeps the
# server's roles and channels cached. The team chat bridge adds guild messages and the privileged
# Message Content intent (bots.discord.teams.intents_for; TEAM_DISCORD_BRIDGE=false leaves them out).
INTENTS = discord.Intents(guilds=True)
# The bot never joins voice: discord.py's warnings about missing voice libraries would only mislead.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False
READY_TIMEOUT = 60.0
SHUTDOWN_GRACE = 75.0  # a paid attempt in progress may wait on the guardian for up to 60 s


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard Discord sends a server's events to (DMs go to shard 0)."""
    return (guild_id >> 22) % shard_count


def holds_shard_of(settings: Settings, guild_id: int | None) -> bool:
    """Whether this process connects the shard that ``guild_id`` (None: DMs, or the one server
    team channels use without DISCORD_GUILD_ID) is on."""
    count, ids = settings.discord_shards
    if count is None or ids is None:
        return True
    return shard_of(guild_id, count) in ids if guild_id else 0 in ids


class BountyTree(app_commands.CommandTree):
    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        return self.client.bounty.first_delivery(interaction)  # type: ignore[attr-defined]

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError, /
    ) -> None:
        await self.client.bounty.on_app_command_error(interaction, error)  # type: ignore[attr-defined]


class BountyClient(discord.AutoShardedClient):
    """discord.py's client with the game's command tree; ``bounty`` answers every interaction."""

    def __init__(
        self, bot: BountyDiscordBot, *, gateway_url: str | None = None, **options: Any
    ) -> None:
        options.setdefault("http_trace", bot.link.trace)  # API calls counted (429s, 5xx)
        super().__init__(
            intents=intents_for(bot.reads_team_chat), allowed_mentions=NO_MENTIONS, **options
        )
        self.bot = bot
        bot.teams.attach(self)
        self.bounty = bot.handlers
        self.tree = BountyTree(self)
        # AutoShardedClient connects to the URL GET /gateway/bot names; a configured one wins. Off
        # Discord (another API base), that URL is also where an invalidated session re-identifies,
        # which discord.py otherwise sends to DEFAULT_GATEWAY (restored when the bot stops).
        ask = self.http.get_bot_gateway
        elsewhere = self._elsewhere = bool(gateway_url or bot.settings.DISCORD_API_BASE_URL)

        async def get_bot_gateway() -> tuple[int, str, Any]:
            shards, url, limits = await ask()
            url = gateway_url or url
            if elsewhere:
                DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
            return shards, url, limits

        self.http.get_bot_gateway = get_bot_gateway  # type: ignore[method-assign]

    async def setup_hook(self) -> None:
        self.add_dynamic_items(ConfirmButton)
        await self.bot.sync_commands()

    async def launch_shards(self) -> None:
        # Given a shard count, discord.py skips GET /gateway/bot and dials DEFAULT_GATEWAY: off
        # Discord, ask the API server first, so the shards connect where it says.
        if self.shard_count is not None and self._elsewhere:
            await self.http.get_bot_gateway()
        await super().launch_shards()


class BountyDiscordBot:
    """The running bot. ``start()``/``stop()`` for tests and the benchmark; ``run_discord`` for the CLI.

    ``commands`` defaults to core's table; ``client_options`` go to discord.py's client (tests pass
    a short ``guild_ready_timeout``, which otherwise delays readiness by 2 s).
    """

    def __init__(
        self,
        app: App,
        *,
        commands: Sequence[Command] | None = None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.settings = app.settings
        token = self.settings.DISCORD_BOT_TOKEN
        if token is None or not token.get_secret_value().strip():
            raise ValueError("DISCORD_BOT_TOKEN is not set")
        self.handlers = BountyHandlers(app)
        self.link = PlatformLink("discord")
        self.commands = commands_for("discord", commands)
        self.client_options = client_options or {}
        self.client: BountyClient | None = None
        self.runner: asyncio.Task[None] | None = None
        self.synced: bool | None = None  # whether the last start had to PUT the commands
        self._endpoints: contextlib.ExitStack | None = None
        self.delivery = DeliveryTask(app, "discord")
        if self.settings.DISCORD_ANNOUNCE_CHANNEL_ID is not None:
            self.delivery.handle("announcement", announcement_handler(self.announce))
        self.delivery.handle("notice", self.send_notice)
        self.delivery.handle(LATE_ANSWER, self.send_kept)
        # Reading the team channels needs the privileged Message Content intent; refused, the bot runs
        # without it (channels are still kept, Telegram's messages still reach them) and says why.
        self.reads_team_chat = self.settings.TEAM_DISCORD_BRIDGE
        self.teams = DiscordTeams(self)
        # Sharded over several processes, only the one holding the team server's shard sees that
        # server (its channels, roles and messages): it alone keeps the team channels.
        self.keeps_team_channels = holds_shard_of(self.settings, self.settings.DISCORD_GUILD_ID)
        if self.keeps_team_channels:
            self.teams.install(self.delivery)

    def connected(self) -> bool:
        """Ready, and every shard's gateway connection open (for /readyz)."""
        client = self.client
        return (
            client is not None
            and client.is_ready()
            and not client.is_closed()
            and all(not shard.is_closed() for shard in client.shards.values())
        )

    @property
    def guild(self) -> discord.Object | None:
        gid = self.settings.DISCORD_GUILD_ID
        return discord.Object(gid) if gid else None

    async def complete(
        self, interaction: discord.Interaction, source: str, typed: str
    ) -> list[tuple[str, str]]:
        """Autocomplete from core's sources; a failure offers nothing rather than an error."""
        from bots.discord.handlers import actor_for
        from core.commands.completions import complete

        try:
            return await complete(self.app, actor_for(interaction), source, typed)
        except Exception:
            log.exception("autocomplete %s failed", source)
            return []

    async def start(self) -> None:
        """Log in, sync the commands if they changed, connect, and wait until ready."""
        settings = self.settings
        self._endpoints = contextlib.ExitStack()
        self._endpoints.enter_context(
            discord_endpoints(settings.DISCORD_API_BASE_URL, settings.DISCORD_GATEWAY_URL)
        )
        try:
            try:
                await self._connect()
            except discord.PrivilegedIntentsRequired:
                if not self.reads_team_chat:
                    raise
                log.error(
                    "Discord refused the Message Content intent, which reading the team channels needs: "
                    "enable it under Developer Portal -> Bot -> Privileged Gateway Intents (or set "
                    "TEAM_DISCORD_BRIDGE=false). Running without it: team channels are kept and Telegram's "
                    "team chat still reaches them, but Discord's team chat is not relayed."
                )
                await self._disconnect()
                self.reads_team_chat = False
                await self._connect()
            self.delivery.start()
            if self.keeps_team_channels:
                self.teams.start()
            log.info(
                "Discord bot ready as %s, shards %s of %s",
                self.client.user if self.client else None,
                ",".join(str(i) for i in (self.client.shard_ids or [])) if self.client else "?",
                self.client.shard_count if self.client else "?",
            )
        except BaseException:
            await self.stop()
            raise

    async def _connect(self) -> None:
        settings = self.settings
        options = dict(self.client_options)
        count, ids = settings.discord_shards
        if count is not None:  # else every shard Discord recommends, in this process
            options.setdefault("shard_count", count)
            options.setdefault("shard_ids", ids)
        client = self.client = BountyClient(
            self, gateway_url=settings.DISCORD_GATEWAY_URL, **options
        )
        for command in build_app_commands(
            self.commands,
            self.handlers.on_command,
            guild_only=self.guild is None,
            completer=self.complete,
            settings=settings,
        ):
            client.tree.add_command(command, guild=self.guild)
        await client.login(settings.DISCORD_BOT_TOKEN.get_secret_value())  # type: ignore[union-attr]
        self.runner = asyncio.create_task(client.connect(reconnect=True), name="discord-gateway")
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait(
            {ready, self.runner}, timeout=READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            if self.runner.done():
                self.runner.result()  # the gateway refused us: raise why
            raise TimeoutError("the Discord gateway did not get ready in time")

    async def _disconnect(self) -> None:
        if self.client is not None and not self.client.is_closed():
            await self.client.close()
        if self.runner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await self.runner
                except Exception as exc:
                    log.info("Discord gateway ended with %s", type(exc).__name__)
            self.runner = None

    async def stop(self) -> None:
        """Stop announcing, let interactions in progress finish, close the gateway and HTTP session."""
        await self.teams.stop()
        await self.delivery.stop()
        await self.handlers.wait_idle(SHUTDOWN_GRACE)
        await self._disconnect()
        if self._endpoints is not None:
            self._endpoints.close()
            self._endpoints = None

    async def sync_commands(self) -> bool:
        """PUT the command list only when it differs from what Discord has; True if it did."""
        client = self.client
        assert client is not None and client.application_id is not None
        guild = self.guild
        desired = [c.to_dict(client.tree) for c in client.tree.get_commands(guild=guild)]
        if guild is not None:
            have = await client.http.get_guild_commands(client.application_id, guild.id)
        else:
            have = await client.http.get_global_commands(client.application_id)
        if same_commands(desired, list(have)):
            log.info("Discord commands are up to date (%d)", len(desired))
            self.synced = False
            return False
        await client.tree.sync(guild=guild)
        log.info(
            "synced %d Discord commands to %s",
            len(desired),
            f"guild {guild.id}" if guild else "all servers",
        )
        self.synced = True
        return True

    async def send_notice(self, item: outbox.OutboxItem) -> None:
        """A notice to a player, as a direct message; a user who allows none from us is told nothing."""
        assert self.client is not None
        try:
            user = self.client.get_user(
                int(item.payload["external_id"])
            ) or await self.client.fetch_user(int(item.payload["external_id"]))
            for i, message in enumerate(render(notice_reply(item)).messages):
                await user.send(
                    embed=message.embed,
                    content=message.content,
                    allowed_mentions=NO_MENTIONS,
                    nonce=nonce("n", item.id, i),
                )
        except (discord.Forbidden, discord.NotFound) as exc:
            raise outbox.Undeliverable(
                f"Discord user {item.payload['external_id']}: {exc}"
            ) from None

    async def announce(self, row: AnnouncementRow) -> None:
        """Post an announcement to DISCORD_ANNOUNCE_CHANNEL_ID (a failure is retried through the outbox)."""
        assert self.client is not None
        channel = self.client.get_partial_messageable(self.settings.DISCORD_ANNOUNCE_CHANNEL_ID)  # type: ignore[arg-type]
        out = render(
            Reply(
                title=row.title,
                text=row.body,
                tone="success" if row.kind == "round_won" else "info",
            )
        )
        for i, message in enumerate(out.messages):
            files = message.discord_files()
            await channel.send(
                embed=message.embed,
                content=message.content,
                allowed_mentions=NO_MENTIONS,
                nonce=nonce("a", row.id, i),
                **({"files": files} if files else {}),
            )

    async def send_kept(self, item: outbox.OutboxItem) -> None:
        """An answer its interaction could not carry (``BountyHandlers.keep``), as messages: in its
        channel, or directly to the player. Sent again after a failure, a message already made is
        not made twice (its nonce)."""
        assert self.client is not None
        payload = item.payload
        try:
            if payload.get("channel_id"):
                target: Any = self.client.get_partial_messageable(int(payload["channel_id"]))
            else:
                target = self.client.get_user(
                    int(payload["user_id"])
                ) or await self.client.fetch_user(int(payload["user_id"]))
            for i, message in enumerate(late_messages(payload)):
                files = message.discord_files()
                await target.send(
                    embed=message.embed,
                    content=message.content,
                    allowed_mentions=NO_MENTIONS,
                    nonce=nonce("k", item.id, i),
                    **({"files": files} if files else {}),
                    **({"view": confirm_view(message.confirm)} if message.confirm else {}),
                )
        except (discord.Forbidden, discord.NotFound) as exc:
            where = payload.get("channel_id") or f"user {payload['user_id']}"
            raise outbox.Undeliverable(f"Discord {where}: {exc}") from None


async def run_discord(app: App, stop: asyncio.Event) -> None:
    """Run the Discord bot until ``stop`` is set, then shut it down cleanly."""
    bot = BountyDiscordBot(app)
    await bot.start()
    try:
        with platform_probe("discord", bot.connected):  # /readyz: the gateway is up
            stopper = asyncio.create_task(stop.wait())
            assert bot.runner is not None
            await asyncio.wait({stopper, bot.runner}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not stop.is_set() and bot.runner.done():
                bot.runner.result()
                raise RuntimeError("the Discord gateway connection ended")
    finally:
        try:
            await bot.stop()
        except Exception:
            log.exception("the Discord bot did not stop cleanly")
