"""toolgym against an OpenAI-compatible server that no one here wrote: llama-cpp-python's.

The stand-in servers of ``tests/agents`` were written with the agents they test,
so a misreading of the protocol could be shared by both. This module serves the
tiny byte-level BPE Llama of :mod:`tests.helpers.tiny_gguf` with
``python -m llama_cpp.server`` and its ``chatml-function-calling`` chat format
(the one of llama-cpp-python's formats that answers with OpenAI ``tool_calls``),
and drives it with :class:`~toolgym.agents.OpenAIAgent` and ``toolgym eval``
(episodes of native tool calls, relayed through the strict stand-in of
:mod:`tests.agents.openai_server`, which checks every request on its way).
The weights are random: the tests check the GGUF (llama.cpp reads it as the
same model) and the protocol (a completion, native tool calls, real episodes,
errors), never the model's skill.

Run by ``make integration`` (marker ``integration``, deselected from the default
run), which installs the ``integration`` extra: llama-cpp-python builds
llama.cpp from source, 17 min on the shared 2-core machine (README, Integration
tests); the tests take about 30 s.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from tests.agents.openai_server import Relay, Status, Step, serve
from tests.helpers.tiny_gguf import build_bpe_model, write_gguf
from toolgym.agents import Conversation, OpenAIAgent, RetryPolicy, SamplingParams
from toolgym.cli.eval import eval_command
from toolgym.errors import AgentHTTPError
from toolgym.eval.run import TRAJECTORIES
from toolgym.rollout.trajectory import Trajectory

pytestmark = pytest.mark.integration

MODEL = "tiny"
GREEDY = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=16)
FAST = RetryPolicy(max_retries=2, backoff_s=0.01, backoff_max_s=0.02)
PICK = {"type": "function", "function": {
    "name": "pick", "description": "Pick an answer.",
    "parameters": {"type": "object", "required": ["choice"],
                   "properties": {"choice": {"type": "string", "enum": ["yes", "no"]}}}}}
"""A tool whose only argument is an enum, so the server's grammar ends the call in a few
tokens whatever the random weights prefer."""
USER = {"role": "user", "content": "Is 7 prime?"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The root URL of a llama-cpp-python server serving the tiny GGUF model as ``tiny``."""
    pytest.importorskip("llama_cpp.server", reason="the integration extra is not installed "
                        "(make integration installs it and checks the import first)")
    folder = tmp_path_factory.mktemp("llama")
    gguf = write_gguf(build_bpe_model(folder / "model"), folder / "tiny.gguf")
    port, log = _free_port(), folder / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
             "--model_alias", MODEL, "--chat_format", "chatml-function-calling",
             "--n_ctx", "4096", "--seed", "0", "--n_threads", "1",
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited {proc.returncode}:\n"
                            f"{log.read_text()[-3000:]}", pytrace=False)
            try:
                if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer in 120 s:\n"
                            f"{log.read_text()[-3000:]}", pytrace=False)
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_llama_cpp_reads_the_gguf_as_the_same_model(tmp_path: Path) -> None:
    """llama.cpp's tokenizer and forward pass agree with transformers' on the tiny model, so
    the GGUF writer's vocabulary, merges, pre-tokenizer and rotary permutation are right."""
    llama_cpp = pytest.importorskip("llama_cpp")
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = build_bpe_model(tmp_path / "model")
    llama = llama_cpp.Llama(str(write_gguf(model_dir, tmp_path / "tiny.gguf")), n_ctx=512,
                            logits_all=True, n_threads=1, verbose=False)
    tok = AutoTokenizer.from_pretrained(model_dir)
    text = ('<|im_start|>user\nWrite a function.<|im_end|>\n<|im_start|>assistant\n'
            '<tool_call>\n{"name": "python", "arguments": {"code": "print(1 + 1)"}}')
    ids = tok(text)["input_ids"]
    assert llama.tokenize(text.encode(), add_bos=False, special=True) == ids
    llama.eval(ids)
    with torch.no_grad():
        expected = AutoModelForCausalLM.from_pretrained(model_dir)(torch.tensor([ids])).logits[0]
    np.testing.assert_allclose(np.asarray(llama.scores[: len(ids)]), expected.numpy(),
                               atol=1e-3)
    llama.close()


def agent(url: str, **kwargs: object) -> OpenAIAgent:
    return OpenAIAgent(url, MODEL, sampling=GREEDY, retry=FAST, **kwargs)  # type: ignore[arg-type]


async def test_a_chat_completion(server: str) -> None:
    async with agent(server, request_token_ids=False) as a:
        turn = await a.act(Conversation([USER]))
    assert isinstance(turn.text, str) and turn.tool_calls is None
    assert turn.finish_reason in ("stop", "length")
    assert turn.usage is not None and turn.usage["prompt_tokens"] > 5
    assert turn.usage["completion_tokens"] <= GREEDY.max_new_tokens
    assert str(turn.info["id"]).startswith("chatcmpl") and turn.info["attempts"] == 1
    assert not turn.trainable  # llama.cpp returns no token ids: usable for evaluation only


async def test_token_id_fields_are_ignored_and_logprobs_come_back_as_text(server: str) -> None:
    """vLLM's extra fields do not break the request; logprob tokens are text, so no ids."""
    async with agent(server, request_token_ids=True) as a:
        turn = await a.act(Conversation([USER]))
    assert turn.token_ids is None and turn.logprobs is None
    assert turn.finish_reason in ("stop", "length")


