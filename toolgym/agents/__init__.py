"""Agents: the ``Agent`` protocol and its backends.

* :class:`HFAgent` — a local ``transformers`` model, batched, exact ids and logprobs;
* :class:`VLLMAgent` — an in-process vLLM engine (``pip install -e '.[gpu]'``), same contract;
* :class:`OpenAIAgent` — any OpenAI-compatible endpoint (vLLM returns ids and logprobs);
* :class:`AnthropicAgent` — the Anthropic Messages API (tool_use / tool_result blocks);
* :class:`ScriptedAgent` — replays fixed replies, for tests and env smoke runs.

Token-in/token-out prompts are built by :class:`IncrementalPrompt`
(:mod:`toolgym.agents.templates`). ``HFAgent`` and ``VLLMAgent`` are imported lazily:
they pull in torch (and vLLM, when an engine is started).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from toolgym.agents.anthropic_http import AnthropicAgent
from toolgym.agents.base import (
    DEFAULT_SAMPLING,
    Agent,
    AgentBase,
    AgentTurn,
    Conversation,
    Message,
    SamplingParams,
)
from toolgym.agents.openai_http import OpenAIAgent
from toolgym.agents.retry import DEFAULT_RETRY, HTTPStats, RetryPolicy, RetryTransport
from toolgym.agents.scripted import ScriptedAgent
from toolgym.agents.templates import (
    ChatTokenizer,
    IncrementalPrompt,
    Segment,
    TemplateDriftWarning,
    TemplateReport,
    check_template,
)

if TYPE_CHECKING:
    from toolgym.agents.hf import HFAgent
    from toolgym.agents.vllm import VLLMAgent
    from toolgym.agents.vllm_engine import VLLMConfig

__all__ = [
    "DEFAULT_RETRY",
    "DEFAULT_SAMPLING",
    "Agent",
    "AgentBase",
    "AnthropicAgent",
    "AgentTurn",
    "ChatTokenizer",
    "Conversation",
    "HFAgent",
    "HTTPStats",
    "IncrementalPrompt",
    "Message",
    "OpenAIAgent",
    "RetryPolicy",
    "RetryTransport",
    "SamplingParams",
    "ScriptedAgent",
    "Segment",
    "TemplateDriftWarning",
    "TemplateReport",
    "VLLMAgent",
    "VLLMConfig",
    "check_template",
]


def __getattr__(name: str) -> Any:
    if name == "HFAgent":
        from toolgym.agents.hf import HFAgent

        return HFAgent
    if name == "VLLMAgent":
        from toolgym.agents.vllm import VLLMAgent

        return VLLMAgent
    if name == "VLLMConfig":
        from toolgym.agents.vllm_engine import VLLMConfig

        return VLLMConfig
    raise AttributeError(f"module 'toolgym.agents' has no attribute {name!r}")
