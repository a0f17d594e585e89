"""The gateway's routing: the loaded routers, the registry poller that swaps them, and the per-request policy."""
