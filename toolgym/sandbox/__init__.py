"""Isolated places to run an agent's commands: Docker containers, a warm pool, bubblewrap.

Backends (:mod:`~toolgym.sandbox.backends`) start sandboxes from a
:class:`SandboxSpec`; providers (:mod:`~toolgym.sandbox.provider`, the warm
:mod:`~toolgym.sandbox.pool`) hand them to episodes.
"""

from toolgym.sandbox.base import Command, ExecResult, Sandbox
from toolgym.sandbox.limits import DEFAULT_LIMITS, Limits
from toolgym.sandbox.spec import SandboxSpec

__all__ = ["DEFAULT_LIMITS", "Command", "ExecResult", "Limits", "Sandbox", "SandboxSpec"]
