"""The trained policy: a causal LM loaded from a model directory, full-parameter or LoRA.

One object answers the questions a trainer has about its model: which
parameters train (all of them, or the LoRA adapter's), what the *reference*
policy is (the KL anchor), how to save and reload the trainable weights
exactly (checkpoints), and how to export an ordinary model directory.

The reference policy costs nothing with LoRA: it is the same module with the
adapter switched off (``PeftModel.disable_adapter``), so before the first update
its log-probs equal the base model's exactly. A full-parameter run keeps a
frozen copy, made only when a KL term needs it.

    >>> import tempfile
    >>> from tests.helpers.tiny_model import build_tiny_model
    >>> policy = load_policy(ModelConfig(path=str(build_tiny_model(tempfile.mkdtemp())), lora=True))
    >>> policy.num_trainable() < policy.num_parameters()
    True
"""

from __future__ import annotations

import contextlib
import copy
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from toolgym.agents.templates import ChatTokenizer
from toolgym.errors import ConfigError
from toolgym.trainers.config import option

__all__ = ["ModelConfig", "Policy", "disable_dropout", "load_policy"]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class ModelConfig:
    """Which model to train and how (full-parameter or LoRA)."""

    path: str = option("", "Model directory to load with from_pretrained (weights + tokenizer).")
    dtype: Literal["float32", "bfloat16", "float16"] = option(
        "float32", "Parameter dtype. float32 on CPU; bfloat16 on recent GPUs.")
    device: str = option("cpu", "Device to train on: cpu, cuda, cuda:1, ...")
    lora: bool = option(False, "Train a LoRA adapter instead of every parameter.")
    lora_r: int = option(8, "LoRA rank.")
    lora_alpha: int = option(16, "LoRA scaling numerator (the update is scaled by alpha / r).")
    lora_dropout: float = option(0.0, "Dropout on the LoRA input during training.")
    lora_target_modules: tuple[str, ...] = option(
        ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
        "Module names LoRA wraps; ['all-linear'] wraps every linear layer but the head.")
    gradient_checkpointing: bool = option(
        False, "Recompute activations in the backward pass: less memory, ~30% more compute.")

    def __post_init__(self) -> None:
        if self.lora and self.lora_r < 1:
            raise ConfigError(f"model.lora_r must be >= 1; got {self.lora_r}.")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"model.lora_dropout must be in [0, 1); got {self.lora_dropout}.")


