"""Calling upstream models: deployments, the direct fast path, the LiteLLM adapter, pricing, and the facade.

`litellm` is imported by `litellm_adapter` only, and only when `Providers.start()` needs it.
"""
