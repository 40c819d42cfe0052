"""The Solana port: the few RPC calls the token feature needs, and the real implementation on
solana-py's ``AsyncClient`` (``SOLANA_RPC_URL``). Tests point it at a local JSON-RPC stand-in.

Every failure of the node (HTTP error, timeout, an RPC error, an answer that does not parse) is
``SolanaUnavailable``: callers keep what they knew and say so, never read a failure as "zero".
"""

from __future__ import annotations

import abc
import asyncio
import json
from dataclasses import dataclass
from typing import Any, Literal

Commitment = Literal["processed", "confirmed", "finalized"]


class SolanaUnavailable(Exception):
    """The RPC node failed, timed out, or answered something that is not a valid answer."""


class SolanaRejected(SolanaUnavailable):
    """The node refused a transaction outright (preflight failure, bad blockhash...)."""


@dataclass(frozen=True)
class TokenBalance:
    amount: int  # base units, summed over every token account of the owner for the mint
    accounts: int
    decimals: int | None  # as the chain reports them (None: no account)


@dataclass(frozen=True)
class SignatureStatus:
    slot: int
    confirmation: Commitment | None
    err: Any  # None when the transaction succeeded

    @property
    def finalized(self) -> bool:
        return self.confirmation == "finalized"


@dataclass(frozen=True)
class Blockhash:
    blockhash: str
    last_valid_block_height: int


class Solana(abc.ABC):
    """What the game asks of the chain."""

    @abc.abstractmethod
    async def token_balance(self, owner: str, mint: str) -> TokenBalance:
        """The owner's balance of ``mint`` over all its token accounts (getTokenAccountsByOwner)."""

    @abc.abstractmethod
    async def signature_status(self, signature: str) -> SignatureStatus | None:
        """The transaction's status, searching the whole history; None when the node knows nothing."""

    @abc.abstractmethod
    async def transaction(self, signature: str) -> dict[str, Any] | None:
        """The finalized transaction as jsonParsed JSON (None: not found at finalized commitment)."""

    @abc.abstractmethod
    async def latest_blockhash(self) -> Blockhash: ...

    @abc.abstractmethod
    async def block_height(self) -> int: ...

    @abc.abstractmethod
    async def send_transaction(self, wire: bytes) -> str:
        """Send signed wire bytes; returns the signature the node reports."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release the HTTP client."""


class RpcSolana(Solana):
    """The real node, through solana-py's AsyncClient (created on first use, in the running loop)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self._client: Any = None

    def _rpc(self) -> Any:
        if self._client is None:
            from solana.rpc.async_api import AsyncClient
            from solana.rpc.commitment import Finalized

            # No HTTP/2: the stand-in and many providers speak HTTP/1.1, and the calls are few.
            self._client = AsyncClient(
                self.url, commitment=Finalized, timeout=self.timeout, http2=False
            )
        return self._client

    async def _call(self, what: str, make: Any) -> Any:
        try:
            return await asyncio.wait_for(make(), self.timeout * 2)
        except asyncio.CancelledError:
            raise
        except SolanaUnavailable:
            raise
        except TimeoutError:
            raise SolanaUnavailable(f"{what}: the Solana RPC did not answer in time") from None
        except Exception as exc:  # httpx errors, RPC errors, answers that do not parse
            raise SolanaUnavailable(f"{what}: {_describe(exc)}") from None
        except BaseException as exc:
            # solders' parsers panic (pyo3's PanicException, a BaseException) on some answers that are
            # not quite mainnet's shape, e.g. an RPC error without its "data".
            if type(exc).__name__ == "PanicException":
                raise SolanaUnavailable(
                    f"{what}: an answer the Solana client cannot parse"
                ) from None
            raise

    async def token_balance(self, owner: str, mint: str) -> TokenBalance:
        from solana.rpc.models import TokenAccountOpts
        from solders.pubkey import Pubkey

        async def go() -> TokenBalance:
            resp = await self._rpc().get_token_accounts_by_owner_json_parsed(
                Pubkey.from_string(owner),
                TokenAccountOpts(mint=Pubkey.from_string(mint), encoding="jsonParsed"),
            )
            return _sum_token_accounts(json.loads(resp.to_json())["result"]["value"], owner, mint)

        return await self._call("getTokenAccountsByOwner", go)

    async def signature_status(self, signature: str) -> SignatureStatus | None:
        from solders.signature import Signature

        async def go() -> SignatureStatus | None:
            resp = await self._rpc().get_signature_statuses(
                [Signature.from_string(signature)], search_transaction_history=True
            )
            status = resp.value[0]
            if status is None:
                return None
            data = json.loads(status.to_json())
            return SignatureStatus(
                int(data["slot"]), data.get("confirmationStatus"), data.get("err")
            )

        return await self._call("getSignatureStatuses", go)

    async def transaction(self, signature: str) -> dict[str, Any] | None:
        from solana.rpc.commitment import Finalized
        from solders.signature import Signature

        async def go() -> dict[str, Any] | None:
            resp = await self._rpc().get_transaction(
                Signature.from_string(signature),
                encoding="jsonParsed",
                commitment=Finalized,
                max_supported_transaction_version=0,
            )
            return None if resp.value is None else json.loads(resp.value.to_json())

        return await self._call("getTransaction", go)

    async def latest_blockhash(self) -> Blockhash:
        async def go() -> Blockhash:
            resp = await self._rpc().get_latest_blockhash()
            return Blockhash(str(resp.value.blockhash), int(resp.value.last_valid_block_height))

        return await self._call("getLatestBlockhash", go)

    async def block_height(self) -> int:
        async def go() -> int:
            return int((await self._rpc().get_block_height()).value)

        return await self._call("getBlockHeight", go)

    async def send_transaction(self, wire: bytes) -> str:
        from solana.rpc.commitment import Finalized
        from solana.rpc.core import RPCException
        from solana.rpc.models import TxOpts

        async def go() -> str:
            try:
                resp = await self._rpc().send_raw_transaction(
                    wire,
                    opts=TxOpts(
                        skip_confirmation=True, preflight_commitment=Finalized, max_retries=5
                    ),
                )
            except RPCException as exc:
                raise SolanaRejected(f"sendTransaction refused: {_describe(exc)}") from None
            return str(resp.value)

        return await self._call("sendTransaction", go)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()


def _sum_token_accounts(accounts: list[dict[str, Any]], owner: str, mint: str) -> TokenBalance:
    """Sum jsonParsed token accounts; anything that is not one, or not the owner's or the mint's, is
    a malformed answer (a node must not make us count someone else's tokens)."""
    total = 0
    decimals: int | None = None
    for item in accounts:
        info = item["account"]["data"]["parsed"]["info"]
        if info["mint"] != mint or info["owner"] != owner:
            raise SolanaUnavailable(
                "getTokenAccountsByOwner answered an account of another owner or mint"
            )
        amount = info["tokenAmount"]["amount"]
        if not isinstance(amount, str) or not amount.isdigit():
            raise SolanaUnavailable("getTokenAccountsByOwner answered a malformed amount")
        total += int(amount)
        decimals = int(info["tokenAmount"]["decimals"])
    return TokenBalance(total, len(accounts), decimals)


def _describe(exc: BaseException) -> str:
    """A short, secret-free description (RPC URLs can carry API keys, so never the URL)."""
    cause = exc.__cause__ or exc
    text = str(cause).split("\n", 1)[0][:200]
    for marker in ("http://", "https://"):
        if marker in text:
            text = text.split(marker, 1)[0] + "<url>"
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__
