"""Base58 as Solana writes addresses and signatures, with answers that say what is wrong."""

from __future__ import annotations

from core.errors import InvalidArgument

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}

ADDRESS_BYTES = 32
SIGNATURE_BYTES = 64


def decode_base58(text: str) -> bytes:
    """Decode base58 (Bitcoin alphabet); ValueError on any other character."""
    number = 0
    for ch in text:
        digit = _INDEX.get(ch)
        if digit is None:
            raise ValueError(f"{ch!r} is not a base58 character")
        number = number * 58 + digit
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * zeros + body


def encode_base58(raw: bytes) -> str:
    number = int.from_bytes(raw, "big")
    out = []
    while number:
        number, digit = divmod(number, 58)
        out.append(ALPHABET[digit])
    zeros = len(raw) - len(raw.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(out))


def _decode(text: str | None, what: str, size: int) -> str:
    value = (text or "").strip()
    if not value:
        raise InvalidArgument(f"The {what} is missing.")
    if len(value) > 2 * size:  # base58 of n bytes is at most ~1.37 n characters
        raise InvalidArgument(f"That is too long to be a {what} ({len(value)} characters).")
    bad = next((ch for ch in value if ch not in _INDEX), None)
    if bad is not None:
        raise InvalidArgument(
            f"That is not a {what}: {bad!r} is not a base58 character (base58 has no 0, O, I or l)."
        )
    raw = decode_base58(value)
    if len(raw) != size:
        raise InvalidArgument(
            f"That is not a {what}: it decodes to {len(raw)} bytes, a {what} has {size}."
        )
    return value


def parse_address(text: str | None) -> str:
    """A Solana address (a public key): base58 of 32 bytes."""
    return _decode(text, "Solana address", ADDRESS_BYTES)


def parse_signature(text: str | None, what: str = "signature") -> str:
    """An ed25519 signature (a message's, or a transaction's): base58 of 64 bytes."""
    return _decode(text, what, SIGNATURE_BYTES)
