"""A class edit carries through the model's class mapping into the next fine-tune (issue 31 item 2): each class
inherits the classifier row of its name or former name (:func:`segstudio.core.class_mapping.head_rows`,
:func:`segstudio.engine.checkpoint.copy_head_rows`), a class the model never had starts fresh."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import TINY_UNET
from segstudio.core import ClassSpec
from segstudio.engine import CheckpointError, load_checkpoint, save_checkpoint, train_on_folder
from segstudio.engine.checkpoint import copy_head_rows, load_state_into, new_card
from segstudio.engine.finetune import finetune_config
from segstudio.core.class_mapping import head_rows
from segstudio.io.project import Project
from segstudio.models import get_model, list_models


# -- the pure mapping ---------------------------------------------------------------------------------------------------
def test_head_rows_same_rename_reorder_add_delete_unrelated():
    old = ("road", "car", "tree")
    assert head_rows(old, old, None) == [0, 1, 2]
    assert head_rows(old, ("tree", "road", "car"), {}) == [2, 0, 1]  # reorder
    assert head_rows(old, ("road", "vehicle", "tree"), {"car": "vehicle"}) == [0, 1, 2]  # rename in place
    assert head_rows(old, ("road", "vehicle", "tree"), None) == [0, None, 2]  # the rename unknown: a new class
    assert head_rows(old, ("road", "vehicle", "tree", "sky"), {"car": "vehicle"}) == [0, 1, 2, None]  # rename + add
    assert head_rows(old, ("tree", "road"), {}) == [2, 0]  # delete car (and reorder)
    assert head_rows(old, ("a", "b", "c"), {}) == [None, None, None]  # unrelated, same count
    assert head_rows((), ("a",), None) == [None] and head_rows(old, (), None) == []


def test_head_rows_own_name_wins_and_a_merge_takes_the_first():
    # an alias whose target answers to its own old name does not steal that class's row
    assert head_rows(("a", "b"), ("b",), {"a": "b"}) == [1]
    # car and truck both renamed into vehicle: the first of them in the old order
    assert head_rows(("truck", "car"), ("vehicle",), {"car": "vehicle", "truck": "vehicle"}) == [0]
    # an alias to a class that is not in the new list reaches nothing
    assert head_rows(("a",), ("x",), {"a": "gone"}) == [None]


def test_head_rows_refuses_repeated_names():
    with pytest.raises(ValueError, match="old class names repeat"):
        head_rows(("a", "a"), ("a",), None)
    with pytest.raises(ValueError, match="new class names repeat"):
        head_rows(("a",), ("a", "a"), None)


# -- copying rows into a model ------------------------------------------------------------------------------------------
def _unet(k: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return get_model("unet", k, **TINY_UNET).eval()


def _head(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if k.startswith("classifier.")}


def test_load_state_into_with_rows_moves_rows_keeps_body_and_fresh_rows():
    old = _unet(3, seed=1)
    new = _unet(4, seed=2)
    init = _head(new)
    fresh = load_state_into(new, old.state_dict(), head_rows=[2, None, 0, 1])
    assert sorted(fresh) == ["classifier.bias", "classifier.weight"]  # a class is new: the head is fresh
    sd, od = new.state_dict(), old.state_dict()
    for k in ("classifier.weight", "classifier.bias"):
        for i, j in enumerate([2, None, 0, 1]):
            assert torch.equal(sd[k][i], od[k][j] if j is not None else init[k][i]), (k, i)
    body = [k for k in od if not k.startswith("classifier.")]
    assert body and all(torch.equal(sd[k], od[k]) for k in body)
    # every class mapped (a delete + reorder): nothing is fresh
    assert load_state_into(_unet(2, seed=3), old.state_dict(), head_rows=[2, 0]) == []


@pytest.mark.filterwarnings("ignore:.*meta parameter:UserWarning")  # meta tensors: shapes only, no values to copy
@pytest.mark.parametrize("name", list_models())
def test_rows_cover_exactly_the_class_dependent_keys_of_every_architecture(name):
    """11 → 3 classes with rows: the keys assembled (fresh, as a class is new) are exactly those whose shape depends
    on the class count; a reorder of the same count loads without error and leaves nothing fresh."""
    with torch.device("meta"):
        src, dst, same = (get_model(name, k, pretrained=False) for k in (11, 3, 11))
    sd_src, sd_dst = src.state_dict(), dst.state_dict()
    differing = {k for k in sd_dst if sd_dst[k].shape != sd_src[k].shape}
    assert set(load_state_into(dst, sd_src, head_rows=[4, None, 0])) == differing
    assert load_state_into(same, sd_src, head_rows=list(range(10, -1, -1))) == []


def test_a_reordered_class_by_class_head_is_the_same_function_permuted():
    """A class × class tensor (FCN's upscore, GCN's refinement) is mapped on both dims."""

    class Net(torch.nn.Module):
        def __init__(self, k):
            super().__init__()
            self.body = torch.nn.Conv2d(3, 6, 1)
            self.classifier = torch.nn.Sequential(torch.nn.Conv2d(6, k, 1), torch.nn.ConvTranspose2d(k, k, 4, stride=2))

        def forward(self, x):
            return self.classifier(self.body(x))

    torch.manual_seed(0)
    old, new = Net(3), Net(3)
    perm = [1, 2, 0]
    new.load_state_dict({k: v for k, v in old.state_dict().items() if k.startswith("body.")}, strict=False)
    assert copy_head_rows(new, old.state_dict(), perm) == [f"classifier.{m}.{p}" for m in (0, 1) for p in ("weight", "bias")]
    x = torch.randn(1, 3, 5, 5)
    with torch.no_grad():
        assert torch.allclose(new(x), old(x)[:, perm], atol=1e-6)


def test_copy_head_rows_errors_name_the_key():
    old = _unet(3, seed=1).state_dict()
    with pytest.raises(CheckpointError, match="outside the checkpoint's 3 classes"):
        copy_head_rows(_unet(2, seed=0), old, [0, 3])
    with pytest.raises(CheckpointError, match="classifier.weight"):
        copy_head_rows(_unet(2, seed=0), {**old, "classifier.weight": torch.zeros(3, 5, 1, 1)}, [0, 1])


# -- a fine-tune after a class edit -------------------------------------------------------------------------------------
def _parent(tmp_path, names) -> tuple:
    """A tiny U-Net checkpoint of classes ``names``; returns (its path, its state dict)."""
    model = _unet(len(names), seed=5)
    path = save_checkpoint(tmp_path / "parent", model, new_card("unet", ClassSpec(tuple(names)), dict(TINY_UNET), name="parent"))
    return path, load_checkpoint(path).model.state_dict()


def _app(root, names, aliases=None, n: int = 2, size: int = 48):
    """An app folder: ``n`` random images labelled in vertical stripes of every class of ``names``, its classes in
    labels/classes.json and ``aliases`` (the renames) in segstudio.json."""
    classes = ClassSpec(tuple(names))
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "classes.json").write_text(json.dumps(classes.to_json()))
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / f"im{i}.png")
        m = (np.arange(size)[None, :] * len(names) // size).repeat(size, 0).astype(np.uint8)
        Image.fromarray(m).save(root / "labels" / f"im{i}.png")
    if aliases:
        Project(root, classes=classes, class_aliases=dict(aliases)).save()
    return root


def _finetune(app, init, run, monkeypatch, **config):
    """A one-step fine-tune of ``init`` on ``app`` (``config``: more :func:`finetune_config` fields). Returns (the
    classifier as the fine-tune built it, before anything was loaded into it; the weights the training started
    from, right after loading; the new card)."""
    import segstudio.engine.finetune as finetune_mod

    built, start = {}, {}

    def build_model(card, *a, **kw):
        model = real_build(card, *a, **kw)
        built.update(_head(model))
        return model

    class Trainer(finetune_mod.Trainer):
        def __init__(self, model, *a, **kw):
            start.update({k: v.clone() for k, v in model.state_dict().items()})
            super().__init__(model, *a, **kw)

    real_build = finetune_mod.build_model
    monkeypatch.setattr(finetune_mod, "build_model", build_model)
    monkeypatch.setattr(finetune_mod, "Trainer", Trainer)
    final = train_on_folder(app, run, init=init, config=finetune_config(max_steps=1, device="cpu", **config))
    return built, start, json.loads(final.with_suffix(".json").read_text())


def test_finetune_after_reorder_starts_from_each_class_own_row(tmp_path, monkeypatch):
    """Before: the rows were loaded by position, so a reordered class started from another class's row."""
    init, parent = _parent(tmp_path, ("a", "b", "c"))
    app = _app(tmp_path / "app", ("c", "a", "b"))
    _, sd, card = _finetune(app, init, tmp_path / "run", monkeypatch)
    for k in ("classifier.weight", "classifier.bias"):
        assert torch.equal(sd[k], parent[k][[2, 0, 1]]), k
    tr = card["training"]
    assert tr["head_rows"] == {"c": "c", "a": "a", "b": "b"}
    assert "new" not in tr["lr_groups"]  # every class kept its row: no new head


