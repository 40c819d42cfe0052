import random

from core.memory.store import similar_attacks, store_embedding
from core.services import attempts
from tests.helpers import USDC, fund, open_round, player


def unit(rng: random.Random) -> list[float]:
    v = [rng.gauss(0, 1) for _ in range(384)]
    norm = sum(x * x for x in v) ** 0.5
    return [x / norm for x in v]


async def test_nearest_attacks_by_cosine_with_and_without_the_index(app):
    bounty_id = await open_round(app)
    a = player("a")
    await fund(app, a, 1_000 * USDC)
    rng = random.Random(3)
    vectors = {}
    for i in range(30):
        out = await attempts.confirm_attempt(app, a, (await attempts.quote_attempt(app, a, f"attack {i}")).id)
        vectors[out.attempt_id] = unit(rng)
    async with app.engine.begin() as conn:
        for attempt_id, v in vectors.items():
            await store_embedding(conn, attempt_id, bounty_id, v)
    target_id, target = next(iter(vectors.items()))
    query = [x + rng.gauss(0, 0.001) for x in target]
    async with app.engine.begin() as conn:
        approx = await similar_attacks(conn, query, k=5)
    async with app.engine.begin() as conn:
        exact = await similar_attacks(conn, query, k=5, exact=True)
    assert approx[0].attempt_id == target_id and approx[0].distance < 0.01
    assert [s.attempt_id for s in approx] == [s.attempt_id for s in exact]
    assert all(x.distance <= y.distance for x, y in zip(exact, exact[1:], strict=False))
