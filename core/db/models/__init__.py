"""The schema, one module per area of the game. Alembic migrations are written from these; tests
build their database by migrating, and a test checks that the two agree."""

from core.db.models import (  # noqa: F401 - registers the tables
    memory,
    moderation,
    outbox,
    privacy,
    replicas,
    teams,
    token,
)
from core.db.models.base import NAMING, Base, now_column  # noqa: F401
from core.db.models.game import (  # noqa: F401
    Account,
    Announcement,
    Attempt,
    AttemptQuote,
    AuditLog,
    Bounty,
    Entry,
    GameMeta,
    Player,
    PlayerIdentity,
    Transfer,
)
from core.db.models.memory import AttackEmbedding, AttemptMemory, MemorySummary, PatternStat  # noqa: F401
from core.db.models.moderation import LinkCode, PlayerBan, PlayerNote  # noqa: F401
from core.db.models.outbox import OutboxMessage  # noqa: F401
from core.db.models.token import (  # noqa: F401
    Buyback,
    Deposit,
    DiscountUse,
    Payout,
    Stake,
    StakingDistribution,
    StakingReward,
    TokenHoldings,
    TokenPrice,
    Wallet,
    WalletChallenge,
)
