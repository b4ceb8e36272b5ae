"""``toolgym eval``: any agent on any registered env, with pass@k and an HTML report.

The agent is one string, so a shell history line says exactly what ran:
``hf:PATH`` (a local model directory, run by transformers), ``vllm:PATH`` (the
same, run by an in-process vLLM engine on the GPU), ``openai:URL#MODEL`` (any
OpenAI-compatible server, e.g. vLLM), ``anthropic:URL#MODEL`` (the Anthropic
Messages API; the key comes from ``ANTHROPIC_API_KEY``), ``oracle`` or
``wrong`` (the env's scripted reference answers, for checking an env and the
pipeline end to end).
Running the same command again resumes: finished (task, sample) pairs are kept.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from toolgym.errors import ConfigError, ToolgymError

console = Console(highlight=False)

AGENT_FORMS = ("hf:PATH", "vllm:PATH", "openai:URL#MODEL", "anthropic:URL#MODEL", "oracle",
               "wrong")
EXAMPLE_URLS = {"openai": "openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-0.5B-Instruct",
                "anthropic": "anthropic:https://api.anthropic.com#claude-sonnet-4-5"}


@dataclass(frozen=True)
class AgentSpec:
    """A parsed ``--agent`` value.

    Example:
        >>> parse_agent_spec("openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-0.5B-Instruct").model
        'Qwen/Qwen2.5-0.5B-Instruct'
    """

    kind: str
    """``hf``, ``vllm``, ``openai``, ``anthropic``, ``oracle`` or ``wrong``."""
    target: str = ""
    """The model directory (hf, vllm) or the server URL (openai, anthropic)."""
    model: str = ""
    """The served model name (openai, anthropic)."""


def parse_agent_spec(spec: str) -> AgentSpec:
    """Read ``hf:PATH``, ``vllm:PATH``, ``openai:URL#MODEL``, ``anthropic:URL#MODEL``,
    ``oracle`` or ``wrong``.

    Raises:
        ConfigError: anything else; the message lists the accepted forms.
    """
    spec = spec.strip()
    if spec in ("oracle", "wrong"):
        return AgentSpec(spec)
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("hf", "vllm") and rest:
        return AgentSpec(kind, rest)
    if sep and kind in EXAMPLE_URLS:
        url, _, model = rest.rpartition("#")
        if url.startswith(("http://", "https://")) and model:
            return AgentSpec(kind, url, model)
        raise ConfigError(
            f"Bad --agent {spec!r}: write {kind}:URL#MODEL, e.g. {EXAMPLE_URLS[kind]} (URL with "
            "http(s)://, then '#' and the model name the server serves).")
    raise ConfigError(f"Bad --agent {spec!r}: expected one of {', '.join(AGENT_FORMS)}, e.g. "
                      "hf:./checkpoints/step-100 or oracle.")


def build_agent(spec: AgentSpec, env_id: str, *, sampling: Any, seed: int,
                api_key: str | None = None, device: str | None = None,
                token_ids: bool = False, reasoning: str = "template",
                tool_choice: str | None = None, null_content: bool = False,
                thinking_budget: int | None = None) -> tuple[Any, Any]:
    """Make the agent an :class:`AgentSpec` names; return it and its chat tokenizer (or None).

    The tokenizer is returned so the rollout builds token-in/token-out prompts
    for a local model, exactly as training does.

    Raises:
        ConfigError: the hf/vllm model directory does not exist, vLLM is not installed,
            or ``ANTHROPIC_API_KEY`` is unset for an anthropic agent.
    """
    if spec.kind in ("oracle", "wrong"):
        from toolgym.rollout.reference import ReferenceAgent

        return ReferenceAgent(env_id, spec.kind), None
    choice = tool_choice_option(tool_choice)
    if spec.kind == "openai":
        from toolgym.agents.openai_http import OpenAIAgent

        try:
            return OpenAIAgent(spec.target, spec.model, api_key=api_key, sampling=sampling,
                               request_token_ids=token_ids, reasoning=reasoning,  # type: ignore[arg-type]
                               tool_choice=choice, empty_content=None if null_content else ""), None
        except ValueError as exc:
            raise ConfigError(f"--reasoning: {exc}") from None
    if spec.kind == "anthropic":  # its key only from ANTHROPIC_API_KEY, never OPENAI_API_KEY
        from toolgym.agents.anthropic_http import AnthropicAgent

        return AnthropicAgent(spec.target, spec.model, sampling=sampling,
                              tool_choice=choice, thinking_budget=thinking_budget), None
    if not Path(spec.target).is_dir():
        raise ConfigError(f"--agent {spec.kind}:{spec.target}: no model directory there; pass a "
                          "directory holding config.json and the tokenizer (save_pretrained).")
    if spec.kind == "vllm":
        from toolgym.agents.vllm import VLLMAgent

        vllm_agent = VLLMAgent(spec.target, sampling=sampling, seed=seed)
        return vllm_agent, vllm_agent.chat
    from toolgym.agents.hf import HFAgent

    agent = HFAgent(spec.target, sampling=sampling, seed=seed, device=device)
    return agent, agent.chat


def tool_choice_option(value: str | None) -> str | dict[str, Any] | None:
    """``--tool-choice`` as the request field: a mode as is, a tool's name as a named choice.

    Example:
        >>> tool_choice_option("python")
        {'type': 'function', 'function': {'name': 'python'}}
    """
    if value is None or value in ("auto", "required", "none"):
        return value
    return {"type": "function", "function": {"name": value}}


def eval_command(
    env: Annotated[str, typer.Option(help="Environment id, e.g. toolgym/HumanEval-v0.")],
    agent: Annotated[str, typer.Option(
        help="hf:PATH | vllm:PATH | openai:URL#MODEL | anthropic:URL#MODEL (key from "
             "ANTHROPIC_API_KEY) | oracle | wrong (the env's reference answers).")],
    out: Annotated[Path, typer.Option(
        help="Output directory: trajectories.jsonl, summary.json, report.html. "
             "Re-running with the same directory resumes.")],
    samples: Annotated[int, typer.Option(min=1, help="Samples per task (pass@1..k).")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, help="Episodes in flight.")] = 8,
    tasks: Annotated[int | None, typer.Option(
        min=1, help="Only the first N tasks (default: all).")] = None,
    split: Annotated[str | None, typer.Option(help="Task split, e.g. test.")] = None,
    temperature: Annotated[float | None, typer.Option(
        min=0.0, help="Sampling temperature; default 0 (greedy) for --samples 1, "
                      "else 0.8 (as in Chen et al. 2021).")] = None,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.")] = 1.0,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Token budget of one turn.")] = 512,
    seed: Annotated[int, typer.Option(help="Sample s runs with seed + s.")] = 0,
    api_key: Annotated[str | None, typer.Option(
        envvar="OPENAI_API_KEY", help="Bearer token for openai: agents.")] = None,
    token_ids: Annotated[bool, typer.Option(
        help="openai: ask a vLLM server for token ids (counts tokens; other servers "
             "reject the extra fields).")] = False,
    tool_choice: Annotated[str | None, typer.Option(
        help="openai/anthropic: sent as tool_choice: auto, required, none, or a tool's name "
             "(that tool must be called). Default: not sent (the server's default).")] = None,
    reasoning: Annotated[str, typer.Option(
        help="openai: how returned reasoning_content goes back: template (sent; the server's "
             "chat template keeps or drops it), drop (never sent; the DeepSeek API wants "
             "this), inline (as <think> in the content).")] = "template",
    null_content: Annotated[bool, typer.Option(
        help="openai: send an assistant message that only called tools back with content null "
             "instead of \"\" (for endpoints that refuse \"\"; llama-cpp-python and older "
             "SGLang and llama.cpp refuse null).")] = False,
    thinking_budget: Annotated[int | None, typer.Option(
        help="anthropic: turn extended thinking on with this many tokens for it (>= 1024, "
             "below --max-new-tokens; the temperature is then not sent).")] = None,
    device: Annotated[str | None, typer.Option(help="hf: torch device, e.g. cuda.")] = None,
    episode_timeout: Annotated[float, typer.Option(
        help="Seconds before an episode is dropped as an infra error.")] = 600.0,
    sandbox_backend: Annotated[str, typer.Option(
        help="Who starts the sandboxes: docker, local (bubblewrap: envs whose tools need "
             "only python3), or a backend a plugin registered.")] = "docker",
) -> None:
    """Evaluate an agent on an environment: pass@k, per-task results and an HTML report."""
    from toolgym.agents.base import SamplingParams
    from toolgym.sandbox.cleanup import exit_on_sigterm

    exit_on_sigterm()
    temp = temperature if temperature is not None else (0.0 if samples == 1 else 0.8)
    try:
        sampling = SamplingParams(temperature=temp, top_p=top_p, max_new_tokens=max_new_tokens)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    try:
        spec = parse_agent_spec(agent)
        scripted = spec.kind in ("oracle", "wrong")
        console.print(f"[dim]{env} · agent {agent} · {samples} sample(s) per task"
                      f"{'' if scripted else f' · temperature {temp}'} · out {out}[/dim]",
                      soft_wrap=True)
        summary = asyncio.run(_main(env, spec, agent, out, samples=samples, concurrency=concurrency,
                                    tasks=tasks, split=split, sampling=sampling, seed=seed,
                                    api_key=api_key, device=device, token_ids=token_ids,
                                    reasoning=reasoning, tool_choice=tool_choice,
                                    null_content=null_content, thinking_budget=thinking_budget,
                                    episode_timeout=episode_timeout,
                                    sandbox_backend=sandbox_backend))
    except ToolgymError as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    except (KeyboardInterrupt, SystemExit) as exc:  # Ctrl-C, or SIGTERM via exit_on_sigterm
        console.print(f"[yellow]interrupted[/yellow]: finished episodes are kept in "
                      f"{out / 'trajectories.jsonl'}; run the same command again to resume.")
        code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 130
        raise typer.Exit(code) from None
    _print_summary(summary, out)


async def _main(env_id: str, spec: AgentSpec, name: str, out: Path, *, samples: int,
                concurrency: int, tasks: int | None, split: str | None, sampling: Any, seed: int,
                api_key: str | None, device: str | None, token_ids: bool, reasoning: str,
                tool_choice: str | None, null_content: bool, thinking_budget: int | None,
                episode_timeout: float, sandbox_backend: str) -> Any:
    from toolgym.eval.run import evaluate, list_task_ids
    from toolgym.sandbox.provider import SandboxConfig

    task_ids = (await list_task_ids(env_id, split))[:tasks] if tasks is not None else None
    agent, chat = build_agent(spec, env_id, sampling=sampling, seed=seed, api_key=api_key,
                              device=device, token_ids=token_ids, reasoning=reasoning,
                              tool_choice=tool_choice, null_content=null_content,
                              thinking_budget=thinking_budget)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("[green]{task.fields[ok]} ok"), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            job = bar.add_task("episodes", total=None, ok=0)
            ok = 0

            def progress(done: int, total: int, traj: Any) -> None:
                nonlocal ok
                ok += traj.outcome == "success"
                bar.update(job, completed=done, total=total, ok=ok)

            return await evaluate(env_id, agent, samples=samples, concurrency=concurrency,
                                  out_dir=out, task_ids=task_ids, split=split, agent_name=name,
                                  chat=chat, seed=seed, episode_timeout_s=episode_timeout,
                                  sandbox=SandboxConfig(backend=sandbox_backend),
                                  progress=progress)
    finally:
        await agent.aclose()


def _print_summary(summary: Any, out: Path) -> None:
    table = Table("metric", "value", title=f"{summary.env_id} · {summary.agent}")
    for k, value in summary.pass_at_k.items():
        table.add_row(f"pass@{k}", f"{value:.3f}  ({summary.pass_at_k_tasks[k]} tasks)")
    for outcome, count in summary.outcomes.items():
        table.add_row(outcome + (" (not scored)" if outcome == "infra_error" else ""), str(count))
    stats = summary.extra.get("rollout_stats", {})
    for key, label in (("infra_slow", "attempts that ran out of time (retried)"),
                       ("setup_retries", "set-up steps retried (slow starts)")):
        if stats.get(key):
            table.add_row(label, str(stats[key]))
    console.print(table)
    if not summary.complete:
        console.print("[yellow]incomplete[/yellow]: some (task, sample) pairs have no result; "
                      "run the same command again to finish them.")
    console.print(f"report: {out / 'report.html'}\nsummary: {out / 'summary.json'}",
                  soft_wrap=True)  # paths unbroken, to copy
