"""The per-request routing policy: pick the arm, ask its router within the time budget, explore with ε
(`routers.exploration`: uniform, margin or Boltzmann draws), fall back when there is no router or it is slow or
failing. Records the exact propensity of every choice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from routers.decision import utility
from routers.exploration import draw, exploration_distribution
from routers.routing_model import RoutedDecision
from serving.routing.batcher import DecisionBatcher
from serving.routing.cascade import CascadeCheck, CascadePlan, check, plan_for
from serving.routing.loader import ActiveRouter
from serving.routing.slots import RouterSlot
from serving.settings import RoutingSettings
from serving.telemetry import attributes

log = logging.getLogger("routeiq.gateway.routing")

BY_ROUTER = attributes.DECISION_ROUTER
BY_EXPLORATION = attributes.DECISION_EXPLORE
BY_FALLBACK = attributes.DECISION_FALLBACK
BY_NAME = attributes.DECISION_EXPLICIT
BY_CASCADE = attributes.DECISION_CASCADE

NO_ROUTER = "no_router"
TIMEOUT = "timeout"
ROUTER_ERROR = "error"
NOT_ALLOWED = "no_allowed_candidate"
"""Why the fallback answered (`NOT_ALLOWED`: the caller may use none of the router's candidates)."""


@dataclass(frozen=True)
class Decision:
    """The chosen deployment, why, with what probability, and what the router predicted."""

    model: str
    by: str
    propensity: float
    cost_weight: float
    arm: str | None = None
    router: ActiveRouter | None = None
    candidates: tuple[str, ...] = ()
    quality: tuple[float, ...] = ()
    cost: tuple[float, ...] = ()
    fallback_reason: str | None = None
    cascade: CascadePlan | None = None
    """Set when the request runs the cascade: `model` is its first model, asked before the answer is checked."""
    cascade_skipped: bool = False
    """A stream a cascade version routed on the prompt alone (the cascade needs the whole first answer)."""


def explicit(model: str) -> Decision:
    """A request that named its deployment: no routing, propensity 1."""
    return Decision(model=model, by=BY_NAME, propensity=1.0, cost_weight=0.0)


def assignment_share(key: str) -> float:
    """A stable draw in [0, 1) from `key`: the same key always lands in the same A/B arm."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64


class RoutingPolicy:
    """Decides for the virtual model; state (rng, the decision batcher) lives on the app, not in the module."""

    def __init__(
        self,
        champion: RouterSlot,
        challenger: RouterSlot | None,
        routing: RoutingSettings,
        served: Sequence[str],
        *,
        executor: Executor,
        rng: random.Random,
    ) -> None:
        self.champion = champion
        self.challenger = challenger
        self.routing = routing
        self.served = tuple(served)
        self._batcher = DecisionBatcher(executor)
        self._executor = executor
        self._rng = rng

    def slot_for(self, assignment_key: str) -> RouterSlot:
        """The challenger for its share of keys (while it has a router loaded), else the champion."""
        challenger = self.challenger
        if challenger is None or challenger.active is None:
            return self.champion
        if assignment_share(assignment_key) < self.routing.challenger_fraction:
            return challenger
        return self.champion

    def permitted(self, allowed: Callable[[str], bool] | None) -> tuple[str, ...]:
        """The served deployments `allowed` admits (all of them when it is None), in config order."""
        return self.served if allowed is None else tuple(m for m in self.served if allowed(m))

    async def decide(
        self,
        prompt: str,
        cost_weight: float,
        assignment_key: str,
        served: tuple[str, ...] | None = None,
        *,
        stream: bool = False,
    ) -> Decision:
        """The deployment for `prompt`, chosen among `served` (the deployments this caller may use; default all,
        never empty): the router's candidates are narrowed to it, and so are exploration and the fallback. With the
        cascade mode on and a cascade version serving, a request that is not `stream`ed gets the cascade's first
        model (no exploration: the cascade's own check decides the second call)."""
        served = served or self.served
        slot = self.slot_for(assignment_key)
        arm = slot.name if self.challenger is not None else None
        router = slot.active
        if router is None:
            return self._fallback(NO_ROUTER, cost_weight, arm, served)
        candidates = router.candidates if served is self.served else tuple(m for m in router.candidates if m in served)
        if not candidates:
            return self._fallback(NOT_ALLOWED, cost_weight, arm, served, router)
        budget = self.routing.budget_ms / 1000.0
        began = time.perf_counter()
        call = self._batcher.decide(router, prompt, cost_weight, candidates)
        try:
            routed = await asyncio.wait_for(call, budget)
        except TimeoutError:
            return self._fallback(TIMEOUT, cost_weight, arm, served, router)
        except Exception:
            log.exception("router version %s failed to decide; answering with the fallback", router.label)
            return self._fallback(ROUTER_ERROR, cost_weight, arm, served, router)
        if time.perf_counter() - began > budget:
            # Delivered together with the timer that should have cut it off: late all the same.
            return self._fallback(TIMEOUT, cost_weight, arm, served, router)
        return self._routed(routed, router, candidates, cost_weight, arm=arm, stream=stream)

    def _routed(
        self,
        routed: RoutedDecision,
        router: ActiveRouter,
        candidates: tuple[str, ...],
        cost_weight: float,
        *,
        arm: str | None,
        stream: bool,
    ) -> Decision:
        """The router's choice as the cascade's first model when the cascade runs (no exploration); else the router's
        choice, or an exploratory draw."""
        plan = plan_for(router, candidates, self.routing.cascade, routed.model)
        if plan is not None and not stream:
            # The cascade's own check decides the second call: the router's choice, never an exploratory draw.
            decision = self._explore(routed, router, candidates, cost_weight, arm=arm, epsilon=0.0)
            return dataclasses.replace(decision, by=BY_CASCADE, cascade=plan)
        decision = self._explore(routed, router, candidates, cost_weight, arm=arm, epsilon=self.routing.epsilon)
        return decision if plan is None else dataclasses.replace(decision, cascade_skipped=True)

    async def check(self, plan: CascadePlan, prompt: str, answer: str, model: str, cost_weight: float) -> CascadeCheck:
        """The cascade's verdict on `model`'s first `answer`, computed in the router executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, check, plan, prompt, answer, model, cost_weight)

    def _explore(
        self,
        routed: RoutedDecision,
        router: ActiveRouter,
        candidates: tuple[str, ...],
        cost_weight: float,
        *,
        arm: str | None,
        epsilon: float,
    ) -> Decision:
        """The router's choice, or with probability `epsilon` a draw from the exploration distribution."""
        routing = self.routing
        greedy = candidates.index(routed.model)
        chosen, by, propensity = greedy, BY_ROUTER, 1.0
        if epsilon > 0:
            utilities = utility(
                np.array([[routed.quality[m] for m in candidates]]),
                np.array([[routed.cost[m] for m in candidates]]),
                cost_weight,
            )[0]
            explore = exploration_distribution(
                utilities,
                greedy,
                routing.exploration,
                margin=routing.exploration_margin,
                temperature=routing.exploration_temperature,
            )
            if self._rng.random() < epsilon:
                chosen, by = draw(explore, self._rng), BY_EXPLORATION
            # Exact: either branch may serve the chosen candidate.
            propensity = float(epsilon * explore[chosen] + (1.0 - epsilon) * (chosen == greedy))
        return Decision(
            model=candidates[chosen],
            by=by,
            propensity=propensity,
            cost_weight=cost_weight,
            arm=arm,
            router=router,
            candidates=candidates,
            quality=tuple(routed.quality[m] for m in candidates),
            cost=tuple(routed.cost[m] for m in candidates),
        )

    def _fallback(
        self,
        reason: str,
        cost_weight: float,
        arm: str | None,
        served: tuple[str, ...],
        router: ActiveRouter | None = None,
    ) -> Decision:
        fixed = self.routing.fallback_model
        if fixed and fixed in served:
            model, propensity = fixed, 1.0
        else:
            model, propensity = self._rng.choice(served), 1.0 / len(served)
        return Decision(
            model=model,
            by=BY_FALLBACK,
            propensity=propensity,
            cost_weight=cost_weight,
            arm=arm,
            router=router,
            fallback_reason=reason,
        )
