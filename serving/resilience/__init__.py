"""Keeping the gateway up under load and misbehaving peers: request limits, upstream deadlines, drain."""
