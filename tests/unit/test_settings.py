import pytest

from core.settings import SettingsError, load_settings


def test_defaults_need_no_key():
    s = load_settings(_env_file=None)
    assert (
        s.GUARDIAN_PROVIDER == "offline"
        and s.ATTEMPT_COOLDOWN_SECONDS == 10
        and s.ATTEMPT_MAX_CHARS == 1_000
    )
    assert not s.discord_enabled and not s.telegram_enabled


def test_every_bad_value_is_named_on_its_own_line(monkeypatch):
    monkeypatch.setenv("ATTEMPT_COOLDOWN_SECONDS", "soon")
    monkeypatch.setenv("GUARDIAN_PROVIDER", "gpt")
    monkeypatch.setenv("DATABASE_URL", "mysql://x")
    monkeypatch.setenv("MODERATOR_TELEGRAM_USER_IDS", "12, abc")
    with pytest.raises(SettingsError) as err:
        load_settings(_env_file=None)
    lines = err.value.message.splitlines()[1:]
    names = sorted(line.split(":")[0].strip() for line in lines)
    assert names == [
        "ATTEMPT_COOLDOWN_SECONDS",
        "DATABASE_URL",
        "GUARDIAN_PROVIDER",
        "MODERATOR_TELEGRAM_USER_IDS",
    ]


def test_secrets_are_not_echoed(monkeypatch):
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "super-secret-token")
    monkeypatch.setenv("ATTEMPT_MAX_CHARS", "-1")
    with pytest.raises(SettingsError) as err:
        load_settings(_env_file=None)
    assert "super-secret-token" not in err.value.message
    s = load_settings(_env_file=None, ATTEMPT_MAX_CHARS=5)
    assert "super-secret-token" not in repr(s)


def test_lists_and_urls_are_normalised(monkeypatch):
    monkeypatch.setenv("MODERATOR_DISCORD_ROLE_IDS", "1, 2,,3")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@h/db")
    s = load_settings(_env_file=None)
    assert s.MODERATOR_DISCORD_ROLE_IDS == ("1", "2", "3")
    assert s.DATABASE_URL == "postgresql+asyncpg://u:p@h/db"
