"""The gateway's OpenTelemetry spans: attribute names, a loss-counting processor, rotating OTLP-JSON files.

It holds its own TracerProvider and never touches the OTel globals; nothing here starts at import time.
"""
