"""segstudio.engine + metrics: training lowers the loss, confusion-matrix metrics, evaluation,
checkpoints (round trip, new heads, clear errors) and fine-tuning on an app folder."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torchvision.transforms import v2

from helpers import TINY_UNET, camvid_stems, make_app_folder, make_dataset_folder
from segstudio.core import IGNORE_INDEX, ClassSpec
from segstudio.data import SegmentationDataset, eval_transforms
from segstudio.engine import (
    CancelToken,
    Cancelled,
    CheckpointError,
    Predictor,
    TrainConfig,
    Trainer,
    evaluate,
    load_checkpoint,
    save_checkpoint,
    train_on_folder,
)
from segstudio.engine.checkpoint import load_state_into, new_card
from segstudio.io import find_samples, load_classes, read_image, read_index_png
from segstudio.metrics import ConfusionMatrix
from segstudio.models import get_model


def camvid_classes(camvid) -> ClassSpec:
    return load_classes(camvid / "classes.json")


def tiny_unet(num_classes: int, seed: int = 0) -> torch.nn.Module:
    """A tiny U-Net with non-trivial BatchNorm statistics (so a lost buffer would show)."""
    torch.manual_seed(seed)
    model = get_model("unet", num_classes, **TINY_UNET)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 3, 32, 48) * 2 + 0.5)
    return model.eval()


def save_tiny_checkpoint(out_dir, classes: ClassSpec, seed: int = 0, **kw):
    model = tiny_unet(classes.num_classes, seed)
    return save_checkpoint(out_dir, model, new_card("unet", classes, dict(TINY_UNET), name="tiny"), **kw), model


def ref_confusion(targets, preds, k):
    """Confusion matrix by explicit counting (independent of ConfusionMatrix)."""
    mat = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(targets, preds):
        t, p = np.asarray(t).ravel(), np.asarray(p).ravel()
        for ti in range(k):
            sel = t == ti
            mat[ti] += np.array([(p[sel] == pi).sum() for pi in range(k)])
    return mat


def ref_iou(mat):
    out = []
    for c in range(len(mat)):
        tp, fn, fp = mat[c, c], mat[c].sum() - mat[c, c], mat[:, c].sum() - mat[c, c]
        out.append(tp / (tp + fn + fp) if tp + fn + fp else np.nan)
    return np.array(out)


# --------------------------------------------------------------------------------------------
# (a) training


def test_a_few_training_steps_lower_the_loss(camvid, tmp_path):
    """DeepLab v3+ with the ImageNet MobileNetV2 encoder on 8 downscaled CamVid train images."""
    samples, classes = find_samples(camvid, "train")
    ds = SegmentationDataset(samples[:8], 11, v2.Compose([v2.Resize((96, 128)), eval_transforms()]))
    torch.manual_seed(0)
    model = get_model("deeplabv3plus", 11, pretrained=True)
    assert model.encoder.pretrained, "ImageNet MobileNetV2 weights were not found (conftest seeds TORCH_HOME)"
    events = []
    cfg = TrainConfig(epochs=10, max_steps=6, batch_size=2, lr=1e-3, crop_size=(96, 128), device="cpu", seed=0)
    card = new_card("deeplabv3plus", classes, {"encoder": "mobilenet_v2"})
    trainer = Trainer(model, card, ds, None, cfg, tmp_path / "run", [lambda e, info: events.append((e, dict(info)))])
    final = trainer.fit()

    losses = [info["loss"] for e, info in events if e == "step"]
    assert len(losses) == 6 and all(np.isfinite(losses))
    first, last = np.mean(losses[:2]), np.mean(losses[-2:])
    assert last < 0.85 * first, f"loss did not go down: {losses}"
    steps = [info["global_step"] for e, info in events if e == "step"]
    assert steps == [1, 2, 3, 4, 5, 6]
    lrs = [info["lr"] for e, info in events if e == "step"]
    assert all(a > b for a, b in zip(lrs, lrs[1:])) and lrs[0] < 1e-3  # poly decay
    assert [e for e, _ in events if e == "epoch"] == ["epoch", "epoch"]  # 4 steps per epoch
    assert events[-1][0] == "done" and events[-1][1]["path"] == str(final)

    assert final == tmp_path / "run" / "model.safetensors"
    for name in ("model.safetensors", "model.json", "last.safetensors", "last.json", "last_state.pt", "history.json"):
        assert (tmp_path / "run" / name).is_file(), name
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history) == 2 and history[-1]["train_loss"] == pytest.approx(np.mean(losses[4:]))
    loaded = load_checkpoint(final)
    assert loaded.card["training"]["steps_done"] == 6
    # The saved weights are the trained ones.
    saved = load_file(str(final))
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(saved[k], v.cpu()), k


def test_cancel_stops_training_without_checkpoint(camvid, tmp_path):
    samples, classes = find_samples(camvid, "train")
    ds = SegmentationDataset(samples[:2], 11, v2.Compose([v2.Resize((32, 48)), eval_transforms()]))
    token = CancelToken()
    token.cancel()
    trainer = Trainer(
        tiny_unet(11), new_card("unet", classes, dict(TINY_UNET)), ds, None, TrainConfig(device="cpu"), tmp_path, cancel=token
    )
    with pytest.raises(Cancelled):
        trainer.fit()
    assert not (tmp_path / "model.safetensors").exists()


# --------------------------------------------------------------------------------------------
# (b) confusion matrix


def test_confusion_matrix_hand_computed():
    target = np.array([[0, 0, 1], [2, IGNORE_INDEX, 1]])
    pred = np.array([[0, 1, 1], [2, 0, 0]])
    cm = ConfusionMatrix(4)
    cm.update(target, pred)
    expected = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(cm.mat, expected)
    assert cm.pixel_accuracy == pytest.approx(3 / 5)
    np.testing.assert_allclose(cm.class_accuracy[:3], [1 / 2, 1 / 2, 1])
    assert np.isnan(cm.class_accuracy[3])
    np.testing.assert_allclose(cm.iou[:3], [1 / 3, 1 / 3, 1])
    assert np.isnan(cm.iou[3])
    assert cm.miou == pytest.approx(5 / 9)  # class 3 (absent everywhere) is skipped
    s = cm.summary(["a", "b", "c", "d"])
    assert s["iou"] == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1.0, "d": None})
    assert s["mean_class_accuracy"] == pytest.approx(2 / 3)
    assert s["miou"] == pytest.approx(5 / 9) and s["pixels"] == 5
    json.dumps(s)  # JSON-ready

    # A class that is only predicted has IoU 0 and counts in the mean.
    cm.update(np.array([2]), np.array([3]))
    assert cm.iou[3] == 0 and cm.iou[2] == pytest.approx(1 / 2)
    assert cm.miou == pytest.approx((1 / 3 + 1 / 3 + 1 / 2 + 0) / 4)


def test_confusion_matrix_accepts_tensors_and_checks_inputs():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([[0, 1], [2, 255]]), torch.tensor([[0, 2], [2, 7]]))  # 7 sits on an ignored pixel
    np.testing.assert_array_equal(cm.mat, [[1, 0, 0], [0, 0, 1], [0, 0, 1]])
    with pytest.raises(ValueError, match="differ"):
        cm.update(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="0..2"):
        cm.update(np.array([0, 1]), np.array([0, 3]))
    with pytest.raises(ValueError, match="0..2"):
        cm.update(np.array([5]), np.array([0]))
    empty = ConfusionMatrix(3)
    assert np.isnan(empty.pixel_accuracy) and np.isnan(empty.miou)
    assert empty.summary()["miou"] is None and empty.summary()["pixel_accuracy"] is None
    with pytest.raises(ValueError):
        ConfusionMatrix(0)


def test_confusion_matrix_merge_equals_one_pass():
    rng = np.random.default_rng(0)
    k = 5
    target = rng.integers(0, k, size=(4, 30, 40))
    target[rng.random(target.shape) < 0.1] = IGNORE_INDEX
    pred = np.where(rng.random(target.shape) < 0.6, np.where(target == IGNORE_INDEX, 0, target), rng.integers(0, k, target.shape))
    whole = ConfusionMatrix(k)
    whole.update(target, pred)
    a, b = ConfusionMatrix(k), ConfusionMatrix(k)
    for i in range(2):
        a.update(target[i], pred[i])
    for i in range(2, 4):
        b.update(target[i], pred[i])
    merged = a.merge(b)
    assert merged is a
    np.testing.assert_array_equal(merged.mat, whole.mat)
    np.testing.assert_array_equal(whole.mat, ref_confusion(target, pred, k))
    np.testing.assert_allclose(whole.iou, ref_iou(whole.mat))
    assert whole.miou == pytest.approx(np.nanmean(ref_iou(whole.mat)))
    valid = target != IGNORE_INDEX
    assert whole.pixel_accuracy == pytest.approx((target[valid] == pred[valid]).mean())
    with pytest.raises(ValueError, match="merge"):
        a.merge(ConfusionMatrix(k + 1))
    whole.reset()
    assert whole.mat.sum() == 0


# --------------------------------------------------------------------------------------------
# (c) evaluate


@pytest.fixture(scope="module")
def tiny_dataset(camvid, tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "camvid_small"
    return make_dataset_folder(
        root, camvid, {"train": camvid_stems(camvid, "train", 2), "val": camvid_stems(camvid, "val", 3)}
    )


class StubPredictor:
    def __init__(self, classes, fn):
        self.classes, self.fn = classes, fn

    def predict(self, image):
        return self.fn(image)


def test_evaluate_with_known_predictions(tiny_dataset):
    samples, classes = find_samples(tiny_dataset, "val")
    masks = {read_image(s.image).tobytes(): read_index_png(s.mask) for s in samples}

    # An oracle (ignore pixels predicted as class 0) scores 1.0 everywhere it can.
    def oracle(image):
        m = masks[image.tobytes()].copy()
        m[m == IGNORE_INDEX] = 0
        return m

    calls = []
    res = evaluate(StubPredictor(classes, oracle), tiny_dataset, "val", progress=lambda i, n: calls.append((i, n)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert res["images"] == 3 and res["split"] == "val"
    assert res["pixel_accuracy"] == 1.0 and res["miou"] == 1.0
    all_t = np.concatenate([m.ravel() for m in masks.values()])
    counts = np.bincount(all_t[all_t != IGNORE_INDEX], minlength=11)
    np.testing.assert_array_equal(np.array(res["confusion_matrix"]), np.diag(counts))
    assert res["pixels"] == counts.sum()
    for name, c in zip(classes.names, counts):
        assert res["iou"][name] == (1.0 if c else None)

    # Predicting "Road" (3) everywhere: IoU(Road) = road pixels / labelled pixels, 0 for the others present.
    res = evaluate(StubPredictor(classes, lambda im: np.full(im.shape[:2], 3, np.uint8)), tiny_dataset, "val")
    assert res["pixel_accuracy"] == pytest.approx(counts[3] / counts.sum())
    assert res["iou"]["Road"] == pytest.approx(counts[3] / counts.sum())
    present = np.flatnonzero(counts)
    assert res["miou"] == pytest.approx((counts[3] / counts.sum()) / len(present))


def test_evaluate_matches_own_confusion_matrix(tiny_dataset, tmp_path):
    classes = load_classes(tiny_dataset / "classes.json")
    ckpt, _ = save_tiny_checkpoint(tmp_path / "ck", classes, seed=3)
    predictor = Predictor(load_checkpoint(ckpt), device="cpu")
    res = evaluate(predictor, tiny_dataset, "val")

    samples, _ = find_samples(tiny_dataset, "val")
    targets = [read_index_png(s.mask) for s in samples]
    preds = [predictor.predict(read_image(s.image)) for s in samples]
    for p, t in zip(preds, targets):
        assert p.shape == t.shape and p.dtype == np.uint8 and p.max() < 11
    mat = ref_confusion(targets, preds, 11)
    np.testing.assert_array_equal(np.array(res["confusion_matrix"]), mat)
    assert res["pixel_accuracy"] == pytest.approx(np.trace(mat) / mat.sum())
    iou = ref_iou(mat)
    assert res["miou"] == pytest.approx(np.nanmean(iou))
    for name, v in zip(classes.names, iou):
        assert res["iou"][name] == (None if np.isnan(v) else pytest.approx(v))
    assert len(np.unique(np.concatenate([p.ravel() for p in preds]))) > 1  # a non-degenerate model


def test_evaluate_rejects_class_mismatch(tiny_dataset):
    with pytest.raises(ValueError, match="11 classes but the model predicts 3"):
        evaluate(StubPredictor(ClassSpec(("a", "b", "c")), None), tiny_dataset, "val")
    with pytest.raises(FileNotFoundError, match="test.txt"):
        evaluate(StubPredictor(load_classes(tiny_dataset / "classes.json"), None), tiny_dataset, "test")


def test_predictor_outputs(tmp_path):
    classes = ClassSpec(("a", "b", "c"))
    ckpt, model = save_tiny_checkpoint(tmp_path, classes)
    pred = Predictor(load_checkpoint(ckpt), device="cpu")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(37, 51, 3), dtype=np.uint8)
    proba = pred.predict_proba(image)
    assert proba.shape == (3, 37, 51) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(0), 1.0, atol=1e-5)
    labels = pred.predict(image)
    assert labels.shape == (37, 51) and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, proba.argmax(0))
    with pytest.raises(ValueError, match="one size"):
        pred.predict_logits([image, image[:10]])
    with pytest.raises(ValueError, match="uint8"):
        pred.predict(image.astype(np.float32))


# --------------------------------------------------------------------------------------------
# (d) checkpoints


@pytest.mark.parametrize("arch", ["unet", "deeplabv3plus"])
def test_checkpoint_round_trip_identical_outputs(tmp_path, arch):
    classes = ClassSpec(tuple(f"c{i}" for i in range(5)))
    kwargs = dict(TINY_UNET) if arch == "unet" else {"encoder": "mobilenet_v2", "output_stride": 16}
    torch.manual_seed(1)
    model = get_model(arch, 5, pretrained=False, **kwargs)
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64) * 3 + 1)  # move BN running statistics off their defaults
    model.eval()
    path = save_checkpoint(tmp_path / "run", model, new_card(arch, classes, kwargs, name="rt"))
    assert path == tmp_path / "run" / "model.safetensors" and (tmp_path / "run" / "model.json").is_file()
    loaded = load_checkpoint(tmp_path / "run")  # a run folder works too
    assert loaded.path == path and loaded.classes == classes and loaded.display_name == "rt"
    assert loaded.card["num_parameters"] == sum(p.numel() for p in model.parameters())
    assert loaded.card["weights_dtype"] == "float32" and loaded.card["format_version"] == 1
    assert not loaded.model.training
    sd_a, sd_b = model.state_dict(), loaded.model.state_dict()
    assert sd_a.keys() == sd_b.keys()
    for k in sd_a:
        assert torch.equal(sd_a[k], sd_b[k]), k
    x = torch.randn(1, 3, 48, 80)
    with torch.no_grad():
        assert torch.equal(model(x)["out"], loaded.model(x)["out"])

    half = save_checkpoint(tmp_path / "half", model, new_card(arch, classes, kwargs), half=True)
    assert half.stat().st_size < 0.6 * path.stat().st_size
    lh = load_checkpoint(half)
    assert lh.card["weights_dtype"] == "float16"
    assert all(v.dtype == sd_a[k].dtype for k, v in lh.model.state_dict().items())
    with torch.no_grad():
        a, b = model(x)["out"], lh.model(x)["out"]
    assert not torch.equal(a, b)
    torch.testing.assert_close(b, a, atol=0.05 * float(a.abs().max()), rtol=0.05)


def test_load_state_into_new_head_replaces_only_classifier():
    src = tiny_unet(11, seed=0)
    dst = tiny_unet(3, seed=1)
    dst_before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(CheckpointError) as ei:
        load_state_into(dst, src.state_dict())
    msg = str(ei.value)
    assert "classifier.weight: checkpoint (11, 4, 1, 1) vs model (3, 4, 1, 1)" in msg and "classifier.bias" in msg
    for k, v in dst.state_dict().items():
        assert torch.equal(v, dst_before[k]), "a failed load must not change the model"

    fresh = load_state_into(dst, src.state_dict(), allow_new_head=True)
    assert sorted(fresh) == ["classifier.bias", "classifier.weight"]
    src_sd = src.state_dict()
    for k, v in dst.state_dict().items():
        if k.startswith("classifier."):
            assert torch.equal(v, dst_before[k]), k  # left at its fresh initialisation
        else:
            assert torch.equal(v, src_sd[k]), k
    assert not torch.equal(dst_before["down.0.0.weight"], dst.state_dict()["down.0.0.weight"])


def test_load_state_into_other_mismatches_still_fail():
    src = tiny_unet(3, seed=0).state_dict()
    dst = tiny_unet(3, seed=1)
    bad = dict(src)
    key = "down.0.0.weight"
    bad[key] = torch.zeros(5, 3, 3, 3)
    with pytest.raises(CheckpointError, match=r"down\.0\.0\.weight: checkpoint \(5, 3, 3, 3\) vs model \(4, 3, 3, 3\)"):
        load_state_into(dst, bad, allow_new_head=True)
    missing = {k: v for k, v in src.items() if k != "up.0.bias"}
    with pytest.raises(CheckpointError, match=r"missing up\.0\.bias"):
        load_state_into(dst, missing)
    with pytest.raises(CheckpointError, match="unexpected extra.weight"):
        load_state_into(dst, {**src, "extra.weight": torch.zeros(1)})


def test_bad_checkpoints_raise_clear_errors(tmp_path):
    classes = ClassSpec(("a", "b"))
    good, _ = save_tiny_checkpoint(tmp_path / "good", classes)
    card = json.loads(good.with_suffix(".json").read_text())

    def variant(name, weights=None, card_obj=None, card_text=None):
        d = tmp_path / name
        d.mkdir()
        w = d / "model.safetensors"
        w.write_bytes(good.read_bytes() if weights is None else weights)
        if card_text is not None:
            (d / "model.json").write_text(card_text)
        elif card_obj is not None:
            (d / "model.json").write_text(json.dumps(card_obj))
        return w

    cases = {
        "no card": (variant("nocard"), "model card model.json is missing"),
        "bad json": (variant("badjson", card_text="{oops"), "invalid model card"),
        "no arch": (variant("noarch", card_obj={k: v for k, v in card.items() if k != "architecture"}), "lacks 'architecture'"),
        "bad classes": (variant("badcls", card_obj={**card, "classes": [{"id": 3, "name": "x"}]}), "invalid model card"),
        "unknown arch": (variant("unk", card_obj={**card, "architecture": "segformer9000"}), "unknown model 'segformer9000'"),
        "wrong shapes": (
            variant("shapes", card_obj={**card, "model_kwargs": {"depth": 2, "base_channels": 8}}),
            r"does not fit the model: .*checkpoint \(4, 3, 3, 3\) vs model \(8, 3, 3, 3\)",
        ),
        "wrong class count": (
            variant("k", card_obj={**card, "classes": ClassSpec(("a", "b", "c")).to_json()}),
            r"classifier.weight: checkpoint \(2, 4, 1, 1\) vs model \(3, 4, 1, 1\)",
        ),
        "corrupt weights": (variant("corrupt", weights=b"\x00" * 100, card_obj=card), "cannot read safetensors"),
        "missing": (tmp_path / "nowhere" / "model.safetensors", "no such checkpoint"),
        "empty dir": (tmp_path, "no such checkpoint"),
    }
    for label, (path, pattern) in cases.items():
        with pytest.raises(CheckpointError, match=pattern):
            load_checkpoint(path)
        assert issubclass(CheckpointError, ValueError), label

    pth = tmp_path / "model.pth"
    torch.save(tiny_unet(2).state_dict(), pth)
    with pytest.raises(CheckpointError, match="needs a model card"):  # .pth: weights_only, card required
        load_checkpoint(pth)


# --------------------------------------------------------------------------------------------
# (e) fine-tuning on an app folder


@pytest.fixture(scope="module")
def init_checkpoint(camvid, tmp_path_factory):
    path, _ = save_tiny_checkpoint(tmp_path_factory.mktemp("init"), camvid_classes(camvid), seed=5)
    return path


def test_train_on_app_folder_from_checkpoint(camvid, tmp_path, init_checkpoint):
    app = make_app_folder(tmp_path / "app", camvid, camvid_stems(camvid, "train", 2))
    out = tmp_path / "run"
    cfg = TrainConfig(epochs=1, max_steps=2, batch_size=2, crop_size=(64, 64), device="cpu")
    final = train_on_folder(app, out, init=init_checkpoint, config=cfg, extra_card={"name": "my fine-tune"})
    assert final == out / "model.safetensors" and (out / "model.json").is_file()
    card = json.loads((out / "model.json").read_text())
    assert card["parent"] == str(init_checkpoint)
    assert card["name"] == "my fine-tune" and card["architecture"] == "unet"
    assert card["model_kwargs"] == TINY_UNET
    assert card["training_data"]["images"] == 2 and card["training_data"]["val_images"] == 0
    assert card["training_data"]["path"] == str(app.resolve())
    assert ClassSpec.from_json(card["classes"]) == camvid_classes(camvid)
    assert card["training"]["steps_done"] == 1  # 2 images, batch 2: one step per epoch
    fine, parent = load_checkpoint(final), load_checkpoint(init_checkpoint)
    with torch.no_grad():
        y = fine.model(torch.randn(1, 3, 40, 56))["out"]
    assert y.shape == (1, 11, 40, 56)
    changed = [k for k, v in fine.model.state_dict().items() if not torch.equal(v, parent.model.state_dict()[k])]
    assert changed, "training did not change any weight"


def test_train_on_app_folder_with_new_classes_replaces_head(camvid, tmp_path, init_checkpoint):
    three = ClassSpec(("ground", "thing", "sky"))
    app = make_app_folder(tmp_path / "app3", camvid, camvid_stems(camvid, "train", 2), classes=three)
    assert find_samples(app)[1] == three
    # lr 0 and frozen BatchNorm: every weight but the new head must stay exactly the parent's.
    cfg = TrainConfig(epochs=1, max_steps=1, batch_size=2, crop_size=(64, 64), lr=0.0, freeze_bn=True, device="cpu")
    final = train_on_folder(app, tmp_path / "run3", init=init_checkpoint, config=cfg)
    fine, parent = load_checkpoint(final), load_checkpoint(init_checkpoint)
    assert fine.classes == three and fine.card["parent"] == str(init_checkpoint)
    psd, fsd = parent.model.state_dict(), fine.model.state_dict()
    assert fsd.keys() == psd.keys()
    for k in fsd:
        if k.startswith("classifier."):
            assert fsd[k].shape[0] == 3 and psd[k].shape[0] == 11
        else:
            assert torch.equal(fsd[k], psd[k]), k
    with torch.no_grad():
        assert fine.model(torch.randn(1, 3, 32, 32))["out"].shape == (1, 3, 32, 32)
    pred = Predictor(fine, device="cpu").predict(read_image(next(app.glob("*.png"))))
    assert pred.max() < 3


def test_train_on_folder_argument_errors(camvid, tmp_path, init_checkpoint):
    app = make_app_folder(tmp_path / "app", camvid, camvid_stems(camvid, "train", 1))
    with pytest.raises(ValueError, match="--model"):
        train_on_folder(app, tmp_path / "r1", config=TrainConfig(device="cpu"))
    with pytest.raises(ValueError, match="contradicts --init"):
        train_on_folder(app, tmp_path / "r2", model_name="deeplabv3plus", init=init_checkpoint)
    with pytest.raises(CheckpointError):
        train_on_folder(app, tmp_path / "r3", init=tmp_path / "missing.safetensors")
    with pytest.raises(FileNotFoundError, match="not a dataset"):
        train_on_folder(tmp_path / "nothing", tmp_path / "r4", model_name="unet")
    empty = tmp_path / "unlabelled"
    (empty / "labels").mkdir(parents=True)
    (empty / "labels" / "classes.json").write_text(json.dumps(ClassSpec(("a", "b")).to_json()))
    with pytest.raises(FileNotFoundError, match="no labelled images"):
        train_on_folder(empty, tmp_path / "r5", model_name="unet")
    assert not any((tmp_path / f"r{i}").exists() for i in range(1, 6))
    assert os.listdir(tmp_path / "app" / "labels")  # untouched


def test_train_split_train_plus_val_trains_on_both_and_validates_nothing(tiny_dataset, camvid, tmp_path):
    """``--train-split train+val``: the final model of a recipe chosen on val sees val's images too; the card says
    so, nothing is validated; an image folder (no val split) and an unknown split are refused before any file is
    written."""
    cfg = dict(epochs=1, batch_size=1, crop_size=(64, 64), device="cpu")
    plain = json.loads((train_on_folder(tiny_dataset, tmp_path / "t", "unet", config=TrainConfig(**cfg),
                                        model_kwargs=dict(TINY_UNET)).with_suffix(".json")).read_text())
    both = json.loads((train_on_folder(tiny_dataset, tmp_path / "tv", "unet", model_kwargs=dict(TINY_UNET),
                                       config=TrainConfig(**cfg, train_split="train+val")).with_suffix(".json")).read_text())
    assert (plain["training_data"]["images"], plain["training_data"]["val_images"]) == (2, 3)
    assert "splits" not in plain["training_data"]
    assert (both["training_data"]["images"], both["training_data"]["val_images"]) == (5, 0)
    assert both["training_data"]["splits"] == ["train", "val"]
    assert both["training"]["steps_done"] == 5 and plain["training"]["steps_done"] == 2  # batch 1: one step an image
    assert len(set(both["training_data"]["image_sha1"])) == 5
    assert set(plain["training_data"]["val_image_sha1"]) <= set(both["training_data"]["image_sha1"])
    history = json.loads((tmp_path / "tv" / "history.json").read_text())
    assert all("val_miou" not in h for h in history)

    app = make_app_folder(tmp_path / "app", camvid, camvid_stems(camvid, "train", 1))
    with pytest.raises(ValueError, match="needs a dataset folder with train.txt and val.txt"):
        train_on_folder(app, tmp_path / "r1", "unet", config=TrainConfig(**cfg, train_split="train+val"))
    with pytest.raises(ValueError, match="train_split must be one of"):
        train_on_folder(tiny_dataset, tmp_path / "r2", "unet", config=TrainConfig(**cfg, train_split="val"))
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_resume_continues_counters_optimizer_and_history(camvid, tmp_path):
    """An interrupted run resumed with --resume carries on: step counter, optimizer state, history."""
    app = make_app_folder(tmp_path / "app", camvid, camvid_stems(camvid, "train", 2))
    run = tmp_path / "run"
    cfg = dict(batch_size=2, crop_size=(64, 64), device="cpu", seed=0)
    train_on_folder(app, run, model_name="unet", model_kwargs={"base_channels": 8, "depth": 2}, config=TrainConfig(epochs=2, **cfg))
    first = json.loads((run / "history.json").read_text())
    st1 = torch.load(run / "last_state.pt", weights_only=True)
    w1 = load_checkpoint(run / "last.safetensors").model.state_dict()
    train_on_folder(
        app, run, model_name="unet", model_kwargs={"base_channels": 8, "depth": 2}, config=TrainConfig(epochs=4, **cfg), resume=True
    )
    hist = json.loads((run / "history.json").read_text())
    st2 = torch.load(run / "last_state.pt", weights_only=True)
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4] and hist[:2] == first
    assert (st1["epoch"], st2["epoch"]) == (2, 4) and st2["step"] == 2 * st1["step"]
    w2 = load_checkpoint(run / "last.safetensors").model.state_dict()
    assert any(not torch.equal(w1[k], w2[k]) for k in w1), "resumed training must keep updating the weights"


def test_read_run_gives_the_curve_step_time_and_absent_records_as_empty(tmp_path):
    from segstudio.engine.run_folder import read_run

    empty = read_run(tmp_path)
    assert empty.history == [] and empty.card == {} and empty.val is None and empty.train_seconds is None
    assert empty.curve == [] and empty.seconds_per_step is None and empty.val_iou() is None and empty.config == {}
    hist = [{"epoch": 1, "step": 10, "seconds": 20.0, "train_loss": 1.0},
            {"epoch": 2, "step": 20, "seconds": 22.0, "train_loss": 0.8, "val_miou": 0.512345}]
    (tmp_path / "history.json").write_text(json.dumps(hist))
    (tmp_path / "val_metrics.json").write_text(json.dumps({"miou": 0.5, "iou": {"Sky": 0.912345, "Pole": None}}))
    (tmp_path / "train_seconds.json").write_text(json.dumps({"seconds": 50.0, "device": "cpu"}))
    (tmp_path / "model.json").write_text(json.dumps({"training": {"config": {"epochs": 2}}}))
    run = read_run(tmp_path)
    assert run.curve == [[2, 0.5123]] and run.seconds_per_step == 2.1 and run.train_seconds == 50.0
    assert run.val_iou() == {"Sky": 0.9123, "Pole": None} and run.config == {"epochs": 2}
    (tmp_path / "val_metrics.json").write_text("{half")
    with pytest.raises(json.JSONDecodeError):
        read_run(tmp_path)
