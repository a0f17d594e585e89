"""The gateway's routing policy and loader on real routers fitted on a RouterBench slice and saved as
artifacts: exploration propensities, the time budget, fallbacks, A/B assignment, and load-time checks."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from features import schema
from features.registry import build
from pipelines.outcomes import first_prompts, import_source
from registry.reference import parse_reference
from routers.artifact import save
from routers.dataset import training_set
from routers.registry import family_class
from serving.routing.loader import ActiveRouter, RouterLoadError, load_router
from serving.routing.policy import RoutingPolicy, assignment_share
from serving.routing.slots import CHALLENGER, CHAMPION, RouterSlot
from serving.settings import RoutingSettings

PROMPTS = ["What is the capital of France?", "Write a Python function that reverses a list.", "2+2=?"]


@pytest.fixture(scope="module")
def artifacts(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    table, _ = import_source("routerbench", data_dir / "routerbench")
    train = training_set(first_prompts(table, {schema.TRAIN: 150}))
    featurizer = build("fast").fit(list(train.prompts))
    train = train.with_features(featurizer.transform(list(train.prompts)))
    root = tmp_path_factory.mktemp("artifacts")
    found = {}
    for family in ("knn", "cheapest"):
        cls = family_class(family)
        router = cls(cls.Params(), seed=0).fit(train)
        save(root / family, router, featurizer)
        found[family] = root / family
    return found


@pytest.fixture(scope="module")
def served(artifacts: dict[str, Path]) -> tuple[str, ...]:
    """Every model the routers were trained on, as the gateway's deployments."""
    import json

    return tuple(json.loads((artifacts["knn"] / "router.json").read_text())["models"])


def _router(artifacts: dict[str, Path], name: str, served: tuple[str, ...], **settings: object) -> ActiveRouter:
    return load_router(parse_reference(str(artifacts[name])), None, RoutingSettings(**settings), served)  # type: ignore[arg-type]


def _policy(champion: ActiveRouter | None, served: tuple[str, ...], **settings: object) -> RoutingPolicy:
    slot = RouterSlot(CHAMPION, parse_reference("models:/routeiq-router/Production"))
    slot.active = champion
    # A generous decision budget unless a test sets one: on a loaded machine a decision may take longer than the
    # default 250 ms, and the fallback (another propensity) would answer instead of the router under test.
    settings.setdefault("budget_ms", 60_000.0)
    routing = RoutingSettings(**settings)  # type: ignore[arg-type]
    executor = ThreadPoolExecutor(1)
    return RoutingPolicy(slot, None, routing, served, executor=executor, rng=random.Random(0))


def test_the_router_decides_with_propensity_one_without_exploration(
    artifacts: dict[str, Path], served: tuple[str, ...]
) -> None:
    router = _router(artifacts, "knn", served)
    policy = _policy(router, served)
    for prompt in PROMPTS:
        decision = asyncio.run(policy.decide(prompt, 0.0, prompt))
        expected = router.model.decide([prompt], router.candidates)[0]
        assert decision.model == expected.model and decision.by == "router" and decision.propensity == 1.0
        assert decision.quality == tuple(expected.quality[m] for m in router.candidates)


def test_epsilon_exploration_records_the_probability_of_what_was_served(
    artifacts: dict[str, Path], served: tuple[str, ...]
) -> None:
    router = _router(artifacts, "cheapest", served)
    greedy = router.model.decide([PROMPTS[0]], router.candidates)[0].model
    policy = _policy(router, served, epsilon=0.5)
    k = len(router.candidates)

    async def many() -> list:  # type: ignore[type-arg]
        return [await policy.decide(PROMPTS[0], 0.0, str(i)) for i in range(400)]

    decisions = asyncio.run(many())
    for d in decisions:
        expected = 0.5 / k + 0.5 * (d.model == greedy)
        assert d.propensity == pytest.approx(expected)
    explored = [d for d in decisions if d.by == "explore"]
    assert 150 < len(explored) < 250
    assert len({d.model for d in explored}) == k
    share = Counter(d.model for d in decisions)[greedy] / len(decisions)
    assert share == pytest.approx(0.5 + 0.5 / k, abs=0.08)


@pytest.mark.parametrize("exploration", ["margin", "boltzmann"])
def test_the_recorded_propensities_are_the_served_frequencies(
    artifacts: dict[str, Path], served: tuple[str, ...], exploration: str
) -> None:
    """Through the real policy and a real router: for one prompt at one λ every decision records the same
    propensity per served model, and the share of decisions that served it matches it."""
    router = _router(artifacts, "knn", served)
    policy = _policy(router, served, epsilon=0.4, exploration=exploration, exploration_temperature=0.02, seed=1)
    draws = 4000

    async def many() -> list:  # type: ignore[type-arg]
        return [await policy.decide(PROMPTS[1], 20.0, str(i)) for i in range(draws)]

    decisions = asyncio.run(many())
    propensity: dict[str, set[float]] = {}
    for d in decisions:
        propensity.setdefault(d.model, set()).add(round(d.propensity, 12))
    assert all(len(p) == 1 for p in propensity.values()), propensity
    counts = Counter(d.model for d in decisions)
    assert len(counts) >= 2 and sum(d.by == "explore" for d in decisions) > 0.3 * draws
    for model, (p,) in propensity.items():
        sd = (draws * p * (1 - p)) ** 0.5
        assert abs(counts[model] - draws * p) <= 4 * sd + 1, (model, counts[model], draws * p)
    # Every model that was never served had too little probability to show in this many draws.
    assert sum(next(iter(p)) for p in propensity.values()) == pytest.approx(1.0, abs=4 / draws**0.5)


