"""The token's settings: addresses checked at start, blank is unset, secrets and keys never echoed."""

import pytest

from core.settings import SettingsError, load_settings


def test_defaults_name_the_token_and_mainnet_usdc():
    s = load_settings(_env_file=None)
    assert s.TOKEN_MINT == "5ic4A4scnqeAT2XkwvWCUYjZoxjVLvoTz4njbmAhbonk" and s.TOKEN_DECIMALS == 8
    assert s.USDC_MINT == "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
    assert (
        s.TREASURY_WALLET is None and s.TREASURY_KEYPAIR_PATH is None and s.TOKEN_PRICE_URL is None
    )
    assert (s.HOLDINGS_CACHE_SECONDS, s.WALLET_CHALLENGE_SECONDS, s.WALLET_RELINK_SECONDS) == (
        300,
        600,
        86_400,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("TREASURY_WALLET", "0OIl"), ("TOKEN_MINT", "abc"), ("TREASURY_USDC_ACCOUNT", "1" * 44)],
)
def test_a_bad_address_is_named_on_its_own_line(name, value):
    with pytest.raises(SettingsError) as err:
        load_settings(_env_file=None, **{name: value})
    assert f"{name}: Value error, must be a base58 Solana address" in err.value.message


def test_blank_token_settings_are_unset():
    s = load_settings(
        _env_file=None, TREASURY_WALLET=" ", TREASURY_KEYPAIR_PATH="", TOKEN_PRICE_URL=""
    )
    assert (
        s.TREASURY_WALLET is None and s.TREASURY_KEYPAIR_PATH is None and s.TOKEN_PRICE_URL is None
    )
