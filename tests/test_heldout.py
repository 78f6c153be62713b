"""The held-out rule (issue 30, items 1-5): lineage carried in the card, every bundled card keyed, near-duplicates
by a perceptual key, roles by content only, and held-out / validation figures on person-labelled pixels only."""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from segstudio.core import IGNORE_INDEX, ClassSpec
from segstudio.core.provenance import PROV_CRF, PROV_HUMAN, PROV_MODEL, PROV_NONE, human_labels
from segstudio.engine import finetune_config, load_checkpoint
from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR, default_checkpoint
from segstudio.engine.heldout import (
    NEAR_DUPLICATE_MAX_BITS,
    ROLE_HELD_OUT,
    ROLE_TRAIN,
    ROLE_VAL,
    card_lineage,
    classify_images,
    file_sha1,
    hamming,
    image_roles,
    lineage_keys,
    perceptual_key,
)
from segstudio.engine.train_config import TrainConfig
from segstudio.engine.finetune import train_on_folder
from segstudio.io import read_image, read_index_png, save_labels
from segstudio.io.provenance_files import load_human_labels, save_provenance
from segstudio.metrics import ConfusionMatrix

from conftest import SHARED

TINY = {"depth": 1, "width": 4}


def _classes() -> ClassSpec:
    return ClassSpec.from_json([{"id": 0, "name": "a", "color": [0, 0, 0]}, {"id": 1, "name": "b", "color": [255, 255, 255]}])


