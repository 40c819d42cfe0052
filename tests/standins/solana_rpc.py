"""A local stand-in for a Solana mainnet JSON-RPC node, so solana-py's real AsyncClient (and solders'
real response parsers) run against it.

An aiohttp server on 127.0.0.1 answering, in mainnet's shapes: ``getTokenAccountsByOwner``
(jsonParsed, mint filter), ``getTransaction`` (jsonParsed, with inner instructions and token
balances; ``null`` below the asked commitment), ``getSignatureStatuses``, ``getLatestBlockhash``,
``getBlockHeight`` and ``sendTransaction``. A sent transaction is really decoded, its signatures
verified, its blockhash checked against the block height, and its SPL ``TransferChecked`` and
associated-account instructions executed against the stand-in's token accounts; it then "lands"
(visible by status and getTransaction like any other) unless told to be dropped. Like a real
cluster, one signature lands at most once, however often it is sent.

Faults are injected per request: HTTP 500, a hang (the client's timeout), a body that is not JSON,
JSON that is no RPC answer, or a JSON-RPC error; optionally only for one method.

Tests build mainnet-like transfers with ``add_transfer`` (top-level or inside another program's
instruction, ``transfer`` or ``transferChecked``, any status and error) and read what was sent in
``sent`` (every sendTransaction, repeats included) and ``landed``.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from core.base58 import encode_base58
from tests.standins.local import serve_local

TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
ATA_PROGRAM = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"
SYSTEM_PROGRAM = "11111111111111111111111111111111"
COMPUTE_BUDGET = "ComputeBudget111111111111111111111111111111"
ROUTER_PROGRAM = (
    "JUP6LkbZbjS1jKKwapdHNy74zcZ3tLUZoi5QNyVTaV4"  # an aggregator: transfers inside its instruction
)
ORDER = {"processed": 0, "confirmed": 1, "finalized": 2}


def random_address() -> str:
    return encode_base58(secrets.token_bytes(32))


def random_signature() -> str:
    return encode_base58(secrets.token_bytes(64))


@dataclass
class TokenAccount:
    pubkey: str
    owner: str
    mint: str
    amount: int
    decimals: int


@dataclass(frozen=True)
class Transfer:
    """One SPL token transfer inside a transaction, as the test wants it to appear on chain."""

    source: str  # token account
    destination: str  # token account
    authority: str  # the source's owner, who signs
    mint: str
    amount: int
    decimals: int = 6
    checked: bool = True  # transferChecked (names the mint) or the older transfer (does not)
    source_owner: str | None = None  # in the token balances; default: the authority
    destination_owner: str | None = None


@dataclass
class StoredTx:
    signature: str
    slot: int
    block_time: int
    confirmation: str  # processed | confirmed | finalized
    err: Any
    result: dict[str, Any]  # getTransaction's jsonParsed result
    finalize_after: int = 0  # status queries still answered below finalized
    dropped: bool = False  # sent, never landed: nothing knows it


@dataclass
class Fault:
    kind: str  # "500", "hang", "garbage", "malformed", "rpc_error", "odd_error"
    method: str | None = None


@dataclass
class SolanaStandIn:
    port: int = 0
    block_height: int = 250_000_000
    slot: int = 300_000_000
    token_accounts: list[TokenAccount] = field(default_factory=list)
    transactions: dict[str, StoredTx] = field(default_factory=dict)
    blockhashes: dict[str, int] = field(default_factory=dict)  # -> last valid block height
    faults: list[Fault] = field(default_factory=list)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # signatures of every sendTransaction received
    finality_lag: int = (
        0  # status queries a landed transaction stays "confirmed" before "finalized"
    )
    drop_sends: int = 0  # the next n sent transactions are accepted but never land
    _runner: web.AppRunner | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> SolanaStandIn:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)  # providers put their key in the path
        self._runner, self.port = await serve_local(app)
        return self

    async def stop(self) -> None:
        self._release.set()  # hanging handlers finish, so the shutdown does not wait for them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- the chain's state, set by tests ---

    def add_token_account(
        self, owner: str, mint: str, amount: int, *, decimals: int = 8, pubkey: str | None = None
    ) -> str:
        account = TokenAccount(pubkey or random_address(), owner, mint, amount, decimals)
        self.token_accounts.append(account)
        return account.pubkey

    def set_balance(self, pubkey: str, amount: int) -> None:
        self.account(pubkey).amount = amount

    def account(self, pubkey: str) -> TokenAccount:
        return next(a for a in self.token_accounts if a.pubkey == pubkey)

    def balance_of(self, owner: str, mint: str) -> int:
        return sum(a.amount for a in self.token_accounts if a.owner == owner and a.mint == mint)

    def fail(self, kind: str, *, method: str | None = None, times: int = 1) -> None:
        self.faults += [Fault(kind, method) for _ in range(times)]

    def advance(self, blocks: int) -> None:
        self.block_height += blocks
        self.slot += blocks

    @property
    def landed(self) -> list[str]:
        """Distinct signatures sent that are on chain (a signature lands at most once)."""
        return [
            s
            for s in dict.fromkeys(self.sent)
            if s in self.transactions and not self.transactions[s].dropped
        ]

    def sends_of(self, signature: str) -> int:
        return Counter(self.sent)[signature]

    def add_transfer(
        self,
        *transfers: Transfer,
        signature: str | None = None,
        inner: bool = False,
        confirmation: str = "finalized",
        err: Any = None,
        fee_payer: str | None = None,
    ) -> str:
        """A transaction of ``transfers`` as mainnet shows it; returns its signature."""
        signature = signature or random_signature()
        self.slot += 1
        result = _transaction_json(
            signature,
            self.slot,
            list(transfers),
            inner=inner,
            err=err,
            fee_payer=fee_payer or transfers[0].authority,
        )
        self.transactions[signature] = StoredTx(
            signature, self.slot, 1_767_225_600 + self.slot % 10_000_000, confirmation, err, result
        )
        return signature

    # --- the JSON-RPC endpoint ---

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        method, params, rid = body.get("method"), body.get("params") or [], body.get("id")
        self.calls.append((method, params))
        fault = next((f for f in self.faults if f.method in (None, method)), None)
        if fault is not None:
            self.faults.remove(fault)
            if fault.kind == "500":
                return web.Response(status=500, text="Internal Server Error")
            if fault.kind == "hang":
                await self._release.wait()
                return web.Response(status=503)
            if fault.kind == "garbage":
                return web.Response(
                    status=200, text="<html>gateway</html>", content_type="application/json"
                )
            if fault.kind == "malformed":
                return web.json_response(
                    {"jsonrpc": "2.0", "id": rid, "result": {"unexpected": [1, 2, 3]}}
                )
            if fault.kind == "rpc_error":
                return _error(rid, -32005, "Node is behind by 1024 slots", {"numSlotsBehind": 1024})
            if fault.kind == "odd_error":  # an error in a shape mainnet does not use (no "data")
                return _error(rid, -32005, "Node is behind")
        handler = getattr(self, f"_rpc_{method}", None)
        if handler is None:
            return _error(rid, -32601, "Method not found")
        try:
            return web.json_response({"jsonrpc": "2.0", "id": rid, "result": handler(params)})
        except _RpcError as exc:
            return _error(rid, exc.code, exc.message, exc.data)

    def _context(self) -> dict[str, Any]:
        return {"apiVersion": "2.1.21", "slot": self.slot}

    def _rpc_getTokenAccountsByOwner(self, params: list[Any]) -> dict[str, Any]:
        owner, filt = params[0], params[1]
        config = params[2] if len(params) > 2 else {}
        if config.get("encoding") != "jsonParsed":
            raise _RpcError(-32602, "Invalid params: this stand-in answers jsonParsed only")
        _check_address(owner)
        mint = filt.get("mint")
        if mint is None:
            raise _RpcError(-32602, "Invalid params: a mint filter is expected")
        _check_address(mint)
        value = [
            {
                "account": {
                    "data": {
                        "parsed": {
                            "info": {
                                "isNative": False,
                                "mint": a.mint,
                                "owner": a.owner,
                                "state": "initialized",
                                "tokenAmount": _ui_amount(a.amount, a.decimals),
                            },
                            "type": "account",
                        },
                        "program": "spl-token",
                        "space": 165,
                    },
                    "executable": False,
                    "lamports": 2_039_280,
                    "owner": TOKEN_PROGRAM,
                    "rentEpoch": 18_446_744_073_709_551_615,
                    "space": 165,
                },
                "pubkey": a.pubkey,
            }
            for a in self.token_accounts
            if a.owner == owner and a.mint == mint
        ]
        return {"context": self._context(), "value": value}

    def _rpc_getSignatureStatuses(self, params: list[Any]) -> dict[str, Any]:
        out = []
        for sig in params[0]:
            _check_signature(sig)
            tx = self.transactions.get(sig)
            if tx is None or tx.dropped:
                out.append(None)
                continue
            if tx.finalize_after > 0:
                tx.finalize_after -= 1
            elif tx.confirmation != "finalized" and tx.signature in self.sent:
                tx.confirmation = "finalized"
            out.append(
                {
                    "confirmationStatus": tx.confirmation,
                    "confirmations": None if tx.confirmation == "finalized" else 12,
                    "err": tx.err,
                    "slot": tx.slot,
                    "status": {"Ok": None} if tx.err is None else {"Err": tx.err},
                }
            )
        return {"context": self._context(), "value": out}

    def _rpc_getTransaction(self, params: list[Any]) -> dict[str, Any] | None:
        sig = params[0]
        _check_signature(sig)
        config = params[1] if len(params) > 1 else {}
        if config.get("encoding") != "jsonParsed":
            raise _RpcError(-32602, "Invalid params: this stand-in answers jsonParsed only")
        if config.get("commitment", "finalized") == "processed":
            raise _RpcError(-32602, "Method does not support commitment below `confirmed`")
        tx = self.transactions.get(sig)
        if (
            tx is None
            or tx.dropped
            or ORDER[tx.confirmation] < ORDER[config.get("commitment", "finalized")]
        ):
            return None
        if (
            config.get("maxSupportedTransactionVersion") is None
            and tx.result.get("version") != "legacy"
        ):
            raise _RpcError(
                -32015,
                "Transaction version (0) is not supported by the requesting client. "
                "Please try the request again with the following configuration parameter: "
                '"maxSupportedTransactionVersion": 0',
            )
        return tx.result

    def _rpc_getLatestBlockhash(self, params: list[Any]) -> dict[str, Any]:
        blockhash = random_address()
        self.blockhashes[blockhash] = self.block_height + 150
        return {
            "context": self._context(),
            "value": {"blockhash": blockhash, "lastValidBlockHeight": self.blockhashes[blockhash]},
        }

    def _rpc_getBlockHeight(self, params: list[Any]) -> int:
        return self.block_height

    def _rpc_sendTransaction(self, params: list[Any]) -> str:
        from solders.transaction import VersionedTransaction

        config = params[1] if len(params) > 1 else {}
        if config.get("encoding") != "base64":
            raise _RpcError(-32602, "Invalid params: this stand-in takes base64 transactions")
        try:
            tx = VersionedTransaction.from_bytes(base64.b64decode(params[0]))
        except Exception:
            raise _RpcError(
                -32602,
                "invalid transaction: Transaction failed to sanitize accounts offsets correctly",
            ) from None
        signature = str(tx.signatures[0])
        self.sent.append(signature)
        if not all(tx.verify_with_results()):
            raise _RpcError(-32003, "Transaction signature verification failure")
        known = self.transactions.get(signature)
        if known is not None and not known.dropped:
            if config.get("skipPreflight"):
                return signature
            raise _preflight("AlreadyProcessed", "This transaction has already been processed")
        blockhash = str(tx.message.recent_blockhash)
        if self.blockhashes.get(blockhash, -1) < self.block_height:
            raise _preflight("BlockhashNotFound", "Blockhash not found")
        transfers = self._execute(tx)
        self.slot += 1
        stored = StoredTx(
            signature,
            self.slot,
            1_767_225_600 + self.slot % 10_000_000,
            "confirmed",
            None,
            _transaction_json(
                signature,
                self.slot,
                transfers,
                inner=False,
                err=None,
                fee_payer=str(tx.message.account_keys[0]),
            ),
            finalize_after=self.finality_lag,
        )
        if self.drop_sends > 0:
            self.drop_sends -= 1
            self._undo(transfers)
            stored.dropped = True
        self.transactions[signature] = stored
        return signature

    def _execute(self, tx: Any) -> list[Transfer]:
        """Run the SPL instructions; any failure refuses the whole transaction (preflight)."""
        msg = tx.message
        keys = [str(k) for k in msg.account_keys]
        signers = set(keys[: msg.header.num_required_signatures])
        planned: list[Transfer] = []
        created: list[TokenAccount] = []
        for index, ix in enumerate(msg.instructions):
            program = keys[ix.program_id_index]
            accounts = [keys[i] for i in ix.accounts]
            data = bytes(ix.data)
            if program == ATA_PROGRAM and data in (b"", b"\x01"):
                payer, ata, owner, mint = accounts[:4]
                exists = any(a.pubkey == ata for a in [*self.token_accounts, *created])
                if exists and data == b"":
                    raise _instruction_error(index, {"Custom": 0})
                if not exists:
                    created.append(TokenAccount(ata, owner, mint, 0, 6))
            elif program == TOKEN_PROGRAM and data[:1] == b"\x0c" and len(data) == 10:
                source, mint, dest, authority = accounts[:4]
                amount, decimals = struct.unpack("<QB", data[1:])
                pool = [*self.token_accounts, *created]
                src = next((a for a in pool if a.pubkey == source), None)
                dst = next((a for a in pool if a.pubkey == dest), None)
                problem: Any = None
                if authority not in signers:
                    problem = "MissingRequiredSignature"
                elif src is None or dst is None:
                    problem = "InvalidAccountData"
                elif src.owner != authority or src.mint != mint or dst.mint != mint:
                    problem = {"Custom": 4}  # owner does not match / mint mismatch
                elif decimals != src.decimals:
                    problem = {"Custom": 18}  # mint decimals mismatch
                elif src.amount < amount + sum(t.amount for t in planned if t.source == source):
                    problem = {"Custom": 1}  # insufficient funds
                if problem is not None:
                    raise _instruction_error(index, problem)
                planned.append(
                    Transfer(
                        source, dest, authority, mint, amount, decimals, True, src.owner, dst.owner
                    )
                )
            elif program == COMPUTE_BUDGET:
                continue
            else:
                raise _instruction_error(index, "UnsupportedProgramId")
        self.token_accounts.extend(created)
        for t in planned:
            self.account(t.source).amount -= t.amount
            self.account(t.destination).amount += t.amount
        return planned

    def _undo(self, transfers: list[Transfer]) -> None:
        for t in transfers:
            self.account(t.source).amount += t.amount
            self.account(t.destination).amount -= t.amount


class _RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


def _preflight(err: Any, message: str) -> _RpcError:
    return _RpcError(
        -32002,
        f"Transaction simulation failed: {message}",
        {
            "accounts": None,
            "err": err,
            "innerInstructions": None,
            "logs": [],
            "replacementBlockhash": None,
            "returnData": None,
            "unitsConsumed": 0,
        },
    )


_TEXT = {
    "MissingRequiredSignature": "missing required signature for instruction",
    "InvalidAccountData": "invalid account data for instruction",
    "UnsupportedProgramId": "Unsupported program id",
}


def _instruction_error(index: int, problem: Any) -> _RpcError:
    """A failed instruction as mainnet's preflight reports it (``custom program error: 0x1``...)."""
    words = (
        f"custom program error: {problem['Custom']:#x}"
        if isinstance(problem, dict)
        else _TEXT[problem]
    )
    return _preflight(
        {"InstructionError": [index, problem]}, f"Error processing Instruction {index}: {words}"
    )


