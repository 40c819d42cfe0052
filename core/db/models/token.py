"""The $100Bs token (SPEC §6): wallets, holdings, deposits, stakes, prices, buybacks, payouts."""

from __future__ import annotations
