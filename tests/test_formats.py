"""Label formats: exact round trips, standard-conforming files, clear errors, and `segstudio convert`."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from segstudio.cli import main
from segstudio.core.labels import IGNORE_INDEX, ClassSpec
from segstudio.io import load_classes, read_index_png, write_index_png
from segstudio.io.formats import (
    FORMAT_SUFFIX,
    FORMATS,
    LABELME_IGNORE,
    VOC_VOID_COLOR,
    LabelFormatError,
    convert,
    detect_format,
    ignore_color_for,
    labelme_shapes,
    read_color_png,
    read_labelme_json,
    read_labels,
    write_labels,
)

CLASSES = ClassSpec(("background", "disc", "box", "line"))


def shapes_map() -> np.ndarray:
    """Nested ring / hole / island, an ignore hole, a box with an ignore window, a 1-px line, ignore at the border."""
    m = np.zeros((64, 96), np.uint8)
    cv2.circle(m, (32, 32), 22, 1, -1)
    cv2.circle(m, (32, 32), 12, 2, -1)  # ring of disc around a box-class disc
    cv2.circle(m, (32, 32), 5, 1, -1)  # island of disc inside it
    cv2.circle(m, (32, 32), 2, IGNORE_INDEX, -1)  # ignore hole inside the island
    cv2.rectangle(m, (62, 6), (90, 50), 2, -1)
    cv2.rectangle(m, (68, 14), (80, 24), IGNORE_INDEX, -1)
    cv2.line(m, (60, 58), (94, 58), 3, 1)  # 1-px-wide horizontal line
    m[0:4, 0:6] = IGNORE_INDEX
    return m


def noise_map(seed: int, shape=(37, 53)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.integers(0, CLASSES.num_classes, shape).astype(np.uint8)
    m[rng.random(shape) < 0.15] = IGNORE_INDEX
    return m


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("make", [shapes_map, lambda: noise_map(1), lambda: noise_map(2, (5, 3))], ids=["shapes", "noise", "tiny"])
def test_round_trip_is_exact(tmp_path, fmt, make):
    labels = make()
    path = tmp_path / f"x{FORMAT_SUFFIX[fmt]}"
    write_labels(path, labels, fmt, CLASSES)
    assert detect_format(path) == fmt
    items, _ = read_labels(path, fmt, CLASSES)
    assert len(items) == 1
    np.testing.assert_array_equal(items[0].labels, labels)


def test_labelme_nice_shapes_need_only_polygons(tmp_path):
    labels = shapes_map()
    shapes = labelme_shapes(labels, CLASSES)
    kinds = {s["shape_type"] for s in shapes}
    assert kinds == {"polygon"}, "no fix-up rectangles for smooth shapes, holes and 1-px lines"
    # one polygon per connected component: bg, outer disc ring, box ring, island, 2 ignore holes, box, line
    assert sorted(s["label"] for s in shapes) == sorted(
        ["background", "disc", "box", "disc", LABELME_IGNORE, "box", LABELME_IGNORE, "line"]
    )
    # islands come after what surrounds them
    order = [s["label"] for s in shapes]
    assert order.index("background") == 0 and order[-1] in (LABELME_IGNORE, "line")


def test_labelme_layering_of_a_handmade_file(tmp_path):
    doc = {
        "shapes": [
            {"label": "box", "points": [[0, 0], [9, 0], [9, 9], [0, 9]], "shape_type": "polygon"},
            {"label": "disc", "points": [[2, 2], [5, 5]], "shape_type": "rectangle"},
            {"label": LABELME_IGNORE, "points": [[3, 3], [3, 3]], "shape_type": "rectangle"},
        ],
        "imagePath": "a.png",
        "imageHeight": 12,
        "imageWidth": 10,
    }
    (tmp_path / "a.json").write_text(json.dumps(doc))
    item = read_labelme_json(tmp_path / "a.json", CLASSES)
    expect = np.full((12, 10), IGNORE_INDEX, np.uint8)
    expect[0:10, 0:10] = 2
    expect[2:6, 2:6] = 1
    expect[3, 3] = IGNORE_INDEX
    np.testing.assert_array_equal(item.labels, expect)
    assert item.image_name == "a.png"


def test_coco_file_is_standard(tmp_path):
    labels = shapes_map()
    path = tmp_path / "ann.json"
    write_labels(path, labels, "coco", CLASSES, image_name="img.jpg")
    coco = COCO(str(path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES.names)
    (img,) = coco.loadImgs(coco.getImgIds())
    assert (img["file_name"], img["height"], img["width"]) == ("img.jpg", 64, 96)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
    assert len(anns) == 4
    for ann in anns:
        assert isinstance(ann["segmentation"]["counts"], str)
        cls = ann["category_id"] - 1
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), labels == cls)
        assert ann["area"] == int((labels == cls).sum())


def test_camvid_mask_round_trips_and_colour_matches_palette(tmp_path, camvid):
    classes = load_classes(camvid / "classes.json")
    mask_file = sorted((camvid / "masks").glob("*.png"))[0]
    labels = read_index_png(mask_file)
    assert (labels == IGNORE_INDEX).any()
    for fmt in FORMATS:
        path = tmp_path / f"m{FORMAT_SUFFIX[fmt]}"
        write_labels(path, labels, fmt, classes)
        np.testing.assert_array_equal(read_labels(path, fmt, classes)[0][0].labels, labels)
    rgb = np.asarray(Image.open(tmp_path / "m.png").convert("RGB"))
    ys, xs = np.nonzero(labels == 3)
    assert tuple(rgb[ys[0], xs[0]]) == classes.colors[3]  # Road is (128, 64, 128)
    ys, xs = np.nonzero(labels == IGNORE_INDEX)
    assert tuple(rgb[ys[0], xs[0]]) == (0, 0, 0)


def test_ignore_colour_avoids_a_black_class():
    assert ignore_color_for(CLASSES) == VOC_VOID_COLOR  # default palette: class 0 is black
    assert ignore_color_for(ClassSpec(("a", "b"), ((1, 2, 3), (4, 5, 6)))) == (0, 0, 0)
    with pytest.raises(LabelFormatError, match="share colours"):
        ignore_color_for(ClassSpec(("a", "b"), ((1, 2, 3), (1, 2, 3))))


def test_unknown_colour_is_named_with_its_location(tmp_path):
    labels = shapes_map()
    write_labels(tmp_path / "c.png", labels, "color", CLASSES)
    rgb = np.array(Image.open(tmp_path / "c.png"))
    rgb[40, 7] = (1, 2, 3)
    rgb[41, 7] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    with pytest.raises(LabelFormatError, match=r"colour \(1, 2, 3\) in 2 pixels \(first at x=7, y=40\)"):
        read_color_png(tmp_path / "c.png", CLASSES)


def _labelme(**over):
    doc = {"shapes": [{"label": "disc", "points": [[1, 1], [5, 1], [5, 5]], "shape_type": "polygon"}],
           "imagePath": "a.png", "imageHeight": 8, "imageWidth": 8}
    doc.update(over)
    return doc


def _coco(**over):
    doc = {"images": [{"id": 1, "file_name": "a.png", "height": 4, "width": 4}],
           "categories": [{"id": 1, "name": "disc"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                            "segmentation": {"size": [4, 4], "counts": [2, 3, 11]}}]}
    doc.update(over)
    return doc


BAD_FILES = [
    ("labelme", _labelme(shapes=[{"label": "cat", "points": [[1, 1], [2, 2], [1, 2]]}]), "'cat' is not a class"),
    ("labelme", {k: v for k, v in _labelme().items() if k != "imageHeight"}, "no 'imageHeight'"),
    ("labelme", _labelme(imageWidth=True), "imageHeight/imageWidth"),
    ("labelme", _labelme(imageWidth=10**12), "imageHeight/imageWidth"),
    ("labelme", _labelme(shapes=[{"label": "disc", "points": [[1, "x"]]}]), "'points'"),
    ("labelme", _labelme(shapes=[{"label": "disc", "points": [[1e300, 1]]}]), "'points'"),
    ("labelme", _labelme(shapes=[{"label": "disc", "points": [[1, 1]], "shape_type": "line"}]), "not supported"),
    ("labelme", _labelme(shapes=[{"label": "disc", "points": [[1, 1]], "shape_type": "circle"}]), "exactly 2"),
    ("labelme", _labelme(shapes="nope"), "must be a list"),
    ("labelme", _labelme(shapes=[None]), "must be an object"),
    ("coco", _coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1,
                                 "segmentation": {"size": [4, 5], "counts": "0"}}]), "differs from the image"),
    ("coco", _coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1,
                                 "segmentation": {"size": [4, 4], "counts": "0"}}]), "cover 0 pixels"),
    ("coco", _coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1,
                                 "segmentation": {"size": [4, 4], "counts": "o"}}]), "ends inside"),
    ("coco", _coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1,
                                 "segmentation": {"size": [4, 4], "counts": "\x01"}}]), "outside '0'..'o'"),
    ("coco", _coco(annotations=[{"id": 1, "image_id": 7, "category_id": 1, "segmentation": []}]), "image_id 7"),
    ("coco", _coco(annotations=[{"id": 1, "image_id": 1, "category_id": 9, "segmentation": []}]), "category_id 9"),
    ("coco", _coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1}]), "no 'segmentation'"),
    ("coco", _coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 2, 3]]}]), "polygon"),
    ("coco", _coco(categories=[{"id": 1, "name": "dog"}]), "'dog'"),
    ("coco", _coco(images=[{"id": 1, "file_name": "a.png", "height": -4, "width": 4}]), "height/width"),
    ("coco", {"images": []}, "needs a list 'annotations'"),
]


@pytest.mark.parametrize("fmt,doc,message", BAD_FILES)
def test_bad_json_files_raise_label_format_error(tmp_path, fmt, doc, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(LabelFormatError, match=message):
        read_labels(path, fmt, CLASSES)


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n broken", b"[1, 2", "{\"shapes\": 1}".encode(), b"[" * 100000])
@pytest.mark.parametrize("suffix", [".png", ".json"])
def test_garbage_files_raise_label_format_error(tmp_path, content, suffix):
    path = tmp_path / f"g{suffix}"
    path.write_bytes(content)
    with pytest.raises(LabelFormatError):
        read_labels(path, None, CLASSES)
    for fmt in FORMATS:
        if FORMAT_SUFFIX[fmt] == suffix:
            with pytest.raises(LabelFormatError):
                read_labels(path, fmt, CLASSES)


def test_coco_reads_polygons_and_uncompressed_rle(tmp_path):
    doc = _coco()
    doc["annotations"].append({"id": 2, "image_id": 1, "category_id": 1, "segmentation": [[0, 3, 1, 3, 1, 3.9, 0, 3.9]]})
    (tmp_path / "c.json").write_text(json.dumps(doc))
    (item,), classes = read_labels(tmp_path / "c.json", None, None)
    assert classes.names == ("disc",)
    expect = np.full((4, 4), IGNORE_INDEX, np.uint8)
    expect.T.flat[2:5] = 0  # column-major runs: 2 off, 3 on
    assert (item.labels[expect == 0] == 0).all() and item.labels[3, 0] == 0
    assert item.stem == "a"


# ----------------------------------------------------------------------------- convert


@pytest.fixture
def mask_folder(tmp_path):
    root = tmp_path / "ds"
    (root / "masks").mkdir(parents=True)
    (root / "images").mkdir()
    for i in range(3):
        write_index_png(root / "masks" / f"s{i}.png", noise_map(i, (20, 30)) if i else shapes_map())
        Image.new("RGB", (30, 20)).save(root / "images" / f"s{i}.jpg")
    (root / "classes.json").write_text(json.dumps(CLASSES.to_json()))
    return root


@pytest.mark.parametrize("to", ["voc", "color", "labelme", "coco"])
def test_convert_folder_there_and_back(mask_folder, tmp_path, to):
    out = tmp_path / to
    written = convert(mask_folder / "masks", out, to)
    assert (out / "classes.json").is_file()
    if to == "labelme":
        doc = json.loads((out / "s1.json").read_text())
        assert doc["imagePath"] == os.path.join("..", "ds", "images", "s1.jpg")
        assert (doc["imageHeight"], doc["imageWidth"]) == (20, 30)
    if to == "coco":
        assert written[0] == out / "annotations.json"
        assert [im["file_name"] for im in json.loads(written[0].read_text())["images"]] == [
            os.path.join("..", "ds", "images", f"s{i}.jpg") for i in range(3)]
    back = tmp_path / "back"
    convert(out, back, "index")
    for i in range(3):
        np.testing.assert_array_equal(read_index_png(back / f"s{i}.png"), read_index_png(mask_folder / "masks" / f"s{i}.png"))


def test_convert_keeps_image_paths_valid(mask_folder, tmp_path):
    coco = convert(mask_folder / "masks", tmp_path / "a" / "b" / "ann.json", "coco")[0]
    out = tmp_path / "lm"
    convert(coco, out, "labelme")
    doc = json.loads((out / "s2.json").read_text())
    assert (out / doc["imagePath"]).resolve() == (mask_folder / "images" / "s2.jpg").resolve()


def test_convert_refuses_to_overwrite(mask_folder, tmp_path):
    src = mask_folder / "masks"
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    with pytest.raises(FileExistsError, match="input"):
        convert(src, src, "index", overwrite=True)  # inputs are never replaced
    convert(src, tmp_path / "v", "voc")
    with pytest.raises(FileExistsError, match="--overwrite"):
        convert(src, tmp_path / "v", "voc")
    convert(src, tmp_path / "v", "voc", overwrite=True)
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before


def test_convert_single_file_and_missing_classes(mask_folder, tmp_path):
    convert(mask_folder / "masks" / "s0.png", tmp_path / "one.json", "labelme")
    assert read_labelme_json(tmp_path / "one.json", CLASSES).labels.shape == (64, 96)
    lone = tmp_path / "lone"
    lone.mkdir()
    write_labels(lone / "c.png", shapes_map(), "color", CLASSES)
    with pytest.raises(LabelFormatError, match="classes"):
        convert(lone / "c.png", tmp_path / "x.png", "index")


def test_cli_convert(mask_folder, tmp_path, capsys):
    out = tmp_path / "col"
    assert main(["convert", str(mask_folder / "masks"), str(out), "--to", "color"]) == 0
    assert "wrote 3 color file(s)" in capsys.readouterr().out
    assert main(["convert", str(mask_folder / "masks"), str(out), "--to", "color"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    rgb_dir = tmp_path / "plain"
    rgb_dir.mkdir()
    (out / "s0.png").rename(rgb_dir / "s0.png")
    assert main(["convert", str(rgb_dir), str(tmp_path / "idx"), "--to", "index", "--classes",
                 str(mask_folder / "classes.json"), "--from", "color"]) == 0
    np.testing.assert_array_equal(read_index_png(tmp_path / "idx" / "s0.png"), shapes_map())


# ----------------------------------------------------------------------------- hostile sizes and budgets


@pytest.mark.parametrize("h, w", [(10**6, 10**6), (20001, 20000), (1, 10**6), (70000, 2)])
@pytest.mark.parametrize("fmt", ["coco", "labelme"])
def test_claimed_size_over_the_image_limit_is_refused_before_allocating(tmp_path, fmt, h, w):
    import resource

    from segstudio.io.images import MAX_PIXELS

    if fmt == "coco":
        doc = {"images": [{"id": 1, "file_name": "a.png", "height": h, "width": w}], "annotations": [],
               "categories": [{"id": 1, "name": "disc"}]}
    else:
        doc = {"shapes": [], "imageHeight": h, "imageWidth": w}
    p = tmp_path / "big.json"
    p.write_text(json.dumps(doc))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(LabelFormatError) as err:
        read_labels(p, fmt, CLASSES)
    msg = str(err.value)
    assert str(p) in msg and f"{w}x{h}" in msg and str(MAX_PIXELS) in msg and "tile" in msg  # claim, limit, what to do
    # refused before allocating: the peak memory did not grow by the claimed map (no wall-clock assert)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 50_000


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools.mask.decode under numpy 2
def test_rle_painting_matches_pycocotools_on_random_masks():
    """Run-by-run painting (few runs) and pycocotools decoding (many runs) give pycocotools' masks exactly."""
    from pycocotools import mask as mask_utils

    from segstudio.io.formats import _check_segmentation, _paint_segmentation

    rng = np.random.default_rng(0)
    for t in range(200):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        m = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        if t % 2:  # a blob: few runs, painted slice by slice
            m[:] = 0
            m[rng.integers(0, h):, rng.integers(0, w):] = 1
        rle = mask_utils.encode(np.asfortranarray(m))
        poly = [rng.uniform(-5, max(h, w) + 5, 8).tolist()]
        for seg, want in (({"size": [h, w], "counts": rle["counts"].decode()}, m.astype(bool)),
                          (poly, mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(poly, h, w))).astype(bool))):
            parsed, _, _ = _check_segmentation(seg, h, w, None, "t")
            canvas = np.full((w, h), IGNORE_INDEX, np.uint8)
            _paint_segmentation(canvas, parsed, 1)
            np.testing.assert_array_equal(canvas.T == 1, want, err_msg=f"case {t}")


