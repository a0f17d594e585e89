"""The gateway config file: LiteLLM's format (`model_list`, `router_settings`, `general_settings`,
`os.environ/VAR` references) plus an optional `routeiq_settings` section. Reads and validates; starts nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from pydantic import ValidationError

from routers.registry import EVALUATION_ONLY, FAMILIES
from serving.exceptions import GatewayConfigError
from serving.providers.deployment import CONNECT_GUARDED, Deployment
from serving.security.ssrf import UnsafeURLError, check_url
from serving.settings import GatewaySettings

ENV_PREFIX = "os.environ/"
LEARNED_PREFIX = "llmrouter-"
ANY_FAMILY = "any"
LITELLM_STRATEGIES = (
    "simple-shuffle",
    "least-busy",
    "latency-based-routing",
    "cost-based-routing",
    "usage-based-routing",
    "usage-based-routing-v2",
)
SUPERSEDED_ARGS = ("model_path", "llm_data_path", "config_path")
KNOWN_SECTIONS = ("model_list", "router_settings", "general_settings", "litellm_settings", "routeiq_settings")


@dataclass(frozen=True)
class GatewayConfig:
    """A loaded config: deployments, LiteLLM's strategy, the master key, RouteIQ settings, and log notes."""

    deployments: tuple[Deployment, ...]
    routing_strategy: str
    """LiteLLM's strategy among deployments sharing a name (simple-shuffle under a learned router)."""
    learned: bool
    """True for `llmrouter-<family>`: the virtual model is routed by a registered router."""
    master_key: str | None
    settings: GatewaySettings
    notes: tuple[str, ...]
    """Lines the gateway logs at start: superseded or ignored keys."""

    @property
    def model_names(self) -> tuple[str, ...]:
        """Distinct deployment names, in config order."""
        return tuple(dict.fromkeys(d.model_name for d in self.deployments))


def load_config(path: Path) -> GatewayConfig:
    """Read `path` (YAML), resolve `os.environ/VAR` references, validate; errors name the key to fix."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise GatewayConfigError(f"cannot read gateway config {path}: {exc.strerror}; pass an existing file") from exc
    except yaml.YAMLError as exc:
        raise GatewayConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise GatewayConfigError(f"{path} must be a YAML mapping with at least a `model_list`")
    return parse_config(resolve_env(raw, "", os.environ))


def resolve_env(value: Any, where: str, environ: Mapping[str, str]) -> Any:
    """`value` with every `os.environ/NAME` string replaced by that variable's value."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        if name not in environ:
            raise GatewayConfigError(f"{where or 'the config'} refers to ${name}, which is not set; export {name}")
        return environ[name]
    if isinstance(value, dict):
        return {k: resolve_env(v, f"{where}.{k}" if where else str(k), environ) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env(v, f"{where}[{i}]", environ) for i, v in enumerate(value)]
    return value


def parse_config(raw: Mapping[str, Any]) -> GatewayConfig:
    """Build the config from an already env-resolved mapping."""
    notes = [f"config section `{key}` is not used by RouteIQ; ignored" for key in raw if key not in KNOWN_SECTIONS]
    deployments = _deployments(raw.get("model_list"))
    router_settings = _section(raw, "router_settings")
    general = _section(raw, "general_settings")
    strategy = str(router_settings.get("routing_strategy", "simple-shuffle"))
    overrides, learned = _routing_overrides(strategy, _section(router_settings, "routing_strategy_args"), notes)
    if "timeout" in router_settings:
        overrides.setdefault("_timeout", router_settings["timeout"])
    settings = _settings(_section(raw, "routeiq_settings"), overrides, _litellm_failover(router_settings))
    master_key = general.get("master_key")
    config = GatewayConfig(
        deployments=deployments,
        routing_strategy="simple-shuffle" if learned else strategy,
        learned=learned,
        master_key=str(master_key) if master_key else None,
        settings=settings,
        notes=tuple(notes),
    )
    _check_names(config)
    _check_fallbacks(config)
    _check_upstreams(config)
    return config