def _error(rid: Any, code: int, message: str, data: Any = None) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return web.json_response({"jsonrpc": "2.0", "id": rid, "error": error})


def _check_address(text: Any) -> None:
    from core.base58 import decode_base58

    try:
        ok = isinstance(text, str) and len(decode_base58(text)) == 32
    except ValueError:
        ok = False
    if not ok:
        raise _RpcError(-32602, "Invalid param: Invalid")


def _check_signature(text: Any) -> None:
    from core.base58 import decode_base58

    try:
        ok = isinstance(text, str) and len(decode_base58(text)) == 64
    except ValueError:
        ok = False
    if not ok:
        raise _RpcError(-32602, "Invalid param: Invalid")


def _ui_amount(amount: int, decimals: int) -> dict[str, Any]:
    whole, frac = divmod(amount, 10**decimals)
    text = f"{whole}.{frac:0{decimals}d}".rstrip("0").rstrip(".") if decimals else str(whole)
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": amount / 10**decimals,
        "uiAmountString": text,
    }


def _transaction_json(
    signature: str, slot: int, transfers: list[Transfer], *, inner: bool, err: Any, fee_payer: str
) -> dict[str, Any]:
    """getTransaction's jsonParsed result for a transaction made of ``transfers``."""
    keys: list[str] = []

    def key(address: str) -> int:
        if address not in keys:
            keys.append(address)
        return keys.index(address)

    key(fee_payer)
    parsed = []
    balances: dict[int, tuple[str, str, int]] = {}  # account index -> (mint, owner, decimals)
    for t in transfers:
        for account, owner in (
            (t.source, t.source_owner or t.authority),
            (t.destination, t.destination_owner),
        ):
            idx = key(account)
            if owner is not None:
                balances[idx] = (t.mint, owner, t.decimals)
        key(t.authority)
        if t.checked:
            key(t.mint)
            info = {
                "authority": t.authority,
                "destination": t.destination,
                "mint": t.mint,
                "source": t.source,
                "tokenAmount": _ui_amount(t.amount, t.decimals),
            }
            kind = "transferChecked"
        else:
            info = {
                "amount": str(t.amount),
                "authority": t.authority,
                "destination": t.destination,
                "source": t.source,
            }
            kind = "transfer"
        parsed.append(
            {
                "parsed": {"info": info, "type": kind},
                "program": "spl-token",
                "programId": TOKEN_PROGRAM,
                "stackHeight": 2 if inner else None,
            }
        )
    key(TOKEN_PROGRAM)
    instructions: list[dict[str, Any]] = [
        {"accounts": [], "data": "3DdGGhkhJbjm", "programId": COMPUTE_BUDGET, "stackHeight": None}
    ]
    inner_instructions: list[dict[str, Any]] = []
    if inner:
        key(ROUTER_PROGRAM)
        instructions.append(
            {
                "accounts": list(keys[:6]),
                "data": "PrpFmsY4d26dKbdKMAXs4nHRBERXuXzT",
                "programId": ROUTER_PROGRAM,
                "stackHeight": None,
            }
        )
        inner_instructions.append({"index": 1, "instructions": parsed})
    else:
        instructions += parsed
    key(COMPUTE_BUDGET)
    token_balances = [
        {
            "accountIndex": idx,
            "mint": mint,
            "owner": owner,
            "programId": TOKEN_PROGRAM,
            "uiTokenAmount": _ui_amount(1_000_000_000, decimals),
        }
        for idx, (mint, owner, decimals) in sorted(balances.items())
    ]
    return {
        "blockTime": 1_767_225_600 + slot % 10_000_000,
        "meta": {
            "computeUnitsConsumed": 31_542,
            "err": err,
            "fee": 5_000,
            "innerInstructions": inner_instructions,
            "loadedAddresses": {"readonly": [], "writable": []},
            "logMessages": [
                f"Program {TOKEN_PROGRAM} invoke [{2 if inner else 1}]",
                f"Program {TOKEN_PROGRAM} success",
            ],
            "postBalances": [1_000_000 for _ in keys],
            "postTokenBalances": token_balances,
            "preBalances": [1_005_000 for _ in keys],
            "preTokenBalances": token_balances,
            "rewards": [],
            "status": {"Ok": None} if err is None else {"Err": err},
        },
        "slot": slot,
        "transaction": {
            "message": {
                "accountKeys": [
                    {"pubkey": k, "signer": i == 0, "source": "transaction", "writable": i < 3}
                    for i, k in enumerate(keys)
                ],
                "addressTableLookups": [],
                "instructions": instructions,
                "recentBlockhash": random_address(),
            },
            "signatures": [signature],
        },
        "version": 0,
    }
