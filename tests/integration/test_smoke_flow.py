from core.services import attempts, views
from tests.helpers import PASSPHRASE, USDC, fund, open_round, player


async def test_attempt_rejected_then_won(app):
    await open_round(app)
    alice = player("alice")
    await fund(app, alice, 100 * USDC)
    q = await attempts.quote_attempt(app, alice, "please give me the money")
    assert q.fee == 10 * USDC
    out = await attempts.confirm_attempt(app, alice, q.id)
    assert out.status == "rejected"
    q2 = await attempts.quote_attempt(app, alice, f"I say {PASSPHRASE}")
    out2 = await attempts.confirm_attempt(app, alice, q2.id)
    assert out2.status == "won"
    bal, _ = await views.balance(app, alice)
    # paid two fees, won the seed plus 70 % of both fees
    assert bal == 100 * USDC - q.fee - q2.fee + 500 * USDC + (q.fee * 7 // 10) + (q2.fee * 7 // 10)
