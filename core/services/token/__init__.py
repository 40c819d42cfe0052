"""The $100Bs token (SPEC §6): wallets, holdings and discounts, deposits, staking, price, buyback,
payouts. Solana is reached only through ``app.solana`` (core/ports/solana.py)."""
