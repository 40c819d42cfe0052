import pytest

from core.errors import InvalidArgument
from core.money import TOKEN, USDC, format_amount, parse_amount


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("12.5", 12_500_000),
        ("0.000001", 1),
        ("1,000", 1_000_000_000),
        ("1,000.5", 1_000_500_000),
        ("1,234,567", 1_234_567_000_000),
        ("1_000", 1_000_000_000),
        (" 7 ", 7_000_000),
        (".5", 500_000),
        ("3.", 3_000_000),
    ],
)
def test_parse_usdc(text, minor):
    assert parse_amount(text, USDC) == minor


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "missing"),
        (None, "missing"),
        ("-5", "positive"),
        ("abc", "not an amount"),
        ("1.1234567", "at most 6 decimals"),
        ("0", "more than zero"),
        ("1e5", "not an amount"),
        ("99999999999999999999", "too large"),
        ("1" * 50, "too long"),
        ("nan", "not an amount"),
        ("1.2.3", "not an amount"),
    ],
)
def test_parse_refuses_with_a_reason(text, needle):
    with pytest.raises(InvalidArgument) as err:
        parse_amount(text, USDC)
    assert needle in err.value.message


def test_token_has_eight_decimals():
    assert parse_amount("1000000", TOKEN) == 10**14
    assert parse_amount("0.00000001", TOKEN) == 1
    with pytest.raises(InvalidArgument):
        parse_amount("0.000000001", TOKEN)


@pytest.mark.parametrize(
    ("minor", "text"),
    [
        (10_000_000, "10.00 USDC"),
        (10_078_000, "10.078 USDC"),
        (1, "0.000001 USDC"),
        (-2_500_000, "-2.50 USDC"),
        (10**15, "1,000,000,000.00 USDC"),
    ],
)
def test_format(minor, text):
    assert format_amount(minor) == text
    assert format_amount(minor, demo=True) == text.replace("USDC", "demo USDC")


@pytest.mark.parametrize(
    "text", ["5,5", "1,00", "12,3456", ",5", "1,000,00", "5_5", "1,,000", "1,000,"]
)
@pytest.mark.parametrize("currency", [USDC, TOKEN])
def test_a_comma_that_is_not_a_thousands_group_is_refused_not_guessed(text, currency):
    with pytest.raises(InvalidArgument) as err:
        parse_amount(text, currency)
    assert "ambiguous" in err.value.message and "point" in err.value.message


def test_the_largest_token_amount_fits_the_ledger():
    from core.money import BIGINT_MAX

    largest = parse_amount(f"{TOKEN.max_units:,}", TOKEN)
    assert largest <= BIGINT_MAX
    with pytest.raises(InvalidArgument, match="too large"):
        parse_amount("100,000,000,000", TOKEN)
