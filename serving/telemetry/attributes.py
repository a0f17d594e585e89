"""Span names and span attribute names, each written once: OTel GenAI conventions plus `routeiq.*`.

Constants only; code that records or reads spans imports these and never spells an attribute itself.
"""

from __future__ import annotations

from typing import Final

# Span names.
CHAT_SPAN_NAME: Final = "chat"
EMBEDDINGS_SPAN_NAME: Final = "embeddings"
FEEDBACK_SPAN_NAME: Final = "routeiq.feedback"
CASCADE_STEP_SPAN_NAME: Final = "routeiq.cascade.step"
"""A child of the request's span for each upstream call of a cascade (`routeiq_settings.routing.cascade`)."""

# OTel GenAI semantic conventions (and the general ones they rely on).
OPERATION_NAME: Final = "gen_ai.operation.name"
PROVIDER_NAME: Final = "gen_ai.provider.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_ID: Final = "gen_ai.response.id"
INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
ERROR_TYPE: Final = "error.type"
HTTP_STATUS: Final = "http.response.status_code"

# The routing decision.
ROUTER_VERSION: Final = "routeiq.router.version"
ROUTER_FAMILY: Final = "routeiq.router.family"
ROUTER_ARM: Final = "routeiq.router.arm"
CANDIDATES: Final = "routeiq.candidates"
"""string[]: the deployments the router chose among."""
PREDICTED_QUALITY: Final = "routeiq.predicted.quality"
"""double[]: expected quality per candidate, aligned with `CANDIDATES`."""
PREDICTED_COST: Final = "routeiq.predicted.cost"
"""double[]: expected cost in USD per candidate, aligned with `CANDIDATES`."""
CHOSEN_MODEL: Final = "routeiq.chosen_model"
PROPENSITY: Final = "routeiq.propensity"
COST_WEIGHT: Final = "routeiq.cost_weight"
DECISION: Final = "routeiq.decision"
"""How the model was picked: one of `DECISIONS`."""
FALLBACK_REASON: Final = "routeiq.fallback_reason"
SERVED_MODEL: Final = "routeiq.served_model"
"""The model name that answered, set only when it is not `CHOSEN_MODEL` (a failover fallback answered)."""
POLICY_RULE: Final = "routeiq.policy.rule"
"""The `routeiq_settings.policy` rule that allowed the request (absent when none matched and the default did)."""
KEY_ID: Final = "routeiq.key.id"
"""Who called: a virtual key id, `master`, or `anonymous` (never the key itself)."""
FAILED_ATTEMPTS: Final = "routeiq.failover.attempts"
"""string[]: `model:reason` for each upstream attempt that failed (or was skipped) before the answer."""

# What the request cost and carried.
COST_USD: Final = "routeiq.cost.usd"
COST_SOURCE: Final = "routeiq.cost.source"
PROMPT_HASH: Final = "routeiq.prompt.hash"
PROMPT_TEXT: Final = "routeiq.prompt.text"
"""Recorded only when `TelemetrySettings.capture_prompts` is on."""
STREAM: Final = "routeiq.stream"
LATENCY_MS: Final = "routeiq.latency_ms"

# A cascade (`routeiq_settings.routing.cascade`), on the request's span; the first answer's own figures only
# when it was escalated (kept, it is the request's answer). Each call's child span has `CASCADE_STEP` and the
# usage attributes of that call.
CASCADE_OUTCOME: Final = "routeiq.cascade.outcome"
"""`kept` (the first answer served), `escalated` (the strong model's answer served), `escalation_failed` (the strong
model could not answer: the first answer served), or `skipped_stream` (a stream: routed on the prompt alone)."""
CASCADE_SCORE: Final = "routeiq.cascade.score"
"""The verifier's P(the first answer is right)."""
CASCADE_THRESHOLD: Final = "routeiq.cascade.threshold"
"""The score below which the first answer is escalated: P(strong right | prompt) − λ·cost(strong)."""
CASCADE_STEP: Final = "routeiq.cascade.step"
"""On a step's child span: `first` or `escalated`."""
CASCADE_FIRST_MODEL: Final = "routeiq.cascade.first.model"
CASCADE_FIRST_RESPONSE_ID: Final = "routeiq.cascade.first.response_id"
"""The escalated first answer's id: feedback on it labels the first model's outcome too."""
CASCADE_FIRST_COST_USD: Final = "routeiq.cascade.first.cost_usd"
CASCADE_FIRST_INPUT_TOKENS: Final = "routeiq.cascade.first.input_tokens"
CASCADE_FIRST_OUTPUT_TOKENS: Final = "routeiq.cascade.first.output_tokens"
CASCADE_COST_USD: Final = "routeiq.cascade.cost_usd"
"""Both calls' cost; `COST_USD` is the served answer's alone."""

# Feedback, recorded on a `FEEDBACK_SPAN_NAME` span linked to the request's span.
FEEDBACK_RESPONSE_ID: Final = "routeiq.feedback.response_id"
FEEDBACK_SCORE: Final = "routeiq.feedback.score"
FEEDBACK_SOURCE: Final = "routeiq.feedback.source"
FEEDBACK_KNOWN: Final = "routeiq.feedback.known"
FEEDBACK_RATER_ROLE: Final = "routeiq.feedback.rater_role"
"""The rater's role (admin, operator, user; absent for an anonymous caller); the rater's key id is `KEY_ID`."""

# Values of `DECISION`.
DECISION_ROUTER: Final = "router"
DECISION_EXPLORE: Final = "explore"
DECISION_FALLBACK: Final = "fallback"
DECISION_EXPLICIT: Final = "explicit"
DECISION_CASCADE: Final = "cascade"
"""The cascade's first model, asked before its answer was checked (propensity 1)."""
DECISIONS: Final = (DECISION_ROUTER, DECISION_EXPLORE, DECISION_FALLBACK, DECISION_EXPLICIT, DECISION_CASCADE)
