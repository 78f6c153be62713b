"""Refactoring the model zoo (EncoderDecoder base, shared blocks, registration from the class) must not change
any state_dict: checkpoints saved before load after. The reference is ``tests/data/model_state_keys.json``, the
keys and shapes of every registered model and encoder variant, dumped from main before the refactor;
models are built on the ``meta`` device (shapes only, no memory)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from segstudio.models import get_model, list_models

REFERENCE = json.loads((Path(__file__).parent / "data" / "model_state_keys.json").read_text())["configs"]


def _fingerprint(name: str, kwargs: dict) -> tuple[int, str]:
    with torch.device("meta"):
        model = get_model(name, 7, pretrained=False, **kwargs)
    text = "\n".join(f"{k}:{'x'.join(map(str, v.shape))}" for k, v in sorted(model.state_dict().items()))
    return len(model.state_dict()), hashlib.sha256(text.encode()).hexdigest()


def test_every_registered_model_is_in_the_reference():
    assert sorted({cfg.split(" ", 1)[0] for cfg in REFERENCE}) == list_models()


@pytest.mark.parametrize("config", sorted(REFERENCE))
def test_state_dict_keys_and_shapes_unchanged(config):
    name, kwargs = config.split(" ", 1)
    count, digest = _fingerprint(name, json.loads(kwargs))
    assert count == REFERENCE[config]["keys"], f"{config}: {count} state_dict entries, reference {REFERENCE[config]['keys']}"
    assert digest == REFERENCE[config]["sha256"], f"{config}: state_dict keys or shapes changed"
