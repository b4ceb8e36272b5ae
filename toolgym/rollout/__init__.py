"""toolgym.rollout."""
