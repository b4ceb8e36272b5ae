"""A reference agent that replays fixed replies: env smoke runs and tests without a model."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from toolgym.agents.base import AgentBase, AgentTurn, Conversation
from toolgym.agents.templates import ChatTokenizer
from toolgym.errors import AgentError

Reply = str | AgentTurn | Callable[[Conversation], str | AgentTurn]
"""A reply: its text, a ready turn, or a function of the conversation returning either."""


class ScriptedAgent(AgentBase):
    """Replays ``replies`` in order, one per ``act``.

    Args:
        replies: Texts, turns, or callables of the conversation.
        chat: When given, text replies also get token ids (the text's ids plus
            the first end-of-turn id), so token-in/token-out code can run
            without a model. Logprobs stay None: nothing was sampled.
        cycle: Start again from the first reply instead of failing when they run out.

    Example:
        >>> from toolgym.agents import Conversation
        >>> agent = ScriptedAgent(["<tool_call>{}</tool_call>", "done"])
        >>> agent.act_sync(Conversation([{"role": "user", "content": "go"}])).text
        '<tool_call>{}</tool_call>'
        >>> len(agent.conversations)
        1
    """

    def __init__(
        self, replies: Iterable[Reply], *, chat: ChatTokenizer | None = None, cycle: bool = False
    ) -> None:
        self.replies = list(replies)
        self.chat = chat
        self.cycle = cycle
        self.conversations: list[Conversation] = []
        """Every conversation seen, in order (for assertions)."""

    async def act(self, conversation: Conversation) -> AgentTurn:
        """Return the next scripted reply.

        Raises:
            AgentError: the replies ran out (and ``cycle`` is off).
        """
        n = len(self.conversations)
        if not self.replies or (n >= len(self.replies) and not self.cycle):
            raise AgentError(
                f"ScriptedAgent was asked for reply #{n + 1} but holds {len(self.replies)}. "
                "Give it more replies or cycle=True."
            )
        self.conversations.append(conversation)
        reply = self.replies[n % len(self.replies)]
        if callable(reply):
            reply = reply(conversation)
        if isinstance(reply, AgentTurn):
            return reply
        return self._turn(reply, conversation)

    def _turn(self, text: str, conversation: Conversation) -> AgentTurn:
        prompt = (
            list(conversation.prompt_token_ids)
            if conversation.prompt_token_ids is not None
            else None
        )
        if self.chat is None:
            return AgentTurn(text=text, prompt_token_ids=prompt)
        ids = self.chat.encode(text) + list(self.chat.eos_token_ids[:1])
        return AgentTurn(text=text, token_ids=ids, prompt_token_ids=prompt)
