"""Tiny local models shared by the agent tests (built once per session, no hub access)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.tiny_model import build_tiny_model, train_tiny_model

ADDITION = [
    f"<|im_start|>user\n{a}+{b}<|im_end|>\n<|im_start|>assistant\n{a + b}<|im_end|>\n"
    for a in range(3)
    for b in range(3)
]


@pytest.fixture(scope="session")
def chatml_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("chatml"), chat_template="chatml")


@pytest.fixture(scope="session")
def llama3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("llama3"), chat_template="llama3")


@pytest.fixture(scope="session")
def think_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("think"), chat_template="chatml_drop_think")


@pytest.fixture(scope="session")
def stopping_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ChatML model trained to answer "a+b" with the sum and its end-of-turn token."""
    path = build_tiny_model(tmp_path_factory.mktemp("stopping"), chat_template="chatml")
    return train_tiny_model(path, ADDITION, steps=40, lr=1e-2)