async def test_a_named_tool_choice_comes_back_as_native_tool_calls(server: str) -> None:
    choice = {"type": "function", "function": {"name": "pick"}}
    async with agent(server, request_token_ids=False, tool_choice=choice) as a:
        turn = await a.act(Conversation([USER], tools=[PICK]))
        assert turn.structured and turn.tool_calls is not None and len(turn.tool_calls) == 1
        call = turn.tool_calls[0]
        assert call["type"] == "function" and call["function"]["name"] == "pick"
        assert json.loads(call["function"]["arguments"])["choice"] in ("yes", "no")
        assert isinstance(call["id"], str) and call["id"]
        assert turn.finish_reason == "tool_calls"
        # The round trip as the OpenAI protocol has it: the assistant message keeps the call
        # (content "", toolgym's default), the result answers its id.
        answered = Conversation([USER, turn.message(),
                                 {"role": "tool", "tool_call_id": call["id"], "name": "pick",
                                  "content": "correct"}], tools=[PICK])
        again = await a.act(answered)
        assert again.tool_calls is not None and again.tool_calls[0]["id"] != call["id"]
    # Why "" is the default: llama-cpp-python 0.3.36 types an assistant's content as a string
    # and refuses null (a validation error it answers 500), though the OpenAI API takes both.
    async with agent(server, request_token_ids=False, tool_choice=choice,
                     empty_content=None) as a:
        refused = r"HTTP 500 after 3 .*validation errors.*'messages', 1, .*'string_type'"
        with pytest.raises(AgentHTTPError, match=refused):
            await a.act(answered)


def test_toolgym_eval_plays_episodes_of_native_tool_calls(server: str, tmp_path: Path) -> None:
    """``toolgym eval`` end to end with native calls. ``--tool-choice get`` makes llama.cpp's
    grammar write a valid ``get`` call every turn whatever the random weights prefer; each
    result goes back as a ``role: "tool"`` message answering the call's id, until the turn
    budget (5) ends the episode. Every request goes through the strict stand-in on its way
    (a relay), so each one llama.cpp answered also keeps the OpenAI protocol."""
    refused: list[str] = []

    def relay(body: dict) -> Step:
        answer = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=120)
        if answer.status_code != 200:
            refused.append(answer.text[:2000])
            return Status(answer.status_code)
        return Relay(answer.json())

    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("other")(lambda: None)  # two commands, so "eval" is a sub-command
    with serve(relay) as stand_in:
        result = CliRunner().invoke(app, [
            "eval", "--env", "toolgym/KeyChain-v0", "--agent",
            f"openai:{stand_in.url}/v1#{MODEL}", "--tasks", "2", "--concurrency", "2",
            "--max-new-tokens", "48", "--tool-choice", "get", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert refused == [] and stand_in.rejected == []
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["episodes"] == 2 and summary["complete"]
    outcomes = {k: n for k, n in summary["outcomes"].items() if n}
    assert outcomes == {"truncated": 2}  # scored, neither error: the forced tool never answers
    trajs = [Trajectory.from_json(line)
             for line in (tmp_path / TRAJECTORIES).read_text().splitlines()]
    assert sorted(t.task_id for t in trajs) == ["kc-train-0000", "kc-train-0001"]
    ids = set()
    for traj in trajs:
        assert len(traj.turns) == 5 and traj.outcome == "truncated"
        for turn in traj.turns:
            assert turn.info["call_form"] == "native" and turn.finish_reason == "tool_calls"
            (call,) = turn.info["tool_calls"]
            assert call["function"]["name"] == "get" and isinstance(call["id"], str)
            ids.add(call["id"])
            assert sum(turn.info["tool_counts"].values()) >= 1 and turn.observation
    assert len(ids) == 10  # one id per call
    # What went back: each call kept by its assistant message, answered by a tool message.
    answered = set()
    for body in stand_in.requests:
        messages = body["messages"]
        for said, reply in zip(messages, messages[1:], strict=False):
            if said["role"] == "assistant":
                assert said["content"] == "" and reply["role"] == "tool"
                assert reply["tool_call_id"] == said["tool_calls"][0]["id"]
                answered.add(reply["tool_call_id"])
    assert len(stand_in.requests) == 10
    assert answered == ids - {t.turns[-1].info["tool_calls"][0]["id"] for t in trajs}


async def test_a_prompt_past_the_context_is_a_4xx_not_retried(server: str) -> None:
    long = {"role": "user", "content": " ".join(f"w{i}" for i in range(6000))}
    async with agent(server, request_token_ids=False) as a:
        with pytest.raises(AgentHTTPError, match=r"HTTP 400 after 1 attempt.*context length"):
            await a.act(Conversation([long]))
        assert a.stats.failed == 1


async def test_a_server_error_is_retried_then_reported(server: str) -> None:
    """llama-cpp-python's function-calling handler asserts tool_choice is 'auto' or a named
    function: ``required`` is an internal error (500), which is retried, then reported."""
    async with agent(server, request_token_ids=False, tool_choice="required") as a:
        with pytest.raises(AgentHTTPError, match=r"HTTP 500 after 3 attempt.*Retries are exh"):
            await a.act(Conversation([USER], tools=[PICK]))
        assert a.stats.by_reason.get("500") == 2
