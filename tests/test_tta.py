"""Horizontal-flip test-time augmentation (``Predictor(tta=True)``, ``segstudio predict/evaluate --tta``).

TTA averages the logits of the image and of its mirror image (mirrored back). The expected values are
computed here by hand from two plain predictions; a model that is flip-equivariant by construction must give
the plain prediction back; tiling and ``scale`` must compose (TTA of a pipeline = mean of the plain pipeline and
the same pipeline with the mirrored model ``flip ∘ f ∘ flip``, since blending and resizing are linear).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from segstudio.engine import Predictor, load_checkpoint
from segstudio.engine.checkpoint import LoadedModel
from segstudio.engine.predict_folder import predict_images
from segstudio.io import read_image
from segstudio.postprocess import CRFParams, refine

NAME = "Seq05VD_f01920.png"


@pytest.fixture(scope="module")
def bundled() -> LoadedModel:
    return load_checkpoint(None)


@pytest.fixture(scope="module")
def image(samples_dir) -> np.ndarray:
    # an odd-sized crop (not a multiple of the network's stride 16): the model pads on one side only, so the
    # mirrored pass sees the padding on the other side and the two passes really differ
    return np.ascontiguousarray(read_image(samples_dir / NAME)[:150, :203])


class Asymmetric(torch.nn.Module):
    """3×3 convolutions with random (not mirror-symmetric) kernels and a folded BN: not flip-equivariant."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
        self.head = torch.nn.Conv2d(8, k, 3, padding=1)

    def forward(self, x):
        return {"out": self.head(self.body(x))}


class Symmetric(Asymmetric):
    """The same layers with every kernel mirror-symmetric along the width (w[..., j] = w[..., 2 - j]) and zero
    padding on both sides: ``f(flip(x)) = flip(f(x))`` by construction."""

    def __init__(self, k: int) -> None:
        super().__init__(k)
        with torch.no_grad():
            for conv in (self.body[0], self.head):
                conv.weight.copy_((conv.weight + conv.weight.flip(-1)) / 2)


