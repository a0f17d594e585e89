"""The gateway's own settings: the `routeiq_settings` section of the config, with defaults for every key.

A frozen pydantic model; reading the YAML file and LiteLLM's sections is `serving.config`'s job.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from registry import names
from routers.exploration import ExplorationPolicy
from serving.access.keys import Role
from serving.access.settings import AccessSettings
from serving.policy.rules import PolicySettings
from serving.request_fields import CHAT_FIELDS, EMBEDDINGS_FIELDS, EXTENSION_FIELD, UPSTREAM_CHOICE
from serving.resilience.settings import FailoverSettings, LimitSettings
from serving.security.settings import SecuritySettings
from serving.telemetry.settings import TelemetrySettings

DEFAULT_REFERENCE = f"models:/{names.REGISTERED_MODEL}/{names.PRODUCTION_STAGE}"
"""The registry reference the gateway watches unless told otherwise: the Production stage."""
DEFAULT_RATERS: Final = (Role.ADMIN, Role.OPERATOR)
"""Roles that may rate responses other callers received, unless `routeiq_settings.feedback.raters` says otherwise
(the label stage's `loop.feedback_raters` defaults to the same)."""

_FROZEN = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)
PARAM_NAME = re.compile(r"[a-z_][a-z0-9_]{0,63}")


class SigningSettings(BaseModel):
    """Verification of router artifacts: `scheme` hmac-sha256 (key = shared secret) or ed25519 (key = PEM)."""

    model_config = _FROZEN

    scheme: str = "hmac-sha256"
    """`hmac-sha256` or `ed25519`."""
    key: str = Field(min_length=1)
    """The shared secret (HMAC) or the PEM public key (Ed25519); use an `os.environ/VAR` reference."""
    required: bool = True
    """Refuse unsigned versions (otherwise only a present signature is checked)."""


class FeedbackSettings(BaseModel):
    """Who may post feedback on a response: the caller that made the request, and keys of the `raters` roles."""

    model_config = _FROZEN

    raters: tuple[Role, ...] = DEFAULT_RATERS
    """Roles whose keys may rate any caller's responses (the master key is admin); `[]`: each response is rated
    by its own caller only. Keep `loop.feedback_raters` of params.yaml the same, so the label stage agrees."""


CascadeMode = Literal["off", "verifier"]


class RoutingSettings(BaseModel):
    """How the virtual model picks a deployment: the watched router, λ bounds, exploration, fallbacks."""

    model_config = _FROZEN

    virtual_model: str = Field(default="auto", min_length=1)
    """The model name that means "let the router choose"; must not be a `model_name` of `model_list`."""
    family: str | None = None
    """Set by `routing_strategy: llmrouter-<family>`: versions of any other family are refused."""
    reference: str = DEFAULT_REFERENCE
    """`models:/routeiq-router/Production`, `models:/routeiq-router@production`, a fixed version, or a directory."""
    challenger_reference: str | None = None
    """A second watched reference for an A/B test (same forms as `reference`)."""
    challenger_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    """Share of callers (by a stable hash of user, session or key) routed by the challenger."""
    poll_interval_seconds: float = Field(default=30.0, gt=0.0)
    """Seconds between registry polls (LiteLLM's `routing_strategy_args.reload_interval`)."""
    hot_reload: bool = True
    """Keep polling after start; off: the version found at start serves until restart."""
    cost_weight: float = Field(default=0.0, ge=0.0)
    """Default λ in argmax quality − λ·cost (quality per USD) when a request sets none."""
    min_cost_weight: float = Field(default=0.0, ge=0.0)
    """Lowest λ a request may ask for; lower values are clamped."""
    max_cost_weight: float = Field(default=1.0e6, ge=0.0)
    """Highest λ a request may ask for; higher values are clamped."""
    epsilon: float = Field(default=0.0, ge=0.0, le=1.0)
    """Share of routed requests whose model is drawn from the exploration distribution (`exploration`) instead
    of being the router's choice: the exploration budget."""
    exploration: ExplorationPolicy = "uniform"
    """How an exploratory request draws its model: `uniform` (every candidate alike), `margin` (uniformly among
    candidates whose predicted utility is within `exploration_margin` of the best) or `boltzmann` (a softmax of
    predicted utility at `exploration_temperature`). The exact probability of the served model is recorded."""
    exploration_margin: float = Field(default=0.05, ge=0.0)
    """`margin` exploration: how far below the best predicted utility (quality − λ·cost) a candidate may be."""
    exploration_temperature: float = Field(default=0.05, gt=0.0)
    """`boltzmann` exploration: the softmax temperature, in utility units (lower: closer to the best)."""
    cascade: CascadeMode = "off"
    """`verifier`: when the serving router is a `cascade` version, a routed non-streamed request is answered first by
    the version's prompt-only choice; unless that is its strong model, the answer is scored by the version's
    verifier and the strong model is asked when the score is below P(strong right | prompt) − λ·cost(strong).
    Streamed requests are routed on the prompt alone. `off`: a cascade version routes on the prompt alone."""
    seed: int | None = None
    """Seed of exploration draws (None: fresh entropy per start)."""
    fallback_model: str | None = None
    """Used when the router is missing, slow or failing; None: a uniform draw among the deployments."""
    budget_ms: float = Field(default=250.0, gt=0.0)
    """Time the router may take per decision before the fallback answers instead."""
    allow_partial_candidates: bool = False
    """Accept a router that knows models this gateway does not serve (it then chooses among the shared ones)."""
    require_router: bool = False
    """Readiness (`/_health/ready`) stays 503 until a learned router is loaded, instead of 200 with the fallback."""
    allowed_custom_routers: tuple[str, ...] = ()
    """`module:Class` paths a `custom` family artifact may import; any other custom router is refused."""
    signing: SigningSettings | None = None
    """Verify artifact signatures (see `routeiq_settings.routing.signing`); None: hashes only."""
    warmup_prompts: tuple[str, ...] = ("What is 2 + 2?", "Write a haiku about routers.")
    """Prompts a new version must route before it is swapped in."""
    inference_threads: int = Field(default=1, ge=1)
    """BLAS/OpenMP/torch threads per decision; concurrent requests already use the cores."""

    @model_validator(mode="after")
    def _bounds(self) -> RoutingSettings:
        if self.min_cost_weight > self.max_cost_weight:
            raise ValueError("min_cost_weight must not exceed max_cost_weight")
        if self.challenger_fraction > 0 and not self.challenger_reference:
            raise ValueError("challenger_fraction > 0 needs a challenger_reference to send that traffic to")
        return self

    def clamp(self, cost_weight: float) -> float:
        """`cost_weight` within the configured bounds."""
        return min(max(cost_weight, self.min_cost_weight), self.max_cost_weight)


