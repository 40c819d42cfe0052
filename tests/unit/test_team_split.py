"""Properties of a team's prize split: shares add up to the prize exactly, follow the order of the
contributions, differ from the exact proportion by less than one unit, and ties go to the
longest-standing member."""

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from core.services.teams import Member, prize_shares

START = datetime(2026, 1, 1, tzinfo=UTC)


def team(contributions: list[int]) -> list[Member]:
    return [
        Member(i + 1, f"p{i}", START + timedelta(minutes=i), c) for i, c in enumerate(contributions)
    ]


prizes = st.integers(0, 10**15)
contributions = st.lists(st.integers(0, 10**13), min_size=1, max_size=100)


@given(prize=prizes, paid=contributions)
def test_proportional_shares_sum_to_the_prize_and_follow_contributions(prize, paid):
    shares = prize_shares(prize, "proportional", team(paid))
    assert sum(shares) == prize and all(s >= 0 for s in shares)
    total = sum(paid)
    exact = [Fraction(prize * c, total) if total else Fraction(prize, len(paid)) for c in paid]
    assert all(abs(s - e) < 1 for s, e in zip(shares, exact, strict=True))
    for i in range(len(paid)):
        for j in range(len(paid)):
            if (paid[i] > paid[j]) if total else False:
                assert shares[i] >= shares[j]
            if (
                paid[i] == paid[j] and i < j
            ):  # the same contribution: the earlier member never gets less
                assert shares[i] >= shares[j]
    if total:
        assert all(s == 0 for s, c in zip(shares, paid, strict=True) if c == 0)


@given(prize=prizes, size=st.integers(1, 100))
def test_equal_shares_differ_by_at_most_one_unit_earliest_first(prize, size):
    shares = prize_shares(prize, "equal", team([7] * size))
    assert sum(shares) == prize
    assert max(shares) - min(shares) <= 1
    assert shares == sorted(shares, reverse=True)  # the leftover units go to the longest-standing


def test_nobody_contributed_means_equal():
    assert prize_shares(10, "proportional", team([0, 0, 0])) == [4, 3, 3]


def test_an_awkward_remainder_goes_by_largest_remainder_then_earliest_join():
    # 100 by 1:1:1 -> 33.33 each: the one leftover unit goes to the first; 2:1 of 10 -> 6.67, 3.33
    assert prize_shares(100, "proportional", team([5, 5, 5])) == [34, 33, 33]
    assert prize_shares(10, "proportional", team([2, 1])) == [7, 3]
    assert prize_shares(10, "proportional", team([1, 2])) == [3, 7]
