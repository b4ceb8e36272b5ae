"""Isolated places to run an agent's commands: Docker containers, a warm pool, bubblewrap."""

from toolgym.sandbox.base import Command, ExecResult, Sandbox
from toolgym.sandbox.limits import DEFAULT_LIMITS, Limits

__all__ = ["DEFAULT_LIMITS", "Command", "ExecResult", "Limits", "Sandbox"]