def test_finetune_after_rename_and_add_keeps_the_renamed_row(tmp_path, monkeypatch):
    """Before: a rename + an added class re-initialised the whole classifier; the renamed class lost its row."""
    init, parent = _parent(tmp_path, ("a", "b"))
    app = _app(tmp_path / "app", ("a", "bee", "c"), aliases={"b": "bee"})
    fresh, sd, card = _finetune(app, init, tmp_path / "run", monkeypatch)
    for k in ("classifier.weight", "classifier.bias"):
        assert torch.equal(sd[k][0], parent[k][0]) and torch.equal(sd[k][1], parent[k][1]), k
        assert torch.equal(sd[k][2], fresh[k][2]), k  # the added class: fresh init
    tr = card["training"]
    assert tr["head_rows"] == {"a": "a", "bee": "b", "c": None}
    assert "new" in tr["lr_groups"]


def test_finetune_on_unrelated_classes_of_the_same_count_gets_a_new_head(tmp_path, monkeypatch):
    """Before: same class count, so the rows of unrelated classes were reused by position, at the old rate."""
    init, parent = _parent(tmp_path, ("a", "b"))
    app = _app(tmp_path / "app", ("x", "y"))
    fresh, sd, card = _finetune(app, init, tmp_path / "run", monkeypatch)
    for k in ("classifier.weight", "classifier.bias"):
        assert torch.equal(sd[k], fresh[k]) and not torch.equal(sd[k], parent[k]), k
    body = [k for k in parent if not k.startswith("classifier.") and "running" not in k and "num_batches" not in k]
    assert all(torch.equal(sd[k], parent[k]) for k in body)  # the rest is the parent's
    tr = card["training"]
    assert tr["head_rows"] == {"x": None, "y": None}
    assert "new" in tr["lr_groups"]


def test_one_rate_for_a_new_head_still_warms_up_the_pretrained_layers(tmp_path, monkeypatch):
    """An explicit ``lr_head`` equal to ``lr`` used to merge the new classifier into one AdamW group, so the
    pretrained layers' warm-up (``warmup_fraction``) was silently dropped; now the groups stay apart and the card
    records the warm-up the run applied."""
    init, _ = _parent(tmp_path, ("a", "b"))
    app = _app(tmp_path / "app", ("x", "y"))
    _, _, card = _finetune(app, init, tmp_path / "run", monkeypatch, lr=1e-3, lr_head=1e-3, warmup_fraction=1.0)
    tr = card["training"]
    assert tr["lr_groups"] == {"pretrained": 1e-3, "new": 1e-3}
    assert tr["schedule"]["warmup_steps"] == 1
    _, _, card = _finetune(app, init, tmp_path / "run2", monkeypatch, lr=1e-3, lr_head=1e-3, warmup_fraction=0.0)
    assert card["training"]["lr_groups"] == {"all": 1e-3}  # no warm-up, one rate: one group
