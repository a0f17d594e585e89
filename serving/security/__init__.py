"""Security checks the gateway applies to what it is told by config or admin input: outbound URLs (`ssrf`).

Pure checks and their settings; nothing here starts a client or reads the config file.
"""