class Policy:
    """A causal LM being trained, its tokenizer, and its reference policy.

    Args:
        model: The module that trains: a ``PreTrainedModel`` or a ``PeftModel``.
        chat: Tokenizer, chat template and end-of-turn ids.
        reference: A frozen copy for full-parameter runs with a KL term; None otherwise.
    """

    def __init__(self, model: Any, chat: ChatTokenizer, *, reference: Any | None = None) -> None:
        self.model = model
        self.chat = chat
        self._reference = reference

    @property
    def is_lora(self) -> bool:
        """True when only a LoRA adapter trains."""
        return hasattr(self.model, "peft_config")

    @property
    def device(self) -> torch.device:
        """Where the parameters live."""
        return next(self.model.parameters()).device

    @property
    def pad_id(self) -> int:
        """Id used to pad training batches (its positions are masked out)."""
        pad = self.chat.tokenizer.pad_token_id
        return self.chat.eos_token_ids[0] if pad is None else int(pad)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters the optimiser updates."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def num_trainable(self) -> int:
        return sum(p.numel() for p in self.trainable_parameters())

    @contextlib.contextmanager
    def reference(self) -> Iterator[Any]:
        """A module computing the reference policy's logits (use under ``torch.no_grad``).

        Raises:
            ConfigError: a full-parameter policy loaded without a reference copy.
        """
        if self.is_lora:
            with self.model.disable_adapter():
                yield self.model
            return
        if self._reference is None:
            raise ConfigError("This full-parameter policy has no reference copy: load it with "
                              "load_policy(..., reference=True) (a kl_coef > 0 does that).")
        yield self._reference

    # ----------------------------------------------------------- weights
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights a checkpoint must hold: the adapter's (LoRA) or the whole model's."""
        if self.is_lora:
            from peft import get_peft_model_state_dict

            return {k: v.detach().clone() for k, v in get_peft_model_state_dict(self.model).items()}
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def save(self, directory: str | Path) -> Path:
        """Write the trainable weights in Hugging Face format (adapter dir or model dir)."""
        out = Path(directory)
        self.model.save_pretrained(out, safe_serialization=True)
        return out

    def load(self, directory: str | Path) -> None:
        """Load weights written by :meth:`save` into this policy, exactly.

        Raises:
            ConfigError: the directory holds no weights, or weights that do not fit.
        """
        from safetensors.torch import load_file

        files = sorted(Path(directory).glob("*.safetensors"))
        if not files:
            raise ConfigError(f"No *.safetensors weights in {directory}.")
        state: dict[str, torch.Tensor] = {}
        for f in files:
            state.update(load_file(str(f), device=str(self.device)))
        if self.is_lora:
            from peft import set_peft_model_state_dict

            result = set_peft_model_state_dict(self.model, state)
            if result.unexpected_keys:
                raise ConfigError(f"Adapter in {directory} does not fit: "
                                  f"unexpected {result.unexpected_keys[:3]}")
            return
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        tied = _tied_names(self.model)
        if unexpected or set(missing) - tied:
            raise ConfigError(f"Weights in {directory} do not fit the model: missing "
                              f"{sorted(set(missing) - tied)[:3]}, unexpected {unexpected[:3]}")

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """Plain model weights (LoRA merged in), as an inference engine loads them."""
        if not self.is_lora:
            return {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return _merged_copy(self.model).state_dict()

    def inference_copy(self) -> Any:
        """A frozen plain-model copy (LoRA merged in) for an agent that must not share weights."""
        model = _merged_copy(self.model) if self.is_lora else copy.deepcopy(self.model)
        return model.requires_grad_(False).eval()

    def merge_and_save(self, directory: str | Path) -> Path:
        """Write an ordinary model directory (LoRA merged in) with the tokenizer.

        The result loads with ``AutoModelForCausalLM.from_pretrained`` and serves
        as ``model.path`` of the next run (SFT, then GRPO). The training
        module is left as it was.
        """
        out = Path(directory)
        model = _merged_copy(self.model) if self.is_lora else self.model
        model.save_pretrained(out, safe_serialization=True)
        self.chat.tokenizer.save_pretrained(out)
        generation = getattr(model, "generation_config", None)
        if generation is not None:
            generation.save_pretrained(out)
        (out / "toolgym_export.json").write_text(json.dumps({"lora_merged": self.is_lora}))
        return out


def _merged_copy(peft_model: Any) -> Any:
    """A deep copy of ``peft_model`` with the adapter merged in (the original keeps training)."""
    with _quiet_peft():
        return copy.deepcopy(peft_model).merge_and_unload()


def _tied_names(model: torch.nn.Module) -> set[str]:
    """Names of parameters that share storage with another (e.g. a tied ``lm_head``)."""
    all_names = {n for n, _ in model.named_parameters(remove_duplicate=False)}
    unique = {n for n, _ in model.named_parameters()}
    return all_names - unique


def load_policy(config: ModelConfig, *, reference: bool = False) -> Policy:
    """Load the model and tokenizer of ``config.path`` and make it trainable.

    Args:
        config: The model section of a trainer config.
        reference: Whether a reference policy is needed (a KL term). Free for
            LoRA; a frozen copy for full-parameter training.

    Raises:
        ConfigError: ``config.path`` is empty or holds no model.
    """
    from transformers import AutoModelForCausalLM

    if not config.path or not Path(config.path).is_dir():
        raise ConfigError(f"model.path {config.path!r} is not a model directory; point it at a "
                          "directory written by save_pretrained (or an SFT run's export).")
    model = AutoModelForCausalLM.from_pretrained(config.path, dtype=_DTYPES[config.dtype])
    model = model.to(config.device).eval()
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    ref = None
    if config.lora:
        model = _wrap_lora(model, config)
    elif reference:
        ref = copy.deepcopy(model).requires_grad_(False).eval()
    return Policy(model, ChatTokenizer.from_pretrained(config.path), reference=ref)


def disable_dropout(model: torch.nn.Module) -> None:
    """Set every dropout in ``model`` to 0: ``nn.Dropout`` modules (LoRA's among them) and the
    ``attention_dropout`` rate attention layers apply functionally.

    Dropout makes the trainer's train-mode log-probs differ from the sampler's
    eval-mode ones at random, so the on-policy ratio is not 1; TRL disables it
    for RL (``disable_dropout``) for the same reason.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):
            # torch types Module.__setattr__ for tensors and modules only
            module.attention_dropout = 0.0  # type: ignore[assignment]


def _wrap_lora(model: Any, config: ModelConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    targets: Any = list(config.lora_target_modules)
    if targets == ["all-linear"]:
        targets = "all-linear"
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=targets,
                      task_type="CAUSAL_LM")
    with _quiet_peft():
        return get_peft_model(model, lora).eval()


@contextlib.contextmanager
def _quiet_peft() -> Iterator[None]:
    """peft 0.21 reads a property transformers 5 deprecated; that warning is not the user's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*",
                                category=FutureWarning)
        yield
