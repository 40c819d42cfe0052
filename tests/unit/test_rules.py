from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.rules import apply_discount, attempt_fee, expiry_shares, largest_remainder, split_payment

BASE, GROWTH, CAP = 10_000_000, 78, 4_500_000_000


def exact_fee(n: int, base: int = BASE, growth: int = GROWTH, cap: int = CAP) -> int:
    return min(cap, int(Fraction(base) * Fraction(10_000 + growth, 10_000) ** n))


@pytest.mark.parametrize(
    ("n", "fee"),
    [
        (0, 10_000_000),
        (1, 10_078_000),
        (2, 10_156_608),
        (10, 10_807_955),
        (100, 21_748_805),
        (500, 486_605_496),
    ],
)
def test_fee_table_defaults(n, fee):
    assert attempt_fee(n, BASE, GROWTH, CAP) == fee == exact_fee(n)


def test_fee_reaches_the_cap_and_stays():
    first_capped = next(n for n in range(2_000) if exact_fee(n) == CAP)
    assert attempt_fee(first_capped - 1, BASE, GROWTH, CAP) < CAP
    assert attempt_fee(first_capped, BASE, GROWTH, CAP) == CAP
    assert (
        attempt_fee(10**9, BASE, GROWTH, CAP) == CAP
    )  # closed form: no loop over a billion attempts


@given(st.integers(0, 3_000), st.integers(1, 10**9), st.integers(0, 10_000), st.integers(1, 10**12))
def test_fee_matches_exact_rational(n, base, growth, cap_extra):
    cap = base + cap_extra
    assert attempt_fee(n, base, growth, cap) == exact_fee(n, base, growth, cap)


@given(st.integers(0, 10**15))
def test_split_adds_up_exactly(paid):
    s = split_payment(paid)
    assert s.total == paid
    assert s.prize == paid * 7_000 // 10_000
    revenue = paid - s.prize
    assert s.staking == revenue * 3_000 // 10_000 and s.buyback == revenue * 500 // 10_000
    assert min(s.prize, s.staking, s.buyback, s.operations) >= 0


@pytest.mark.parametrize(
    ("paid", "parts"),
    [(1, (0, 0, 0, 1)), (3, (2, 0, 0, 1)), (10_078_000, (7_054_600, 907_020, 151_170, 1_965_210))],
)
def test_split_awkward_remainders(paid, parts):
    s = split_payment(paid)
    assert (s.prize, s.staking, s.buyback, s.operations) == parts


def test_discount_floors_the_discount_not_the_fee():
    assert apply_discount(10_078_000, 1_000) == 9_070_200
    assert apply_discount(7, 5_000) == 4  # the player pays the odd unit
    with pytest.raises(ValueError):
        apply_discount(10, 10_001)


@given(
    st.integers(0, 10**12),
    st.lists(st.integers(0, 10**9), min_size=1, max_size=30).filter(lambda w: sum(w) > 0),
)
def test_largest_remainder_is_exact_and_fair(total, weights):
    shares = largest_remainder(total, weights)
    assert sum(shares) == total
    for share, w in zip(shares, weights, strict=True):
        ideal = Fraction(total * w, sum(weights))
        assert ideal - 1 < share <= ideal + 1


def test_largest_remainder_ties_go_to_the_earliest():
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert largest_remainder(2, [1, 1, 1]) == [1, 1, 0]


def test_expiry_gives_last_player_a_fifth_plus_their_share():
    shares = expiry_shares(1_000, last_player_index=2, fees_paid=[10, 30, 60])
    assert sum(shares) == 1_000
    assert shares == [80, 240, 200 + 480]
