"""Rollout benchmark: the async RolloutManager vs a lock-step loop, same env, same model.

The env has long-tailed tool latency (most steps fast, some slow, as real
tools are); the model stand-in batches whatever requests are pending and costs
a fixed time per generated token per batch, as a GPU decode does. Lock-step:
each turn of a batch of episodes waits for its slowest episode before the next
turn is generated. Async: episodes run independently and the model serves
whatever is pending. Prints episodes/s of both, the speed-up, and the fraction
of wall time the model was busy. Run: `.venv/bin/python benchmarks/rollout.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from toolgym.agents.base import AgentBase, AgentTurn, Conversation
from toolgym.envs.latency import LatencyEnv
from toolgym.envs.registration import make_async
from toolgym.rollout import RolloutConfig, RolloutManager


class BatchingModel(AgentBase):
    """Serves pending requests in batches; each batch costs ``tokens * per_token_s``."""

    def __init__(self, tokens: int = 20, per_token_s: float = 0.002, max_batch: int = 64) -> None:
        self.tokens, self.per_token_s, self.max_batch = tokens, per_token_s, max_batch
        self.pending: list[asyncio.Future[AgentTurn]] = []
        self.wakeup = asyncio.Event()
        self.busy_s = 0.0
        self.batches = 0
        self._server = asyncio.ensure_future(self._serve())

    async def act(self, conversation: Conversation) -> AgentTurn:
        future: asyncio.Future[AgentTurn] = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        self.wakeup.set()
        return await future

    async def _serve(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.pending:
                batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch:]
                start = time.perf_counter()
                await asyncio.sleep(self.tokens * self.per_token_s)
                self.busy_s += time.perf_counter() - start
                self.batches += 1
                for f in batch:
                    if not f.done():
                        f.set_result(AgentTurn("good", token_ids=[1] * self.tokens))

    async def aclose(self) -> None:
        self._server.cancel()


ENV = dict(latency_s=0.01, tail_s=0.5, tail_p=0.1, turns=4)


async def lock_step(episodes: int, width: int) -> tuple[float, float]:
    """Batches of ``width`` episodes; every turn waits for the slowest env step."""
    model = BatchingModel()
    start = time.perf_counter()
    for first in range(0, episodes, width):
        envs = [LatencyEnv(**ENV, seed=first + i) for i in range(width)]
        await asyncio.gather(*(e.areset(options={"task_id": "t0"}) for e in envs))
        live = envs
        while live:
            turns = await asyncio.gather(*(model.act(Conversation([])) for _ in live))
            results = await asyncio.gather(
                *(e.astep(t.text) for e, t in zip(live, turns, strict=True))
            )
            live = [e for e, r in zip(live, results, strict=True) if not (r[2] or r[3])]
    wall = time.perf_counter() - start
    await model.aclose()
    return episodes / wall, model.busy_s / wall


async def async_manager(episodes: int, width: int) -> tuple[float, float]:
    model = BatchingModel()
    config = RolloutConfig("toolgym-test/Latency-v0", concurrency=width, split=None, env_kwargs=ENV)
    manager = RolloutManager(config, model)
    start = time.perf_counter()
    done = [t async for t in manager.run(["t0"], samples=episodes)]
    wall = time.perf_counter() - start
    await model.aclose()
    assert len(done) == episodes
    return episodes / wall, model.busy_s / wall


async def main(episodes: int, width: int) -> None:
    make_async("toolgym-test/Latency-v0")  # registered by importing toolgym.envs.latency
    ls_rate, ls_busy = await lock_step(episodes, width)
    as_rate, as_busy = await async_manager(episodes, width)
    print(f"env: {ENV['turns']} turns, tool latency {ENV['latency_s'] * 1000:.0f} ms with "
          f"p={ENV['tail_p']} of {ENV['tail_s'] * 1000:.0f} ms; model: 20 tokens x 2 ms per batch; "
          f"{episodes} episodes, {width} in flight")
    print("| loop | episodes/s | model busy |\n|---|---:|---:|")
    print(f"| lock-step | {ls_rate:.1f} | {ls_busy:.0%} |")
    print(f"| async RolloutManager | {as_rate:.1f} | {as_busy:.0%} |")
    print(f"speed-up: {as_rate / ls_rate:.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1024)
    parser.add_argument("--width", type=int, default=128)
    args = parser.parse_args()
    asyncio.run(main(args.episodes, args.width))