@pytest.mark.parametrize("doc, message", [
    ({"images": [{"id": 1, "file_name": "a.png", "height": 4, "width": 4}], "categories": [{"id": 1, "name": "disc"}],
      "annotations": [{"image_id": 1, "category_id": 1, "segmentation": {"size": [4, 4], "counts": [2, 15]}}]},
     "cover 17 pixels"),
    ({"images": [{"id": 1, "file_name": "a.png", "height": 4, "width": 4}], "categories": [{"id": 1, "name": "disc"}],
      "annotations": [{"image_id": 1, "category_id": 1, "segmentation": {"size": [4, 4], "counts": [10**30]}}]},
     "exceed"),
    ({"images": [{"id": 1, "file_name": "a.png", "height": 20000, "width": 20000}], "categories": [{"id": 1, "name": "disc"}],
      "annotations": [{"image_id": 1, "category_id": 1, "segmentation": {"size": [20000, 20000], "counts": [0, 20000**2]}}] * 50},
     "more than 8 times"),
    ({"images": [{"id": 1, "file_name": "a.png", "height": 20000, "width": 20000}], "categories": [{"id": 1, "name": "disc"}],
      "annotations": [{"image_id": 1, "category_id": 1,
                       "segmentation": [np.random.default_rng(0).uniform(0, 20000, 4000).tolist()]}]},
     "outlines total"),
    ({"shapes": [{"label": "disc", "points": [[0, 0], [19999, 0], [19999, 19999]]}] * 50, "imageHeight": 20000,
      "imageWidth": 20000}, "more than 8 times"),
    ({"shapes": [{"label": "disc", "points": json.loads("[" * 900 + "]" * 900)}], "imageHeight": 4, "imageWidth": 4},
     "points must be"),
])
def test_hostile_counts_and_shapes_fail_fast_before_allocating(tmp_path, doc, message):
    import resource

    p = tmp_path / "h.json"
    p.write_text(json.dumps(doc))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(LabelFormatError, match=message) as err:
        read_labels(p, None, CLASSES)
    # refused before allocating the claimed map: peak memory grew by less than 50 MB (no wall-clock assert)
    assert str(p) in str(err.value) and resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 50_000


def test_deeply_nested_json_is_a_label_format_error(tmp_path):
    p = tmp_path / "deep.json"
    p.write_bytes(b'{"shapes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    with pytest.raises(LabelFormatError, match="not valid JSON"):
        read_labels(p, "labelme", CLASSES)
