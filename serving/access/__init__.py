"""Who may call the gateway: virtual keys (hashed in a key store), roles that gate routes, and the audit log.

Nothing here starts at import time; the app lifespan builds the store and the log from `AccessSettings`.
"""