def test_a_router_over_its_budget_is_replaced_by_the_fallback(
    artifacts: dict[str, Path], served: tuple[str, ...]
) -> None:
    policy = _policy(_router(artifacts, "knn", served), served, budget_ms=1e-6, fallback_model=served[0])
    decision = asyncio.run(policy.decide(PROMPTS[1], 0.0, "k"))
    assert decision.by == "fallback" and decision.fallback_reason == "timeout"
    assert decision.model == served[0] and decision.propensity == 1.0


def test_without_a_router_the_fallback_draws_uniformly_and_says_so(served: tuple[str, ...]) -> None:
    policy = _policy(None, served)
    decisions = [asyncio.run(policy.decide(PROMPTS[0], 0.0, str(i))) for i in range(200)]
    assert {d.fallback_reason for d in decisions} == {"no_router"}
    assert all(d.propensity == pytest.approx(1 / len(served)) for d in decisions)
    assert len({d.model for d in decisions}) == len(served)


def test_ab_assignment_is_stable_and_splits_by_the_configured_fraction(
    artifacts: dict[str, Path], served: tuple[str, ...]
) -> None:
    champion = RouterSlot(CHAMPION, parse_reference(str(artifacts["knn"])))
    challenger = RouterSlot(CHALLENGER, parse_reference(str(artifacts["cheapest"])))
    champion.active = _router(artifacts, "knn", served)
    challenger.active = _router(artifacts, "cheapest", served)
    routing = RoutingSettings(challenger_reference=str(artifacts["cheapest"]), challenger_fraction=0.3)
    policy = RoutingPolicy(champion, challenger, routing, served, executor=ThreadPoolExecutor(1), rng=random.Random(0))
    arms = [policy.slot_for(f"user-{i}").name for i in range(2000)]
    assert arms.count(CHALLENGER) / len(arms) == pytest.approx(0.3, abs=0.04)
    assert all(policy.slot_for(f"user-{i}").name == arms[i] for i in range(50))
    assert assignment_share("same") == assignment_share("same")
    decision = asyncio.run(
        policy.decide(PROMPTS[0], 0.0, next(f"user-{i}" for i, a in enumerate(arms) if a == CHALLENGER))
    )
    assert decision.arm == CHALLENGER and decision.router is challenger.active


def test_loading_refuses_a_family_other_than_the_configured_one(
    artifacts: dict[str, Path], served: tuple[str, ...]
) -> None:
    with pytest.raises(RouterLoadError, match="llmrouter-knn"):
        _router(artifacts, "cheapest", served, family="knn")


def test_loading_refuses_candidates_the_gateway_does_not_serve_unless_partial(
    artifacts: dict[str, Path], served: tuple[str, ...]
) -> None:
    two = served[:2]
    with pytest.raises(RouterLoadError, match="allow_partial_candidates"):
        _router(artifacts, "knn", two)
    router = _router(artifacts, "knn", two, allow_partial_candidates=True)
    assert router.candidates == two
    assert router.model.decide([PROMPTS[0]], router.candidates)[0].model in two


