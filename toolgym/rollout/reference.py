"""Scripted reference agents that play an env's own oracle or wrong answers.

They find the task from the conversation's first user message (the task
prompt) and replay ``env.reference_actions(task, kind)`` one turn at a time, so
they work through the ordinary ``Agent`` protocol: in ``toolgym eval``, as SFT
demonstrations, and in benchmarks.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from toolgym.agents.base import AgentBase, AgentTurn, Conversation
from toolgym.agents.templates import ChatTokenizer
from toolgym.envs.registration import make_async
from toolgym.envs.tasks import Task, TaskSource
from toolgym.errors import AgentError, RegistryError


@runtime_checkable
class ReferenceEnv(Protocol):
    """An env that knows its tasks, their prompts and the actions that solve (or fail) them."""

    @property
    def tasks(self) -> TaskSource: ...

    def task_prompt(self, task: Task) -> str: ...

    def reference_actions(self, task: Task, kind: str = "oracle") -> list[str]: ...

    async def aclose(self) -> None: ...


class ReferenceAgent(AgentBase):
    """Plays ``kind`` ("oracle" or "wrong") reference actions of ``env_id``'s tasks.

    With ``chat``, each reply also carries token ids (the text's ids and the
    end-of-turn token), which makes oracle trajectories usable as SFT data.

    Example:
        >>> agent = ReferenceAgent("toolgym/HumanEval-v0")  # doctest: +SKIP
    """

    def __init__(self, env_id: str, kind: str = "oracle", *, chat: ChatTokenizer | None = None,
                 env_kwargs: dict[str, Any] | None = None) -> None:
        env = make_async(env_id, **(env_kwargs or {})).unwrapped
        if not isinstance(env, ReferenceEnv):
            env.close()
            raise RegistryError(f"{env_id} has no reference actions to play")
        self._env = env
        self._by_prompt = {self._env.task_prompt(t): t for t in self._env.tasks}
        self.kind = kind
        self.chat = chat

    async def act(self, conversation: Conversation) -> AgentTurn:
        """The next reference action of the conversation's task.

        Raises:
            AgentError: the task is unknown or its reference actions ran out.
        """
        prompt = next((m["content"] for m in conversation.messages if m["role"] == "user"), None)
        task = self._by_prompt.get(prompt) if prompt is not None else None
        if task is None:
            raise AgentError("ReferenceAgent does not know this conversation's task")
        actions = self._env.reference_actions(task, self.kind)
        turn = sum(m["role"] == "assistant" for m in conversation.messages)
        if turn >= len(actions):
            raise AgentError(f"reference actions of {task.id} ran out after {len(actions)} turns")
        text = actions[turn]
        if self.chat is None:
            return AgentTurn(text=text)
        ids = self.chat.encode(text) + list(self.chat.eos_token_ids[:1])
        return AgentTurn(text=text, token_ids=ids, logprobs=[0.0] * len(ids))

    async def aclose(self) -> None:
        await self._env.aclose()
