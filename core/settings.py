"""Settings from the environment (and an optional .env), validated once at start."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.base58 import decode_base58
from core.errors import BountyError, InvalidArgument
from core.money import parse_amount


def _id_list(value: object) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, (list, tuple, set)):
        items = [str(v).strip() for v in value]
    else:
        items = [part.strip() for part in str(value).split(",")]
    items = [i for i in items if i]
    for item in items:
        if not item.lstrip("-").isdigit():
            raise ValueError(f"expected comma-separated numeric ids, got {item[:30]!r}")
    return tuple(items)


IdList = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    """Every setting of SPEC §2 and §8, by its environment name."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True
    )

    BOUNTY_DATA_DIR: Path = Path("./.bounty")
    DATABASE_URL: str | None = None
    REDIS_URL: str | None = None

    DISCORD_BOT_TOKEN: SecretStr | None = None
    DISCORD_API_BASE_URL: str | None = None
    DISCORD_GATEWAY_URL: str | None = None
    DISCORD_GUILD_ID: int | None = None
    DISCORD_ANNOUNCE_CHANNEL_ID: int | None = None

    TELEGRAM_BOT_TOKEN: SecretStr | None = None
    TELEGRAM_API_BASE_URL: str | None = None
    TELEGRAM_ANNOUNCE_CHAT_ID: int | None = None
    TELEGRAM_WEBHOOK_URL: str | None = None
    TELEGRAM_WEBHOOK_SECRET: SecretStr | None = None
    TELEGRAM_WEBHOOK_LISTEN: str = "0.0.0.0:8443"

    ANTHROPIC_API_KEY: SecretStr | None = None
    ANTHROPIC_BASE_URL: str | None = None
    ANTHROPIC_MODEL: str = "claude-sonnet-4-5"
    OPENAI_API_KEY: SecretStr | None = None
    OPENAI_BASE_URL: str | None = None
    OPENAI_MODEL: str = "gpt-4o"
    GUARDIAN_PROVIDER: Literal["anthropic", "openai", "offline"] = "offline"
    GUARDIAN_TIMEOUT_SECONDS: float = Field(60.0, gt=0, le=600)
    EMBEDDINGS_PROVIDER: Literal["openai", "local"] | None = (
        None  # unset: openai with a key, else local
    )
    SOLANA_RPC_URL: str = "https://api.mainnet-beta.solana.com"
    ENABLE_ENHANCED_CONTEXT: bool = False
    OFFLINE_GUARDIAN_PASSPHRASE: SecretStr | None = None

    ATTEMPT_COOLDOWN_SECONDS: int = Field(10, ge=0, le=86_400)
    ATTEMPT_MAX_CHARS: int = Field(1_000, ge=1, le=4_000)
    ATTEMPT_CONFIRM_SECONDS: int = Field(300, ge=10, le=3_600)
    ATTEMPT_FEE_TOLERANCE_BPS: int = Field(200, ge=0, le=5_000)
    ROUND_INACTIVITY_SECONDS: int = Field(86_400, ge=60)
    ROUND_MIN_ATTEMPTS_FOR_EXPIRY: int = Field(100, ge=1)

    # --- moderation and players across platforms (SPEC §8) ---
    MODERATOR_DISCORD_ROLE_IDS: IdList = ()
    MODERATOR_TELEGRAM_USER_IDS: IdList = ()
    # No moderator moves money alone (SPEC §10.6): a grant over this many USDC waits for a second
    # moderator; a payout needs this many distinct moderators' approvals (1: one moderator decides).
    ADMIN_GRANT_REVIEW_ABOVE: str = "100"
    PAYOUT_APPROVALS: int = Field(2, ge=1, le=10)

    # --- the guardian's memory (SPEC §5) ---
    OPENAI_EMBEDDINGS_MODEL: str = "text-embedding-3-small"
    EMBEDDINGS_THREADS: int = Field(1, ge=1, le=64)  # CPU threads of the local model per process
    # the local model in ONNX Runtime with int8 weights (made from the shipped ones), or in torch
    EMBEDDINGS_LOCAL_RUNTIME: Literal["onnx-int8", "torch"] = "onnx-int8"
    MEMORY_CONTEXT_TOKENS: int = Field(1_500, ge=200, le=50_000)  # budget of history + context
    MEMORY_SIMILAR_K: int = Field(5, ge=1, le=50)  # similar past attacks shown to the guardian
    MEMORY_SIMILARITY_THRESHOLD: float = Field(0.80, gt=0, lt=1)  # cosine similarity of "similar"
    MEMORY_SUMMARIES: Literal["auto", "anthropic", "extractive"] = "auto"  # auto: Claude when keyed
    MEMORY_PATTERN_LLM: bool = True  # an LLM second opinion on patterns when a key is set
    JOB_VISIBILITY_TIMEOUT_SECONDS: int = Field(
        900, ge=2, le=86_400
    )  # unacked job redelivered after

    # --- teams (SPEC §7) ---
    TEAM_MAX_MEMBERS: int = Field(5, ge=1, le=100)
    TEAM_INVITATION_DAYS: int = Field(7, ge=1, le=90)
    # Discord: team channels go under "<TEAM_DISCORD_CATEGORY>", "… 2", "… 3" (50 channels each);
    # from TEAM_DISCORD_THREADS_AT channels in the server (Discord's cap is 500) new teams get a
    # private thread in TEAM_DISCORD_THREAD_CHANNEL_ID (unset: a "team-threads" channel the bot makes).
    TEAM_DISCORD_CATEGORY: str = Field("Teams", min_length=1, max_length=90)
    TEAM_DISCORD_THREADS_AT: int = Field(490, ge=1, le=500)
    TEAM_DISCORD_THREAD_CHANNEL_ID: int | None = None
    TEAM_DISCORD_CHECK_SECONDS: int = Field(600, ge=5, le=86_400)  # the periodic drift check
    # Reading the team channels (the bridge) needs Discord's privileged Message Content intent.
    TEAM_DISCORD_BRIDGE: bool = True

    # --- the $100Bs token (SPEC §6) ---
    TOKEN_MINT: str = "5ic4A4scnqeAT2XkwvWCUYjZoxjVLvoTz4njbmAhbonk"
    TOKEN_DECIMALS: int = Field(8, ge=0, le=12)
    USDC_MINT: str = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
    TREASURY_WALLET: str | None = (
        None  # the treasury's owner address (its USDC account derives from it)
    )
    TREASURY_USDC_ACCOUNT: str | None = (
        None  # deposits go here; unset: TREASURY_WALLET's associated account
    )
    TREASURY_KEYPAIR_PATH: Path | None = None  # set: the worker pays approved payouts itself
    SOLANA_RPC_TIMEOUT_SECONDS: float = Field(10.0, gt=0, le=120)
    SOLANA_CONFIRM_SECONDS: float = Field(
        90.0, gt=0, le=600
    )  # how long a payout waits for finality per try
    SOLANA_POLL_SECONDS: float = Field(2.0, gt=0, le=60)
    TOKEN_PRICE_URL: str | None = None  # an HTTP JSON price endpoint; unset: no price is recorded
    TOKEN_PRICE_JSON_PATH: str = (
        "price"  # where the number is in its answer: keys and list indexes by dots
    )
    TOKEN_PRICE_STALE_SECONDS: int = Field(900, ge=60)
    HOLDINGS_CACHE_SECONDS: int = Field(300, ge=0, le=86_400)
    WALLET_CHALLENGE_SECONDS: int = Field(600, ge=60, le=3_600)
    WALLET_RELINK_SECONDS: int = Field(
        86_400, ge=0
    )  # a wallet unlinked from one player waits this long
    # whole tokens in circulation, for the staked share of supply in /admin stats (default: all 100 billion)
    TOKEN_CIRCULATING_SUPPLY: int = Field(100_000_000_000, gt=0, le=100_000_000_000)

    @field_validator(
        "TREASURY_WALLET",
        "TREASURY_USDC_ACCOUNT",
        "TREASURY_KEYPAIR_PATH",
        "TOKEN_PRICE_URL",
        mode="before",
    )
    @classmethod
    def _token_blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("TOKEN_MINT", "USDC_MINT", "TREASURY_WALLET", "TREASURY_USDC_ACCOUNT")
    @classmethod
    def _solana_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        try:
            raw = decode_base58(value)
        except ValueError:
            raise ValueError("must be a base58 Solana address") from None
        if len(raw) != 32:
            raise ValueError("must be a base58 Solana address (32 bytes)")
        return value

    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    LOG_FORMAT: Literal["text", "json"] = "text"  # json: one object per line with the ids in play

    # --- operating it (SPEC §11) ---
    # host:port of /metrics, /healthz and /readyz in the bot process and the worker (unset: off)
    METRICS_LISTEN: str | None = None
    # The embedded database is a demo game (demo credits, no deposits or payouts) unless this says
    # the local game is real; a real game wants DATABASE_URL and backups (docs/operators.md).
    LOCAL_GAME_REAL_MONEY: bool = False

    @field_validator("METRICS_LISTEN", mode="before")
    @classmethod
    def _listen(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = str(value).strip()
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, e.g. 0.0.0.0:9464 or 127.0.0.1:9464")
        return text

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """METRICS_LISTEN as (host, port); ``[::]`` style hosts lose their brackets."""
        if self.METRICS_LISTEN is None:
            return None
        host, _, port = self.METRICS_LISTEN.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)

    @field_validator("ADMIN_GRANT_REVIEW_ABOVE")
    @classmethod
    def _usdc_amount(cls, value: str) -> str:
        try:
            parse_amount(value, allow_zero=True)
        except InvalidArgument as exc:
            raise ValueError(f"must be a USDC amount like 100 or 12.5 ({exc.message})") from None
        return value.strip()

    @property
    def grant_review_above(self) -> int:
        """ADMIN_GRANT_REVIEW_ABOVE in USDC micro-units."""
        return parse_amount(self.ADMIN_GRANT_REVIEW_ABOVE, allow_zero=True)

    # --- more than one machine (docs/operators.md, "Outgrowing one machine") ---
    # Discord shards: this process connects DISCORD_SHARD_IDS of DISCORD_SHARD_COUNT (unset: the count
    # Discord recommends, every shard in this process). Processes given disjoint ids share the load.
    DISCORD_SHARD_COUNT: int | None = Field(None, ge=1, le=10_000)
    DISCORD_SHARD_IDS: IdList = ()
    # The game's connections to PostgreSQL per bot process (three more serve its batched statements):
    # processes x (this + 3), plus the workers', must stay under the server's max_connections.
    DATABASE_POOL_SIZE: int = Field(20, ge=2, le=1_000)

    @field_validator("DISCORD_SHARD_IDS", mode="before")
    @classmethod
    def _split_shard_ids(cls, value: object) -> tuple[str, ...]:
        return _id_list(value)

    @model_validator(mode="after")
    def _shards_fit(self) -> Settings:
        ids = [int(i) for i in self.DISCORD_SHARD_IDS]
        if ids and self.DISCORD_SHARD_COUNT is None:
            raise ValueError(
                "DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT (every process must agree on the count)"
            )
        if any(i < 0 or i >= (self.DISCORD_SHARD_COUNT or 0) for i in ids):
            raise ValueError(
                f"DISCORD_SHARD_IDS must be between 0 and {(self.DISCORD_SHARD_COUNT or 1) - 1} "
                "(shard ids count from 0 below DISCORD_SHARD_COUNT)"
            )
        if len(set(ids)) != len(ids):
            raise ValueError("DISCORD_SHARD_IDS lists a shard twice")
        return self

    @property
    def discord_shards(self) -> tuple[int | None, list[int] | None]:
        """(shard count, this process's shard ids) for discord.py; (None, None): Discord's advice."""
        if self.DISCORD_SHARD_COUNT is None:
            return None, None
        ids = [int(i) for i in self.DISCORD_SHARD_IDS]
        return self.DISCORD_SHARD_COUNT, ids or list(range(self.DISCORD_SHARD_COUNT))

    @field_validator("MODERATOR_DISCORD_ROLE_IDS", "MODERATOR_TELEGRAM_USER_IDS", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> tuple[str, ...]:
        return _id_list(value)

    @field_validator(
        "DATABASE_URL",
        "REDIS_URL",
        "DISCORD_API_BASE_URL",
        "DISCORD_GATEWAY_URL",
        "TELEGRAM_API_BASE_URL",
        "ANTHROPIC_BASE_URL",
        "OPENAI_BASE_URL",
        "TELEGRAM_WEBHOOK_URL",
        "EMBEDDINGS_PROVIDER",
        "DISCORD_SHARD_COUNT",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith(("postgres://", "postgresql://")):
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("must be a PostgreSQL URL (postgresql://user:pass@host/db)")
        return value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(
            ("redis://", "rediss://", "redis+socket://", "unix://")
        ):
            raise ValueError("must be a Redis URL (redis://host:6379/0)")
        return value

    @property
    def discord_enabled(self) -> bool:
        return self.DISCORD_BOT_TOKEN is not None and bool(
            self.DISCORD_BOT_TOKEN.get_secret_value()
        )

    @property
    def telegram_enabled(self) -> bool:
        return self.TELEGRAM_BOT_TOKEN is not None and bool(
            self.TELEGRAM_BOT_TOKEN.get_secret_value()
        )


class SettingsError(BountyError):
    """One line per bad setting, naming it and what was wrong, never echoing secret values."""


def load_settings(**overrides: object) -> Settings:
    """Build and validate settings; a bad value raises SettingsError with one line per problem."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            lines.append(f"{name}: {err['msg']}")
        raise SettingsError("Bad settings:\n" + "\n".join(f"  {line}" for line in lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
