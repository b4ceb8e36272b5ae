"""toolgym: train and evaluate tool-using LLM agents with reinforcement learning."""

from toolgym.errors import ToolgymError

__all__ = ["ToolgymError"]
__version__ = "0.1.0"