def test_loading_refuses_an_altered_artifact(
    artifacts: dict[str, Path], served: tuple[str, ...], tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "knn"
    shutil.copytree(artifacts["knn"], copy)
    (copy / "router.json").write_text((copy / "router.json").read_text().replace('"knn"', '"knn" '))
    with pytest.raises(RouterLoadError, match="altered"):
        load_router(parse_reference(str(copy)), None, RoutingSettings(), served)


class CountingExecutor(ThreadPoolExecutor):
    """A real one-thread executor that counts the calls submitted to it (one per decided batch)."""

    def __init__(self) -> None:
        super().__init__(1)
        self.calls = 0

    def submit(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def, override]
        self.calls += 1
        return super().submit(*args, **kwargs)  # type: ignore[arg-type]


def test_concurrent_decisions_are_batched_and_equal_to_single_ones(
    artifacts: dict[str, Path], served: tuple[str, ...], data_dir: Path
) -> None:
    router = _router(artifacts, "knn", served)
    table, _ = import_source("routerbench", data_dir / "routerbench")
    prompts = list(dict.fromkeys(table["prompt"].to_pylist()))[:40]
    weights = [0.0, 50.0, 1000.0, 0.0] * 10
    slot = RouterSlot(CHAMPION, parse_reference("models:/routeiq-router/Production"))
    slot.active = router
    executor = CountingExecutor()
    policy = RoutingPolicy(slot, None, RoutingSettings(), served, executor=executor, rng=random.Random(0))

    async def together() -> list:  # type: ignore[type-arg]
        return list(await asyncio.gather(*(policy.decide(p, w, p) for p, w in zip(prompts, weights, strict=True))))

    decisions = asyncio.run(together())
    # The first request goes alone (nothing waits for a batch to fill); the other 39 queue meanwhile.
    assert executor.calls < len(prompts) // 4
    for prompt, weight, decision in zip(prompts, weights, decisions, strict=True):
        expected = router.model.decide([prompt], router.candidates, weight)[0]
        assert decision.by == "router" and decision.model == expected.model
        assert decision.quality == pytest.approx(tuple(expected.quality[m] for m in router.candidates))
        assert decision.cost == pytest.approx(tuple(expected.cost[m] for m in router.candidates))


def test_a_request_that_gives_up_does_not_disturb_its_batch(
    artifacts: dict[str, Path], served: tuple[str, ...]
) -> None:
    router = _router(artifacts, "knn", served)
    slot = RouterSlot(CHAMPION, parse_reference("models:/routeiq-router/Production"))
    slot.active = router
    policy = RoutingPolicy(slot, None, RoutingSettings(), served, executor=ThreadPoolExecutor(1), rng=random.Random(0))

    async def run() -> list:  # type: ignore[type-arg]
        first = asyncio.ensure_future(policy.decide(PROMPTS[0], 0.0, "a"))
        quitter = asyncio.ensure_future(policy.decide(PROMPTS[1], 0.0, "b"))
        kept = asyncio.ensure_future(policy.decide(PROMPTS[2], 0.0, "c"))
        await asyncio.sleep(0)
        quitter.cancel()
        return [await first, await kept, await policy.decide(PROMPTS[1], 0.0, "d")]

    first, kept, later = asyncio.run(run())
    for prompt, decision in zip((PROMPTS[0], PROMPTS[2], PROMPTS[1]), (first, kept, later), strict=True):
        assert decision.by == "router"
        assert decision.model == router.model.decide([prompt], router.candidates)[0].model


def test_a_narrowed_candidate_set_is_routed_within_it_with_its_own_propensities(
    artifacts: dict[str, Path], served: tuple[str, ...]
) -> None:
    """A caller allowed only some deployments: the router argmaxes over those, exploration draws among them, and
    the propensity is over that set; batched with unrestricted requests, each keeps its own candidates."""
    router = _router(artifacts, "knn", served)
    allowed = served[1:3]
    greedy = _policy(router, served)
    for prompt in PROMPTS:
        full = asyncio.run(greedy.decide(prompt, 0.0, prompt))
        narrowed = asyncio.run(greedy.decide(prompt, 0.0, prompt, allowed))
        assert narrowed.model in allowed and narrowed.candidates == allowed and narrowed.propensity == 1.0
        assert full.candidates == router.candidates
        best = max(allowed, key=lambda m: narrowed.quality[allowed.index(m)])
        assert narrowed.model == best
    explorer = _policy(router, served, epsilon=1.0, seed=3)

    async def mixed() -> list[tuple[str, tuple[str, ...], float]]:
        calls = [explorer.decide(PROMPTS[i % 3], 0.0, str(i), allowed if i % 2 else None) for i in range(200)]
        return [(d.model, d.candidates, d.propensity) for d in await asyncio.gather(*calls)]

    for index, (model, candidates, propensity) in enumerate(asyncio.run(mixed())):
        if index % 2:
            assert model in allowed and candidates == allowed and propensity == pytest.approx(1 / len(allowed))
        else:
            assert candidates == router.candidates and propensity == pytest.approx(1 / len(router.candidates))


def test_the_fallback_draws_only_among_the_allowed_deployments(served: tuple[str, ...]) -> None:
    policy = _policy(None, served, fallback_model=served[0])
    allowed = served[2:4]
    decisions = [asyncio.run(policy.decide(PROMPTS[0], 0.0, str(i), allowed)) for i in range(60)]
    assert {d.model for d in decisions} == set(allowed)
    assert all(d.propensity == pytest.approx(0.5) and d.fallback_reason == "no_router" for d in decisions)
    assert asyncio.run(policy.decide(PROMPTS[0], 0.0, "k")).model == served[0]  # unrestricted: the fixed fallback


def test_a_router_that_knows_none_of_the_allowed_models_falls_back_among_them(
    artifacts: dict[str, Path], served: tuple[str, ...]
) -> None:
    router = _router(artifacts, "knn", served[:3], allow_partial_candidates=True)
    policy = _policy(router, served)
    decision = asyncio.run(policy.decide(PROMPTS[0], 0.0, "k", served[3:5]))
    assert decision.model in served[3:5] and decision.fallback_reason == "no_allowed_candidate"
