"""docker-compose.yml's way out of one machine holds together: the Discord shard services agree on
the count and cover every shard exactly once, with settings the game accepts."""

from pathlib import Path

import yaml

from core.settings import load_settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_the_shard_services_cover_every_shard_once():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    shards = {
        n: s for n, s in services.items() if "DISCORD_SHARD_IDS" in (s.get("environment") or {})
    }
    assert len(shards) >= 2
    counts, ids = set(), []
    for name, service in shards.items():
        env = service["environment"]
        assert "DATABASE_URL" in env and service.get("profiles") == ["sharded"], name
        settings = load_settings(
            _env_file=None,
            DISCORD_SHARD_COUNT=env["DISCORD_SHARD_COUNT"],
            DISCORD_SHARD_IDS=env["DISCORD_SHARD_IDS"],
        )
        count, mine = settings.discord_shards
        counts.add(count)
        ids += mine
    assert len(counts) == 1 and sorted(ids) == list(range(counts.pop()))
    # the single process has no shard settings of its own: it is scaled to 0 beside the shards
    assert "DISCORD_SHARD_IDS" not in (services["discord"].get("environment") or {})
