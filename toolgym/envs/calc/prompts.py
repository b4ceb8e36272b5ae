"""The calculator environment's one instruction, kept short for tiny models' contexts."""

SYSTEM_PROMPT = "Use the calc tool for arithmetic. Reply with the number only."
"""The system prompt (61 characters); the tool's schema is rendered separately, or not at all
for a model that learned the call format from demonstrations."""