def _app_folder(folder: Path, names: list[str], seed: int) -> list[Path]:
    """An image folder with saved labels: smooth random 40x48 images (distinct perceptual keys), 2 classes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for n in names:
        small = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
        img = cv2.resize(small, (48, 40), interpolation=cv2.INTER_CUBIC)
        p = folder / n
        Image.fromarray(img).save(p)
        save_labels(p, (img[..., 0] > 127).astype(np.uint8), _classes())
        out.append(p)
    return out


def _cfg(**kw) -> TrainConfig:
    base = dict(max_steps=1, batch_size=2, crop_size=(24, 24), scale_range=(1.0, 1.0), device="cpu", lr=1e-3, color_jitter=0.0)
    base.update(kw)
    return TrainConfig(**base)


# -- 1. the lineage travels in the card -----------------------------------------------------------------------------
def test_lineage_survives_a_moved_parent_folder(tmp_path):
    a = _app_folder(tmp_path / "first", ["a0.png", "a1.png", "a2.png"], seed=1)
    parent = train_on_folder(tmp_path / "first", tmp_path / "runs" / "v001", "simple_cnn", config=_cfg(), model_kwargs=TINY)
    b = _app_folder(tmp_path / "second", ["b0.png", "b1.png"], seed=2)
    child = train_on_folder(tmp_path / "second", tmp_path / "runs2" / "v002", init=parent, config=_cfg())
    card = json.loads(child.with_suffix(".json").read_text())
    assert card["parent"] == str(parent)
    lin = card["training_data"]["lineage"]
    assert sorted(lin["image_sha1"]) == sorted(file_sha1(p) for p in a) and lin["val_image_sha1"] == []
    assert len(lin["image_phash"]) == 3
    # The parent's run folder and its training folder move to another machine: no file of the parent is left.
    shutil.move(tmp_path / "runs", tmp_path / "archive_runs")
    shutil.move(tmp_path / "first", tmp_path / "moved_first")
    moved = [tmp_path / "moved_first" / p.name for p in a]
    assert card_lineage(card) == [card]  # the parent path leads nowhere now
    roles = image_roles(card_lineage(card), moved + b)
    assert roles == {**{p: ROLE_TRAIN for p in moved}, **{p: ROLE_TRAIN for p in b}}


def test_lineage_keys_merge_own_keys_and_carried_lineage():
    grand = {"training_data": {"image_sha1": ["g"], "val_image_sha1": ["gv"]}}
    parent = {"training_data": {"image_sha1": ["p", "g"], "val_image_sha1": [], "image_phash": ["ph"],
                                "lineage": lineage_keys([grand])}}
    keys = lineage_keys([parent])
    assert keys == {"image_sha1": ["p", "g"], "val_image_sha1": ["gv"], "image_phash": ["ph"], "val_image_phash": []}
    assert lineage_keys([{}]) == {"image_sha1": [], "val_image_sha1": [], "image_phash": [], "val_image_phash": []}


# -- 2. every bundled card has its keys ------------------------------------------------------------------------------
def test_isbi_card_knows_its_training_and_validation_slices_without_the_dataset(tmp_path):
    card = json.loads((DEFAULT_MODEL_DIR / "isbi2012_unet.json").read_text())
    card["training_data"]["path"] = "/elsewhere/isbi2012_membrane"  # another machine: the training path is gone
    isbi = SHARED / "datasets" / "isbi2012_membrane"
    copies = []
    for p in sorted((isbi / "images").glob("*.png")):
        shutil.copy(p, tmp_path / p.name)
        copies.append(tmp_path / p.name)
    roles = image_roles([card], copies)
    train = {s.strip() for s in (isbi / "train.txt").read_text().split()}
    val = {s.strip() for s in (isbi / "val.txt").read_text().split()}
    expect = {p: ROLE_TRAIN if p.stem in train else ROLE_VAL if p.stem in val else ROLE_HELD_OUT for p in copies}
    assert roles == expect
    assert sum(r == ROLE_HELD_OUT for r in roles.values()) == 5  # test slices 25..29


def test_every_bundled_card_has_content_keys():
    cards = sorted(DEFAULT_MODEL_DIR.glob("*.json"))
    assert len(cards) >= 2
    for path in cards:
        td = json.loads(path.read_text())["training_data"]
        assert len(td["image_sha1"]) == len(td["image_phash"]) == td["images"], path.name
        assert len(td["val_image_sha1"]) == len(td["val_image_phash"]) == td.get("val_images", 0), path.name
        assert path.stat().st_size < 128 * 1024, path.name


# -- 3. near-duplicates -----------------------------------------------------------------------------------------------
def test_mirrored_jpeg_and_resized_copies_of_a_training_frame_are_not_held_out(tmp_path):
    card = load_checkpoint(default_checkpoint()).card  # trained on CamVid train+val
    src = SHARED / "datasets" / "camvid" / "images" / "0016E5_08039.png"  # a CamVid val frame it trained on
    img = read_image(src)
    Image.fromarray(np.ascontiguousarray(img[:, ::-1])).save(tmp_path / "mirrored.png")
    Image.fromarray(img).save(tmp_path / "reencoded.jpg", quality=75)
    Image.fromarray(img).resize((240, 180), Image.BILINEAR).save(tmp_path / "small.png")
    Image.fromarray(np.ascontiguousarray(img[:, ::-1])).resize((320, 240), Image.BILINEAR).save(tmp_path / "all.jpg", quality=60)
    unseen = SHARED / "datasets" / "camvid_samples" / "images" / "Seq05VD_f00660.png"  # withheld test split
    copies = [tmp_path / n for n in ("mirrored.png", "reencoded.jpg", "small.png", "all.jpg")]
    assert all(file_sha1(p) != file_sha1(src) for p in copies)
    r = classify_images([card], [src, *copies, unseen])
    assert r.roles == {src: ROLE_TRAIN, **{p: ROLE_TRAIN for p in copies}, unseen: ROLE_HELD_OUT}
    assert set(r.near_duplicates) == set(copies)  # the original is known by its bytes
    assert all(d <= NEAR_DUPLICATE_MAX_BITS for d in r.near_duplicates.values())


def test_perceptual_key_is_mirror_invariant_and_separates_consecutive_frames():
    camvid = SHARED / "datasets" / "camvid" / "images"
    a, b = read_image(camvid / "0001TP_006690.png"), read_image(camvid / "0001TP_006720.png")  # 1 s apart
    ka = perceptual_key(a)
    assert len(ka) == 64 and perceptual_key(np.ascontiguousarray(a[:, ::-1])) == ka
    assert hamming([perceptual_key(b)], ka)[0] > 2 * NEAR_DUPLICATE_MAX_BITS
    assert perceptual_key(a[..., 0]) == perceptual_key(np.repeat(a[..., :1], 3, axis=2))
    with pytest.raises(ValueError):
        perceptual_key(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError):
        hamming([ka], "not a key")


# -- 4. roles by content only ----------------------------------------------------------------------------------------
def _names_that_move_the_old_split() -> list[str]:
    """Six names: five whose CRC-32 is above 20 % of the range, and a sixth below the lowest of them (the name-hash
    split of a 5-image folder then held out the lowest of the five, and adding the sixth moved it to training)."""
    key = lambda n: zlib.crc32(n.encode()) / 2**32  # noqa: E731
    five = [n for n in (f"img{i:03d}.png" for i in range(200)) if key(n) > 0.2][:5]
    low = min(key(n) for n in five)
    sixth = next(n for n in (f"new{i:03d}.png" for i in range(500)) if key(n) < low)
    return [*five, sixth]


def test_adding_a_file_does_not_change_another_images_role(tmp_path):
    names = _names_that_move_the_old_split()
    folder = tmp_path / "app"
    imgs = _app_folder(folder, names[:5], seed=3)
    cfg = finetune_config(max_steps=1, batch_size=2, crop_size=(24, 24), device="cpu")
    v1 = train_on_folder(folder, tmp_path / "v1", "simple_cnn", config=cfg, model_kwargs=TINY)
    before = image_roles([load_checkpoint(v1).card], imgs)
    _app_folder(tmp_path / "extra", [names[5]], seed=4)
    shutil.copy(tmp_path / "extra" / names[5], folder / names[5])
    shutil.copy(tmp_path / "extra" / "labels" / names[5], folder / "labels" / names[5])
    # The same card, one more file in the folder: nothing changes (the rule reads each image's own content).
    assert image_roles([load_checkpoint(v1).card], imgs) == before
    v2 = train_on_folder(folder, tmp_path / "v2", "simple_cnn", config=cfg, model_kwargs=TINY)
    after = image_roles([load_checkpoint(v2).card], imgs)
    assert after == before, "adding a file moved an image between training and validation"


def test_replacing_a_file_changes_only_that_images_role(tmp_path):
    imgs = _app_folder(tmp_path / "f", ["x.png", "y.png", "z.png"], seed=5)
    card = {"training_data": {"image_sha1": [file_sha1(imgs[0])], "val_image_sha1": [file_sha1(imgs[1])],
                              "image_phash": [perceptual_key(read_image(imgs[0]))], "val_image_phash": [perceptual_key(read_image(imgs[1]))]}}
    before = image_roles([card], imgs)
    assert before == {imgs[0]: ROLE_TRAIN, imgs[1]: ROLE_VAL, imgs[2]: ROLE_HELD_OUT}
    _app_folder(tmp_path / "f", ["x.png"], seed=99)  # x.png replaced by another picture
    after = image_roles([card], imgs)
    assert after == {**before, imgs[0]: ROLE_HELD_OUT}


# -- 5. graded on person-labelled pixels only -------------------------------------------------------------------------
def test_human_labels_keeps_only_pixels_a_person_painted():
    labels = np.array([[0, 1, 2], [3, 4, IGNORE_INDEX]], dtype=np.uint8)
    prov = np.array([[PROV_HUMAN, PROV_MODEL, PROV_CRF], [PROV_HUMAN, PROV_NONE, PROV_NONE]], dtype=np.uint8)
    out = human_labels(labels, prov)
    np.testing.assert_array_equal(out, [[0, IGNORE_INDEX, IGNORE_INDEX], [3, IGNORE_INDEX, IGNORE_INDEX]])
    np.testing.assert_array_equal(labels[0], [0, 1, 2])  # input untouched
    np.testing.assert_array_equal(human_labels(labels, None), labels)  # no provenance: labels from outside the app
    with pytest.raises(ValueError):
        human_labels(labels, prov[:1])


class _EchoPredictor:
    """Predicts the saved labels of the images given (what an accepted, unedited prediction is), 0 elsewhere."""

    def __init__(self, answers: dict[bytes, np.ndarray], classes: ClassSpec) -> None:
        self.answers, self.classes = answers, classes

    def predict(self, image: np.ndarray) -> np.ndarray:
        return self.answers.get(image.tobytes(), np.zeros(image.shape[:2], np.uint8))


def test_metrics_dock_grades_only_person_labelled_pixels(qtbot, tmp_path):
    from segstudio.gui.metrics_dock import MetricsDock, evaluate_corrected

    accepted, edited = _app_folder(tmp_path, ["accepted.png", "edited.png"], seed=6)
    lab_acc, lab_ed = read_index_png(tmp_path / "labels" / "accepted.png"), read_index_png(tmp_path / "labels" / "edited.png")
    # accepted.png: the model's prediction accepted unchanged; edited.png: a person repainted its left half.
    save_provenance(accepted, np.full(lab_acc.shape, PROV_MODEL, np.uint8))
    prov = np.full(lab_ed.shape, PROV_MODEL, np.uint8)
    prov[:, :24] = PROV_HUMAN
    save_provenance(edited, prov)
    answers = {read_image(accepted).tobytes(): lab_acc, read_image(edited).tobytes(): 1 - lab_ed}
    pred = _EchoPredictor(answers, _classes())
    r = evaluate_corrected(pred, [accepted, edited], _classes(), {"name": "m", "training_data": {}})
    assert r.roles == {accepted: ROLE_HELD_OUT, edited: ROLE_HELD_OUT}
    expect = ConfusionMatrix(2)
    expect.update(load_human_labels(edited, lab_ed), 1 - lab_ed)
    np.testing.assert_array_equal(r.matrix("held-out").mat, expect.mat)
    assert r.scored_pixels("held-out") == 40 * 24  # the accepted prediction scores nothing
    assert r.matrix("held-out").miou == 0.0  # every person-labelled pixel is wrong: no 100 % from the echo
    assert r.matrix("all").mat.sum() == 2 * 40 * 48  # training-style figures still count every saved pixel
    dock = MetricsDock()
    qtbot.addWidget(dock)
    dock.set_result(r)
    assert "held-out mIoU 0.0 % (2 images, 960 person-labelled pixels)" in dock.summary.text()


def test_metrics_dock_says_how_many_near_duplicates_it_excluded(qtbot, tmp_path):
    from segstudio.gui.metrics_dock import MetricsDock, evaluate_corrected

    imgs = _app_folder(tmp_path, ["seen.png", "new.png"], seed=7)
    mirrored = tmp_path / "mirrored.png"
    Image.fromarray(np.ascontiguousarray(read_image(imgs[0])[:, ::-1])).save(mirrored)
    save_labels(mirrored, read_index_png(tmp_path / "labels" / "seen.png")[:, ::-1], _classes())
    card = {"name": "m", "training_data": {"image_sha1": [file_sha1(imgs[0])], "image_phash": [perceptual_key(read_image(imgs[0]))]}}
    r = evaluate_corrected(_EchoPredictor({}, _classes()), [*imgs, mirrored], _classes(), card)
    assert r.roles == {imgs[0]: ROLE_TRAIN, imgs[1]: ROLE_HELD_OUT, mirrored: ROLE_TRAIN} and list(r.near_duplicates) == [mirrored]
    dock = MetricsDock()
    qtbot.addWidget(dock)
    dock.set_result(r)
    assert "1 image not held out: near-duplicate" in dock.summary.text()
    roles = sorted(dock.image_table.item(i, 1).text() for i in range(3))
    assert roles == [ROLE_HELD_OUT, ROLE_TRAIN, f"{ROLE_TRAIN} (near-duplicate)"]


def test_an_old_parent_without_hashes_is_keyed_into_the_childs_lineage(tmp_path):
    from segstudio.engine.heldout import card_content_keys

    a, b = _app_folder(tmp_path / "old", ["a.png", "b.png"], seed=8)
    parent = {"training_data": {"path": str(tmp_path / "old"), "files": ["a.png"], "val_files": ["b.png"]}}
    keys = card_content_keys([], [], parent)
    assert keys["lineage"]["image_sha1"] == [file_sha1(a)] and keys["lineage"]["val_image_sha1"] == [file_sha1(b)]
    assert keys["lineage"]["image_phash"] == [perceptual_key(read_image(a))]
    child = {"training_data": {"image_sha1": [], **keys}}
    shutil.move(tmp_path / "old", tmp_path / "moved")
    moved = [tmp_path / "moved" / "a.png", tmp_path / "moved" / "b.png"]
    assert image_roles([child], moved) == {moved[0]: ROLE_TRAIN, moved[1]: ROLE_VAL}


def test_legacy_dataset_card_marks_its_val_split_as_validation(tmp_path):
    (tmp_path / "images").mkdir()
    for s in ("t", "v", "x"):
        (tmp_path / "images" / f"{s}.png").write_bytes(s.encode())
    (tmp_path / "train.txt").write_text("t\n")
    (tmp_path / "val.txt").write_text("v\n")
    card = {"training_data": {"path": str(tmp_path), "images": 1, "val_images": 1}}
    paths = [tmp_path / "images" / f"{s}.png" for s in ("t", "v", "x")]
    assert image_roles([card], paths) == dict(zip(paths, (ROLE_TRAIN, ROLE_VAL, ROLE_HELD_OUT)))