def _section(raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise GatewayConfigError(f"`{key}` must be a mapping, got {type(value).__name__}")
    return value


def _deployments(entries: Any) -> tuple[Deployment, ...]:
    if not isinstance(entries, list) or not entries:
        raise GatewayConfigError("`model_list` must list at least one deployment (model_name + litellm_params)")
    return tuple(Deployment.from_entry(entry) for entry in entries)


def _routing_overrides(strategy: str, args: dict[str, Any], notes: list[str]) -> tuple[dict[str, Any], bool]:
    """Routing settings implied by LiteLLM's `router_settings`; `llmrouter-<family>` means a learned router."""
    if not strategy.startswith(LEARNED_PREFIX):
        if strategy not in LITELLM_STRATEGIES:
            raise GatewayConfigError(
                f"router_settings.routing_strategy {strategy!r} is unknown; use llmrouter-<family> "
                f"(a learned router) or one of LiteLLM's: {', '.join(LITELLM_STRATEGIES)}"
            )
        return {}, False
    family = strategy[len(LEARNED_PREFIX) :]
    served = sorted(set(FAMILIES) - EVALUATION_ONLY)
    if family != ANY_FAMILY and family not in served:
        valid = ", ".join(f"{LEARNED_PREFIX}{name}" for name in [ANY_FAMILY, *served])
        raise GatewayConfigError(
            f"router_settings.routing_strategy {strategy!r} names no router family; use one of {valid}, "
            f"or one of LiteLLM's: {', '.join(LITELLM_STRATEGIES)}"
        )
    overrides: dict[str, Any] = {"family": None if family == ANY_FAMILY else family}
    for key in SUPERSEDED_ARGS:
        if key in args:
            notes.append(
                f"routing_strategy_args.{key} ({args[key]}) is superseded by the model registry: "
                "the router is loaded from routeiq_settings.routing.reference"
            )
    if "hot_reload" in args:
        overrides["hot_reload"] = bool(args["hot_reload"])
    if "reload_interval" in args:
        overrides["poll_interval_seconds"] = args["reload_interval"]
    return overrides, True


def _litellm_failover(router_settings: dict[str, Any]) -> dict[str, Any]:
    """LiteLLM's `fallbacks` (a list of one-key mappings), `default_fallbacks` and `num_retries`, as
    `routeiq_settings.failover` keys."""
    found: dict[str, Any] = {}
    fallbacks = router_settings.get("fallbacks")
    if fallbacks is not None:
        if not isinstance(fallbacks, list) or not all(isinstance(item, dict) for item in fallbacks):
            raise GatewayConfigError(
                "router_settings.fallbacks must be a list of mappings, e.g. [{gpt-4o: [gpt-4o-mini]}]"
            )
        found["fallbacks"] = {name: chain for item in fallbacks for name, chain in item.items()}
    for key, target in (("default_fallbacks", "default_fallbacks"), ("num_retries", "retries")):
        if key in router_settings:
            found[target] = router_settings[key]
    return found


def _settings(section: dict[str, Any], overrides: dict[str, Any], failover: dict[str, Any]) -> GatewaySettings:
    """`routeiq_settings`, with what LiteLLM's sections imply filled in where the section is silent."""
    merged = dict(section)
    if failover:
        own = dict(merged.get("failover") or {})
        if "fallbacks" in failover and isinstance(own.get("fallbacks"), dict):
            own["fallbacks"] = {**failover["fallbacks"], **own["fallbacks"]}
        merged["failover"] = {**failover, **own}
    timeout = overrides.pop("_timeout", None)
    if timeout is not None:
        merged.setdefault("upstream_timeout_seconds", timeout)
    routing = dict(merged.get("routing") or {})
    for key, value in overrides.items():
        routing.setdefault(key, value)
    merged["routing"] = routing
    try:
        return GatewaySettings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise GatewayConfigError(f"routeiq_settings.{where}: {first['msg']}") from exc


def _check_names(config: GatewayConfig) -> None:
    routing = config.settings.routing
    if routing.virtual_model in config.model_names:
        raise GatewayConfigError(
            f"routeiq_settings.routing.virtual_model {routing.virtual_model!r} is also a model_name in model_list; "
            "rename one of them"
        )
    if routing.fallback_model and routing.fallback_model not in config.model_names:
        raise GatewayConfigError(
            f"routeiq_settings.routing.fallback_model {routing.fallback_model!r} is not a model_name in model_list; "
            f"use one of {', '.join(config.model_names)}"
        )


def _check_fallbacks(config: GatewayConfig) -> None:
    failover = config.settings.failover
    named = [(f"fallbacks.{name}", name) for name in failover.fallbacks]
    named += [(f"fallbacks.{name}", target) for name, chain in failover.fallbacks.items() for target in chain]
    named += [("default_fallbacks", target) for target in failover.default_fallbacks]
    for where, name in named:
        if name not in config.model_names:
            raise GatewayConfigError(
                f"routeiq_settings.failover.{where}: {name!r} is not a model_name in model_list; "
                f"use one of {', '.join(config.model_names)}"
            )


def _check_upstreams(config: GatewayConfig) -> None:
    """Every `api_base` through the SSRF guard, resolved now; deployments without one use provider defaults."""
    allowlist = config.settings.security.allowlist()
    for deployment in config.deployments:
        if deployment.api_base is None:
            continue
        try:
            checked = check_url(deployment.api_base, allowlist)
        except UnsafeURLError as exc:
            raise GatewayConfigError(f"{deployment.label}: api_base refused: {exc}") from exc
        if deployment.provider not in CONNECT_GUARDED and not all(
            allowlist.allows(checked.host, address) for address in checked.addresses
        ):
            raise GatewayConfigError(
                f"{deployment.label}: LiteLLM calls {deployment.provider!r} with its own HTTP client, which the "
                f"SSRF guard cannot check when it connects or follows a redirect; list {checked.host!r} in "
                "routeiq_settings.security.upstream_allowlist to vouch for this api_base (docs/security.md)"
            )
