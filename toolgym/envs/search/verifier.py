r"""Answer scoring for the search environment: SQuAD exact match and token F1, on the host.

The reward is **exact match** (1.0 or 0.0) of the normalised final answer
against any of the task's gold names (a synset has several: "dog",
"domestic dog", "Canis familiaris"); the best token F1 goes into the score's
details for analysis, not into the reward. EM rather than F1 as the reward
because partial credit is exactly what a reward hacker farms: listing several
candidates earns F1 > 0 on every task, and exact match earns nothing.

Normalisation is SQuAD's (``squad/evaluate-v1.1.py``): lower case, drop
punctuation, drop the articles *a*, *an*, *the*, collapse white space.

Which part of the final message is the answer: the text after the last
``Answer:`` marker up to the end of that line, if there is such a marker; else
the whole message. So "The dictionary says it is a kind of canine.\nAnswer:
canine" and "canine" both score, and an answer longer than
:data:`MAX_ANSWER_CHARS` scores nothing (a giant answer cannot fish for
matches).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from toolgym.envs.outcome import Score
from toolgym.envs.tasks import Task
from toolgym.sandbox.base import Sandbox

MAX_ANSWER_CHARS = 200
"""Longer answers are not read: no name in the corpus is anywhere near this long."""
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)
_MARKER = re.compile(r"answer\s*:", re.IGNORECASE)


def normalize(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces.

    Example:
        >>> normalize("The  Domestic-Dog!")
        'domesticdog'
        >>> normalize("an apple a day")
        'apple day'
    """
    text = "".join(c for c in text.lower() if c not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> bool:
    """Whether the two are equal after :func:`normalize`.

    Example:
        >>> exact_match("The canine.", "canine"), exact_match("canines", "canine")
        (True, False)
    """
    return normalize(prediction) == normalize(gold)


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD's token F1 of the normalised strings (0.0 when either is empty).

    Example:
        >>> round(token_f1("common grape vine", "grape"), 4)  # P 1/3, R 1
        0.5
    """
    pred, ref = normalize(prediction).split(), normalize(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def final_answer(message: str) -> str:
    r"""The answer part of a final message: after the last ``Answer:``, to the end of its line.

    Example:
        >>> final_answer("It is listed under canine.\nAnswer: canine\n")
        'canine'
        >>> final_answer("  canine ")
        'canine'
    """
    found = list(_MARKER.finditer(message))
    if found:
        message = message[found[-1].end():].split("\n", 1)[0]
    return message.strip()


def best_match(answer: str, golds: Iterable[str]) -> tuple[bool, float]:
    """``(exact match with any gold, best F1)``; both False/0.0 for an over-long answer."""
    if len(answer) > MAX_ANSWER_CHARS:
        return False, 0.0
    golds = list(golds)
    return (any(exact_match(answer, g) for g in golds),
            max((token_f1(answer, g) for g in golds), default=0.0))


@dataclass(frozen=True)
class AnswerVerifier:
    """Reward 1.0 iff the final answer matches a gold name exactly (after normalisation).

    Example:
        >>> import asyncio
        >>> task = Task("t", "What is a dog a kind of?", data={"answers": ["canine", "canid"]})
        >>> score = asyncio.run(AnswerVerifier().score(None, task, "Answer: a Canid."))
        >>> score.reward, score.details["f1"]
        (1.0, 1.0)
    """

    needs_sandbox = False
    """Scored on the host from the answer text alone: no sandbox reset before scoring."""

    async def score(self, sandbox: Sandbox | None, task: Task, answer: str) -> Score:
        """Score the final message ``answer``; nothing in the sandbox is looked at.

        Raises:
            ValueError: the task has no gold answers (a broken task must not score 0).
        """
        golds = [str(g) for g in task.data.get("answers", [])]
        if not golds or not all(normalize(g) for g in golds):
            raise ValueError(f"task {task.id}: no usable gold answers {golds!r}")
        extracted = final_answer(answer)
        passed, f1 = best_match(extracted, golds)
        details = {"answers": golds, "got": extracted[:MAX_ANSWER_CHARS], "f1": round(f1, 4),
                   "em": float(passed)}
        return Score(1.0 if passed else 0.0, passed=passed, details=details)