class Mirrored(torch.nn.Module):
    """``flip ∘ f ∘ flip`` of a model ``f`` (width axis)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return {"out": self.inner(x.flip(-1))["out"].flip(-1)}


def _toy(cls, card: dict, seed: int = 3) -> LoadedModel:
    torch.manual_seed(seed)
    model = cls(len(card["classes"])).eval()
    with torch.no_grad():
        bn = model.body[1]
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2)
    return LoadedModel(model=model, card=card)


def _logits(p: Predictor, image: np.ndarray) -> torch.Tensor:
    return p.predict_logits([image])[0]


def test_tta_is_the_mean_of_the_two_passes_computed_by_hand(bundled, image):
    plain = Predictor(bundled, device="cpu")
    tta = Predictor(bundled, device="cpu", tta=True)
    assert not plain.tta and tta.tta
    z = _logits(plain, image)
    z_mirror = _logits(plain, np.ascontiguousarray(image[:, ::-1])).flip(-1)
    assert (z - z_mirror).abs().max() > 0.1  # the two passes differ, so the check below can fail
    expected = (z + z_mirror) / 2

    got = _logits(tta, image)
    assert got.shape == z.shape
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    proba = tta.predict_proba(image)
    np.testing.assert_allclose(proba, torch.softmax(expected, 0).numpy(), atol=1e-5)
    labels = tta.predict(image)
    top2 = expected.topk(2, dim=0).values
    clear = (top2[0] - top2[1] > 1e-3).numpy()  # ignore exact near-ties of the two best classes
    np.testing.assert_array_equal(labels[clear], expected.argmax(0).numpy()[clear])
    assert (labels != z.argmax(0).numpy()).any()  # TTA changed some pixels of this image


def test_flip_equivariant_model_gives_the_plain_result(bundled, image):
    loaded = _toy(Symmetric, bundled.card)
    x = torch.randn(1, 3, 20, 27)
    with torch.no_grad():  # the construction really is equivariant
        torch.testing.assert_close(loaded.model(x.flip(-1))["out"], loaded.model(x)["out"].flip(-1), atol=1e-5, rtol=1e-5)
    for kw in ({}, {"scale": 0.5}, {"max_pixels": 64 * 64, "tile_size": 64, "tile_align": 8}):
        plain = Predictor(loaded, device="cpu", **kw)
        tta = Predictor(loaded, device="cpu", tta=True, **kw)
        torch.testing.assert_close(_logits(tta, image), _logits(plain, image), atol=1e-5, rtol=1e-5)
        np.testing.assert_array_equal(tta.predict(image), plain.predict(image))


@pytest.mark.parametrize("kw", [{"scale": 0.5}, {"max_pixels": 64 * 64, "tile_size": 64, "tile_align": 8}], ids=["scale", "tiles"])
def test_tta_composes_with_scale_and_tiles(bundled, image, kw):
    loaded = _toy(Asymmetric, bundled.card)
    mirrored = LoadedModel(model=Mirrored(loaded.model).eval(), card=bundled.card)
    tta = Predictor(loaded, device="cpu", tta=True, **kw)
    z = _logits(Predictor(loaded, device="cpu", **kw), image)
    z_m = _logits(Predictor(mirrored, device="cpu", **kw), image)
    assert (z - z_m).abs().max() > 1e-2
    if "max_pixels" in kw:
        assert tta._needs_tiles(*image.shape[:2])
    torch.testing.assert_close(_logits(tta, image), (z + z_m) / 2, atol=1e-5, rtol=1e-5)


def test_tta_reaches_the_folder_pipeline_with_crf(bundled, image):
    """``predict_images`` (``segstudio predict``) batches through ``predict_many``; CRF refines the TTA probabilities."""
    loaded = _toy(Asymmetric, bundled.card)
    plain, tta = Predictor(loaded, device="cpu"), Predictor(loaded, device="cpu", tta=True)
    expected = (_logits(plain, image) + _logits(plain, np.ascontiguousarray(image[:, ::-1])).flip(-1)) / 2
    crf = CRFParams(iterations=2)
    (res,) = list(predict_images(tta, [image], crf=crf))
    assert res.error is None
    want = refine(image, torch.softmax(expected, 0).numpy(), crf, None, num_classes=expected.shape[0])
    assert (res.labels == want).mean() > 0.999  # float32 rounding of the probabilities may move a pixel or two
    (res_plain,) = list(predict_images(plain, [image], crf=crf))
    assert (res_plain.labels != res.labels).any()


def test_cli_tta_flag_reaches_the_predictor(monkeypatch, samples_dir, tmp_path):
    """``--tta`` builds ``Predictor(tta=True)`` in ``predict`` and ``evaluate``; ``evaluate --limit N`` scores the
    first N images of the split list and records both in the metrics JSON."""
    import segstudio.engine as engine
    from PIL import Image

    from segstudio.cli import main
    from segstudio.io import read_index_png, write_index_png

    made: list[Predictor] = []

    class Spy(Predictor):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)

    monkeypatch.setattr(engine, "Predictor", Spy)
    small = np.ascontiguousarray(read_image(samples_dir / NAME)[::4, ::4])
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(small).save(src / NAME)
    assert main(["predict", str(src), "-o", str(tmp_path / "a"), "--device", "cpu", "--tta"]) == 0
    assert main(["predict", str(src), "-o", str(tmp_path / "b"), "--device", "cpu"]) == 0
    assert [p.tta for p in made] == [True, False]

    data = tmp_path / "ds"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    mask = np.ascontiguousarray(read_index_png(samples_dir / "ground_truth" / NAME)[::4, ::4])
    for stem in ("a", "b"):
        Image.fromarray(small).save(data / "images" / f"{stem}.png")
        write_index_png(data / "masks" / f"{stem}.png", mask)
    (data / "val.txt").write_text("b\na\n")
    (data / "classes.json").write_text(json.dumps(load_checkpoint(None).card["classes"]))
    out = tmp_path / "m.json"
    assert main(["evaluate", "--data", str(data), "--device", "cpu", "--tta", "--limit", "1", "-o", str(out)]) == 0
    assert made[-1].tta
    got = json.loads(out.read_text())
    assert got["tta"] is True and got["limit"] == 1 and got["images"] == 1
    assert main(["evaluate", "--data", str(data), "--device", "cpu", "--limit", "0", "-o", str(out)]) == 2


def test_tta_swaps_left_and_right_class_logits(bundled, image):
    """With classes a mirror turns into each other (car parts: left_mirror ↔ right_mirror), the mirrored pass's
    logits change channel before the mean: ``z = (f(x) + P flip(f(flip(x)))) / 2``."""
    card = dict(bundled.card)
    card["classes"] = [{"id": i, "name": n, "color": [i * 40, 0, 0]} for i, n in enumerate(("background", "left_mirror", "right_mirror", "hood"))]
    loaded = _toy(Asymmetric, card)
    plain = Predictor(loaded, device="cpu")
    z = _logits(plain, image)
    z_mirror = _logits(plain, np.ascontiguousarray(image[:, ::-1])).flip(-1)[[0, 2, 1, 3]]
    torch.testing.assert_close(_logits(Predictor(loaded, device="cpu", tta=True), image), (z + z_mirror) / 2, atol=1e-4, rtol=1e-4)
