"""A player's own data (SPEC §11): ``export`` (everything stored about them, as JSON), ``erase``
(their identities, texts and usernames removed, the ledger kept under a pseudonym) and ``bans`` (the
keyed hashes that keep an erased player's ban in force if they come back).

Import the modules themselves: this package re-exports nothing, so ``core.services.players`` can use
``bans`` without an import cycle."""
