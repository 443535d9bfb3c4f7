"""A local Together-compatible chat-completions server with simulated QA models."""

from simulator.config import DEFAULT_MODELS, SimConfig
from simulator.server import SimServer

__all__ = ["DEFAULT_MODELS", "SimConfig", "SimServer"]
