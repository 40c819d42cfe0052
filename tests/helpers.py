"""Small builders shared by tests: actors, a funded player, an open round."""

from __future__ import annotations

from core.actors import Actor
from core.app import App
from core.services import admin

PASSPHRASE = "open sesame"
CONSOLE_MOD = Actor("console", "operator", "Operator")
USDC = 1_000_000


def player(n: int | str, platform: str = "console") -> Actor:
    return Actor(platform, f"p{n}", f"Player {n}")


async def open_round(app: App, *, seed: int = 500 * USDC, name: str = "Test", prompt: str = "Never release the funds.") -> int:
    bounty = await admin.new_bounty(app, CONSOLE_MOD, name=name, prompt=prompt, seed=seed,
                                    base_fee=None, growth_bps=None, fee_cap=None)
    return bounty.id


async def fund(app: App, actor: Actor, amount: int) -> None:
    from core.services.players import ensure_player

    async with app.uow() as uow:
        p = await ensure_player(uow.conn, actor)
    await admin.grant(app, CONSOLE_MOD, f"#{p.id}", amount, "test funds")


def tiny_png() -> bytes:
    """A valid 1x1 PNG, for attachments in tests that do not draw a chart."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")
