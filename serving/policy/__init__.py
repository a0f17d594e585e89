"""The declarative policy engine: ordered allow/deny rules (`routeiq_settings.policy`) evaluated before each
request, first match wins, with a decision trace.

Settings (`rules`) and a pure evaluation (`engine`, `client_ip`); no FastAPI here: `serving.auth` enforces it.
"""