class RequestSettings(BaseModel):
    """Which body fields beyond OpenAI's documented ones may reach a provider (all others are refused, 400)."""

    model_config = _FROZEN

    provider_params: tuple[str, ...] = ()
    """Provider parameters to forward besides OpenAI's fields (e.g. vLLM's `top_k`, `repetition_penalty`);
    names only, never one that picks the upstream or its credentials, nor one LiteLLM acts on itself."""

    @field_validator("provider_params")
    @classmethod
    def _plain_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if not PARAM_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a parameter name (lower-case letters, digits and `_`)")
            if name in UPSTREAM_CHOICE or name == EXTENSION_FIELD:
                raise ValueError(f"{name!r} picks the upstream or its credentials and cannot be forwarded")
        return names

    def chat_fields(self) -> frozenset[str]:
        """The fields a chat-completions body may carry."""
        return CHAT_FIELDS | frozenset(self.provider_params)

    def embeddings_fields(self) -> frozenset[str]:
        """The fields an embeddings body may carry."""
        return EMBEDDINGS_FIELDS | frozenset(self.provider_params)


class GatewaySettings(BaseModel):
    """Everything the gateway needs beyond LiteLLM's `model_list`."""

    model_config = _FROZEN

    routing: RoutingSettings = RoutingSettings()
    """How the virtual model is routed (table below)."""
    telemetry: TelemetrySettings = TelemetrySettings()
    """Where spans go (table below)."""
    security: SecuritySettings = SecuritySettings()
    """What outbound calls may reach beyond public https hosts (table below)."""
    fast_path: bool = True
    """Forward to OpenAI-compatible upstreams directly (one keep-alive client) instead of through LiteLLM."""
    upstream_timeout_seconds: float = Field(default=600.0, gt=0.0)
    """Total time allowed per upstream call (LiteLLM's `router_settings.timeout` when set)."""
    tracking_uri: str | None = None
    """MLflow tracking/registry URI; None: MLFLOW_TRACKING_URI, else the local store under runs/."""
    feedback_window: int = Field(default=100_000, ge=1)
    """Recent response ids remembered to link feedback to its request span, and to check who rates it, once."""
    feedback: FeedbackSettings = FeedbackSettings()
    """Who may rate a response (table below)."""
    limits: LimitSettings = LimitSettings()
    """Backpressure, request size limits and upstream deadlines (table below)."""
    failover: FailoverSettings = FailoverSettings()
    """Retries, fallbacks to other model names and per-deployment circuit breakers (tables below)."""
    access: AccessSettings = AccessSettings()
    """Virtual keys, roles and the audit log (tables below)."""
    policy: PolicySettings = PolicySettings()
    """Declarative allow/deny rules evaluated before each request, first match wins (tables below)."""
    requests: RequestSettings = RequestSettings()
    """Which request fields reach providers (table below)."""
