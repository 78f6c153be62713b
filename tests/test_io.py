"""segstudio.io: index PNGs, atomic saves, classes.json, dataset discovery, robust image reading."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

import segstudio.io.atomic as atomic_mod
from segstudio.core import IGNORE_INDEX, ClassSpec
from segstudio.io import (
    ImageReadError,
    atomic_write_bytes,
    find_samples,
    label_path_for,
    list_images,
    load_classes,
    read_image,
    read_index_png,
    save_classes,
    save_labels,
    write_index_png,
)

# --------------------------------------------------------------------------------------------
# index PNGs


@pytest.mark.parametrize("seed", range(3))
def test_index_png_round_trip_is_lossless(tmp_path, seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 70)), int(rng.integers(1, 90))
    labels = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
    labels.flat[0] = IGNORE_INDEX
    labels.flat[-1] = 0
    path = write_index_png(tmp_path / "sub" / "m.png", labels)
    assert path == tmp_path / "sub" / "m.png"
    with Image.open(path) as im:
        assert im.mode == "L" and im.size == (w, h)
    back = read_index_png(path)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, labels)


def test_read_index_png_accepts_palette_png(tmp_path):
    labels = np.array([[0, 1, 2], [255, 3, 0]], dtype=np.uint8)
    im = Image.fromarray(labels, mode="L").convert("P")
    im.putpalette([v for i in range(256) for v in ((i * 37) % 256, (i * 11) % 256, i)])
    im.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_index_png(tmp_path / "p.png"), labels)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "I;16"])
def test_read_index_png_rejects_non_index_masks(tmp_path, mode):
    if mode == "I;16":
        Image.fromarray(np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000).save(tmp_path / "m.png")
    else:
        Image.new(mode, (4, 3), (128, 64, 128, 255)[: len(mode)]).save(tmp_path / "m.png")
    with pytest.raises(ValueError) as ei:
        read_index_png(tmp_path / "m.png")
    msg = str(ei.value)
    assert "m.png" in msg and "mode" in msg and "colour-coded" in msg


def test_write_index_png_rejects_wrong_arrays(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_index_png(tmp_path / "a.png", np.zeros((3, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="uint8"):
        write_index_png(tmp_path / "a.png", np.zeros((3, 3, 3), dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# atomic writes


def test_atomic_write_replaces_content(tmp_path):
    p = tmp_path / "f.bin"
    atomic_write_bytes(p, b"old")
    atomic_write_bytes(p, b"new content")
    assert p.read_bytes() == b"new content"
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_atomic_write_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    new = atomic_write_bytes(tmp_path / "new.json", b"{}")
    assert new.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    old = tmp_path / "old.png"
    old.write_bytes(b"x")
    os.chmod(old, 0o640)
    atomic_write_bytes(old, b"y")
    assert old.read_bytes() == b"y" and old.stat().st_mode & 0o777 == 0o640  # replaced file keeps its mode


@pytest.mark.parametrize("fail_at", ["replace", "fsync", "write"])
def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch, fail_at):
    p = tmp_path / "labels.png"
    old = b"\x89PNG old bytes that must survive"
    p.write_bytes(old)

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    if fail_at == "replace":
        monkeypatch.setattr(atomic_mod.os, "replace", boom)
    elif fail_at == "fsync":
        monkeypatch.setattr(atomic_mod.os, "fsync", boom)
    else:
        real_fdopen = os.fdopen

        class FailingFile:
            def __init__(self, fh):
                self.fh = fh

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.fh.close()

            def write(self, data):
                self.fh.write(data[: len(data) // 2])  # a torn write, then the disk is full
                raise OSError(28, "No space left on device")

        monkeypatch.setattr(atomic_mod.os, "fdopen", lambda fd, mode: FailingFile(real_fdopen(fd, mode)))

    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(p, b"new bytes " * 1000)
    monkeypatch.undo()
    assert p.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["labels.png"], "temporary file left behind"


def test_write_index_png_failure_keeps_old_labels(tmp_path, monkeypatch):
    p = tmp_path / "m.png"
    first = np.full((5, 6), 3, dtype=np.uint8)
    write_index_png(p, first)
    before = p.read_bytes()

    def boom(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic_mod.os, "replace", boom)
    with pytest.raises(PermissionError):
        write_index_png(p, np.zeros((5, 6), dtype=np.uint8))
    monkeypatch.undo()
    assert p.read_bytes() == before
    np.testing.assert_array_equal(read_index_png(p), first)
    assert sorted(os.listdir(tmp_path)) == ["m.png"]


# --------------------------------------------------------------------------------------------
# classes.json and save_labels


def test_save_labels_writes_png_and_classes(tmp_path):
    img = tmp_path / "shot_01.jpg"
    Image.new("RGB", (7, 5)).save(img)
    cs = ClassSpec(("bg", "cell", "membrane"), ((0, 0, 0), (10, 200, 30), (250, 5, 5)))
    labels = np.array([[0, 1, 2, 255, 0, 1, 2]] * 5, dtype=np.uint8)
    out = save_labels(img, labels, cs)
    assert out == tmp_path / "labels" / "shot_01.png" == label_path_for(img)
    np.testing.assert_array_equal(read_index_png(out), labels)
    data = json.loads((tmp_path / "labels" / "classes.json").read_text())
    assert data == [
        {"id": 0, "name": "bg", "color": [0, 0, 0]},
        {"id": 1, "name": "cell", "color": [10, 200, 30]},
        {"id": 2, "name": "membrane", "color": [250, 5, 5]},
    ]
    assert load_classes(tmp_path / "labels" / "classes.json") == cs
    assert sorted(os.listdir(tmp_path / "labels")) == ["classes.json", "shot_01.png"]
    # a palette PNG: any viewer shows the class colours, while the stored values stay the class ids
    with Image.open(out) as im:
        assert im.mode == "P"
        np.testing.assert_array_equal(np.array(im), labels)
        rgb = np.array(im.convert("RGB"))
    np.testing.assert_array_equal(rgb[0, :4], [[0, 0, 0], [10, 200, 30], [250, 5, 5], [0, 0, 0]])


def test_save_labels_rejects_invalid_labels_and_writes_nothing(tmp_path):
    img = tmp_path / "a.png"
    Image.new("RGB", (4, 4)).save(img)
    with pytest.raises(ValueError, match=r"\[3\]"):
        save_labels(img, np.full((4, 4), 3, dtype=np.uint8), ClassSpec(("x", "y", "z")))
    assert not (tmp_path / "labels" / "a.png").exists()
    assert not (tmp_path / "labels" / "classes.json").exists()


def test_load_classes_errors_name_the_file(tmp_path):
    bad = tmp_path / "classes.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="classes.json"):
        load_classes(bad)
    bad.write_text(json.dumps([{"id": 1, "name": "a"}]))
    with pytest.raises(ValueError, match="classes.json.*without gaps"):
        load_classes(bad)
    cs = ClassSpec(("a", "b"))
    save_classes(bad, cs)
    assert load_classes(bad) == cs


# --------------------------------------------------------------------------------------------
# dataset discovery


def test_find_samples_camvid_layout(camvid):
    train, classes = find_samples(camvid, "train")
    val, classes_v = find_samples(camvid, "val")
    assert len(train) == 367 and len(val) == 101
    assert classes.num_classes == 11 and classes == classes_v
    assert classes.names[0] == "Sky" and classes.names[-1] == "Bicyclist"
    listed = (camvid / "train.txt").read_text().split()
    assert [s.image.stem for s in train] == listed
    for s in train + val:
        assert s.image.parent == camvid / "images" and s.mask == camvid / "masks" / f"{s.image.stem}.png"
    assert not {s.image.stem for s in train} & {s.image.stem for s in val}
    default, _ = find_samples(camvid)
    assert default == train
    with pytest.raises(FileNotFoundError, match="test.txt"):
        find_samples(camvid, "test")


def _mini_dataset(root, camvid, stems, masks=True):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    shutil.copy(camvid / "classes.json", root / "classes.json")
    for s in stems:
        shutil.copy(camvid / "images" / f"{s}.png", root / "images" / f"{s}.png")
        if masks:
            shutil.copy(camvid / "masks" / f"{s}.png", root / "masks" / f"{s}.png")


def test_find_samples_dataset_errors(tmp_path, camvid):
    stems = (camvid / "val.txt").read_text().split()[:2]
    root = tmp_path / "ds"
    _mini_dataset(root, camvid, stems)
    # No split lists: split=None uses every image, a named split is an error.
    samples, _ = find_samples(root)
    assert sorted(s.image.stem for s in samples) == sorted(stems)
    with pytest.raises(FileNotFoundError, match="val.txt"):
        find_samples(root, "val")
    (root / "val.txt").write_text("\n".join(stems + ["nope_000"]) + "\n")
    with pytest.raises(FileNotFoundError, match="nope_000"):
        find_samples(root, "val")
    (root / "val.txt").write_text("\n".join(stems) + "\n")
    os.remove(root / "masks" / f"{stems[1]}.png")
    with pytest.raises(FileNotFoundError, match=stems[1]):
        find_samples(root, "val")
    os.remove(root / "classes.json")
    with pytest.raises(FileNotFoundError, match="classes.json"):
        find_samples(root, "val")
    with pytest.raises(FileNotFoundError, match="not a dataset"):
        find_samples(tmp_path / "empty_folder_that_does_not_exist")


def test_find_samples_app_folder(tmp_path, camvid):
    stems = (camvid / "train.txt").read_text().split()[:3]
    app = tmp_path / "app"
    app.mkdir()
    for s in stems:
        shutil.copy(camvid / "images" / f"{s}.png", app / f"{s}.png")
    (app / "notes.txt").write_text("not an image")
    cs = ClassSpec(("a", "b", "c"))
    # Labels saved for the first and last image only.
    for s in (stems[0], stems[2]):
        save_labels(app / f"{s}.png", np.zeros((360, 480), dtype=np.uint8), cs)
    samples, classes = find_samples(app)
    assert classes == cs
    assert [s.image for s in samples] == [app / f"{stems[0]}.png", app / f"{stems[2]}.png"]
    assert [s.mask for s in samples] == [app / "labels" / f"{stems[0]}.png", app / "labels" / f"{stems[2]}.png"]
    assert find_samples(app, "train")[0] == samples  # split is ignored for app folders
    os.remove(app / "labels" / "classes.json")
    with pytest.raises(FileNotFoundError, match="classes.json"):
        find_samples(app)
    shutil.rmtree(app / "labels")
    with pytest.raises(FileNotFoundError, match="not a dataset"):
        find_samples(app)


def test_list_images(tmp_path):
    for name in ("b.png", "a.JPG", "c.tif", ".hidden.png", "d.txt", "e.webp"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "c.tif", "e.webp"]
    with pytest.raises(NotADirectoryError):
        list_images(tmp_path / "b.png")


# --------------------------------------------------------------------------------------------
# read_image


def test_read_image_rgb_png(tmp_path, camvid):
    path = camvid / "images" / ((camvid / "val.txt").read_text().split()[0] + ".png")
    arr = read_image(path)
    assert arr.shape == (360, 480, 3) and arr.dtype == np.uint8
    with Image.open(path) as im:
        np.testing.assert_array_equal(arr, np.asarray(im.convert("RGB")))


def test_read_image_grayscale(tmp_path):
    gray = np.arange(6 * 9, dtype=np.uint8).reshape(6, 9) * 4
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    arr = read_image(tmp_path / "g.png")
    assert arr.shape == (6, 9, 3) and arr.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(arr[..., c], gray)


def test_read_image_rgba_drops_alpha(tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, size=(5, 7, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    arr = read_image(tmp_path / "a.png")
    assert arr.shape == (5, 7, 3)
    np.testing.assert_array_equal(arr, rgba[..., :3])


def test_read_image_16bit_is_min_max_scaled(tmp_path):
    v = np.array([[1000, 3000, 5000], [2000, 4000, 1000]], dtype=np.uint16)
    Image.fromarray(v).save(tmp_path / "d.png")
    with Image.open(tmp_path / "d.png") as im:
        assert im.mode.startswith("I")  # really a 16-bit file
    arr = read_image(tmp_path / "d.png")
    expected = np.floor((v.astype(np.float64) - 1000) / 4000 * 255 + 0.5).astype(np.uint8)
    assert arr.shape == (2, 3, 3) and arr.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(arr[..., c], expected)
    assert arr.min() == 0 and arr.max() == 255
    # A constant 16-bit image has no range: all zeros rather than a division by zero.
    Image.fromarray(np.full((3, 3), 777, dtype=np.uint16)).save(tmp_path / "flat.png")
    assert (read_image(tmp_path / "flat.png") == 0).all()


def test_read_image_applies_exif_orientation(tmp_path):
    # Stored 40 wide x 20 high; four flat quadrant colours so JPEG noise cannot confuse them.
    h, w = 20, 40
    stored = np.zeros((h, w, 3), dtype=np.uint8)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    stored[: h // 2, : w // 2] = colours[0]
    stored[: h // 2, w // 2 :] = colours[1]
    stored[h // 2 :, : w // 2] = colours[2]
    stored[h // 2 :, w // 2 :] = colours[3]
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    im.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)

    arr = read_image(tmp_path / "r.jpg")
    expected = np.rot90(stored, k=-1)  # clockwise
    assert arr.shape == expected.shape == (40, 20, 3)
    # Compare the centre of each quadrant (away from JPEG ringing at the edges).
    for ys in (slice(3, 7), slice(33, 37)):
        for xs in (slice(3, 7), slice(13, 17)):
            diff = np.abs(arr[ys, xs].astype(int) - expected[ys, xs].astype(int))
            assert diff.max() < 40, (ys, xs, arr[ys, xs].mean((0, 1)), expected[ys, xs].mean((0, 1)))


@pytest.mark.parametrize("kind", ["empty", "truncated_png", "truncated_jpg", "text", "missing"])
def test_read_image_bad_files_raise_image_read_error(tmp_path, kind):
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    if kind == "empty":
        path = tmp_path / "empty.png"
        path.write_bytes(b"")
    elif kind == "truncated_png":
        path = tmp_path / "cut.png"
        Image.fromarray(noise).save(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "truncated_jpg":
        path = tmp_path / "cut.jpg"
        Image.fromarray(noise).save(path, quality=90)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif kind == "text":
        path = tmp_path / "fake.png"
        path.write_text("this is not a PNG")
    else:
        path = tmp_path / "nothing_here.png"
    with pytest.raises(ImageReadError) as ei:
        read_image(path)
    assert path.name in str(ei.value)
    assert isinstance(ei.value, ValueError)


def test_project_layout_is_the_one_spelling_of_the_on_disk_names(tmp_path):
    """label, provenance, journal, classes, versions and project-file paths all come from ProjectLayout."""
    from segstudio.engine.versions import versions_dir
    from segstudio.io import ProjectLayout, label_path_for
    from segstudio.io.journal import journal_path_for
    from segstudio.io.project import Project
    from segstudio.io.provenance_files import provenance_path_for

    image = tmp_path / "a b.png"
    lay = ProjectLayout.of_image(image)
    assert lay.folder == tmp_path
    assert label_path_for(image) == lay.label_path(image) == tmp_path / "labels" / "a b.png"
    assert provenance_path_for(image) == lay.provenance_path(image) == tmp_path / "labels" / "provenance" / "a b.png"
    assert journal_path_for(image).parent == lay.journal_dir == tmp_path / "labels" / ".journal"
    assert versions_dir(tmp_path) == lay.models_dir == tmp_path / "labels" / "models"
    assert lay.classes_file == tmp_path / "labels" / "classes.json"
    assert Project(tmp_path).path == lay.project_file == tmp_path / "segstudio.json"
