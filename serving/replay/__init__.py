"""The replay provider: an OpenAI-compatible server answering as the models in an outcomes file did."""

from serving.replay.app import create_app
from serving.replay.server import running, serve
from serving.replay.settings import Latency, LatencyModel, ReplaySettings

__all__ = ["Latency", "LatencyModel", "ReplaySettings", "create_app", "running", "serve"]
