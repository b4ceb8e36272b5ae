"""Trajectories (exact tokens, per turn) and the async rollout manager."""

from toolgym.rollout.episode import run_episode
from toolgym.rollout.manager import RolloutConfig, RolloutManager
from toolgym.rollout.trajectory import Sample, Trajectory, Turn, read_jsonl, write_jsonl

__all__ = ["RolloutConfig", "RolloutManager", "Sample", "Trajectory", "Turn", "read_jsonl",
           "run_episode", "write_jsonl"]
