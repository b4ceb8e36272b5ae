"""Step-0 agreement between the sampler's logprobs and the trainer's recomputation.

On-policy, before any update, the trainer's ratio ``pi / pi_behaviour`` must be
exactly 1: any other value is a bias the sampler and the trainer disagree on
(top-p truncation the trainer does not apply, a checkpoint's
``generation_config.json`` leaking into sampling, ...). This script trains one
GRPO step of the tiny test model on the toy Digits env and prints the step's
``ratio_mean`` (and, where the trainer logs them, the mismatch metrics), for

- ``top_p``: sampling at T=0.7, top_p=0.8;
- ``poisoned``: T=1, top_p=1 from a checkpoint whose ``generation_config.json``
  asks for min_p 0.95, temperature 0.05, repetition_penalty 3, top_k 1, do_sample.

A leak of the checkpoint's sampling knobs need not show in the ratio (the
recorded logprobs can be the untouched ones while the draw is near-greedy),
so it also prints the share of sampled tokens that are the model's argmax:
~3 % for a T=1 draw from the near-uniform tiny model, 100 % under top_k 1.

Run: ``python -m benchmarks.sampler_mismatch`` (~15 s on one core).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch

from tests.helpers.tiny_model import build_tiny_model
from tests.trainers.conftest import grpo_config
from toolgym.agents import Conversation, SamplingParams
from toolgym.agents.hf import HFAgent
from toolgym.trainers.grpo import GRPOTrainer

POISON = {"min_p": 0.95, "temperature": 0.05, "repetition_penalty": 3.0, "top_k": 1,
          "do_sample": True}
KEYS = ("ratio_mean", "approx_kl", "mismatch_abs_mean", "mismatch_abs_max",
        "mismatch_ratio_mean")


def poison(model_dir: Path) -> Path:
    """Write the sampling knobs of ``POISON`` into the checkpoint's generation_config.json."""
    path = model_dir / "generation_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **POISON}))
    return model_dir


def step0(model_dir: Path, run_dir: Path, **sampling: float) -> dict[str, float]:
    """Metrics of one GRPO step on the toy env (2 turns, 8 groups x 4)."""
    cfg = grpo_config(run_dir, model_dir, total_steps=1, groups_per_step=8, export_final=False,
                      sampling={"max_new_tokens": 8, **sampling})
    history = GRPOTrainer(cfg, echo=None).train()
    return {k: history[0][k] for k in KEYS if k in history[0]}


def argmax_share(model_dir: Path, n: int = 16) -> float:
    """Share of the tokens an HFAgent samples at T=1 that are its model's argmax."""
    agent = HFAgent(model_dir, seed=0, sampling=SamplingParams(max_new_tokens=16))
    hits = total = 0
    for i in range(n):
        turn = agent.act_sync(Conversation([{"role": "user", "content": f"task {i}"}]))
        ids = torch.tensor([turn.prompt_token_ids + turn.token_ids])
        with torch.no_grad():
            logits = agent.model(input_ids=ids).logits[0, len(turn.prompt_token_ids) - 1 : -1]
        hits += int((logits.argmax(-1) == torch.tensor(turn.token_ids)).sum())
        total += len(turn.token_ids)
    agent.close()
    return hits / total


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="mismatch-"))
    plain = build_tiny_model(root / "plain")
    poisoned = poison(build_tiny_model(root / "poisoned"))
    rows = {"top_p (T=0.7, top_p=0.8)": step0(plain, root / "r1", temperature=0.7, top_p=0.8),
            "poisoned generation_config (T=1)": step0(poisoned, root / "r2"),
            "plain (T=1)": step0(plain, root / "r3")}
    for name, metrics in rows.items():
        shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        print(f"{name:36s} {shown}")
    for name, path in (("plain", plain), ("poisoned", poisoned)):
        print(f"argmax share of T=1 samples, {name:9s} {argmax_share(path):.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
