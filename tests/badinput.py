"""Hostile-input corpus for SegStudio's readers (not a test module; used by tests/test_badinput.py).

``generate(root)`` writes more than 1,000 files under ``root`` and returns one :class:`Case` per file:

* ``images/`` — every image a user may drop into a folder: valid files in every mode (RGB, RGBA, L, LA,
  palette, bilevel, 16-bit, 32-bit int, float, CMYK, planar and float-RGB TIFF, multi-page), EXIF-rotated
  JPEG/PNG (orientations 1-8, malformed EXIF), 1×1 / 1×N / N×1 sizes, 0-byte files of every extension,
  truncated files (many cut points), files with flipped bytes, header-only 20000×20000 (and larger) PNG,
  TIFF, JPEG and BMP headers crafted byte by byte (no pixels are ever allocated), files whose extension
  lies, text and random bytes, non-UTF-8 names, 240+ byte names, names that look like CLI options, plus
  a folder, a FIFO and dangling symlinks with image names.
* ``maskset/`` — a dataset folder (``images/``, ``masks/``, ``classes.json``, K = 3): valid masks and
  masks of the wrong size, with values ≥ K, colour / RGBA / 16-bit masks, empty, truncated, corrupted,
  header-only huge.
* ``classsets/<n>/`` — dataset folders with hostile ``classes.json`` files.
* ``colour/`` (colour-coded masks with unknown colours), ``labelme/``, ``coco/`` — hostile label files
  for :mod:`segstudio.io.formats` (missing keys, wrong types, non-UTF-8, bad RLE, out-of-range shapes).

Each case says what a correct reader must do: ``"ok"`` (load, with the expected ``(H, W)``), ``"error"``
(a clear error), or ``"any"`` (either, e.g. a JPEG cut after its header may decode partially or fail).
Everything is deterministic (fixed seeds).
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

K = 3
"""Classes of the mask / colour / labelme / COCO corpora."""
CLASSES_JSON = [{"id": 0, "name": "bg", "color": [0, 0, 0]}, {"id": 1, "name": "cat", "color": [200, 0, 0]},
                {"id": 2, "name": "dog", "color": [0, 200, 0]}]
MASK_IMAGE_SHAPE = (6, 8)
"""(H, W) of the valid image each corpus mask is paired with."""
HUGE = 20000


@dataclass
class Case:
    """One corpus file.

    Attributes:
        path: the file (or folder / FIFO / link) on disk.
        group: ``image``, ``mask``, ``classes``, ``colour``, ``labelme`` or ``coco``.
        kind: short description (``"png-RGBA-5x7"``, ``"truncated-jpeg@37"``...).
        expect: ``"ok"``, ``"error"`` or ``"any"``.
        shape: expected ``(H, W)`` when ``expect == "ok"`` (after EXIF rotation), else ``None``.
        pixels: exact expected uint8 (H, W, 3) RGB for lossless simple cases, else ``None``.
        listed: False for entries a folder listing must skip (folders, FIFOs, dangling links).
    """

    path: Path
    group: str
    kind: str
    expect: str
    shape: tuple[int, int] | None = None
    pixels: np.ndarray | None = field(default=None, repr=False)
    listed: bool = True


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return _rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _pil_bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _tiff_bytes(arr: np.ndarray, **kw) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **kw)
    return buf.getvalue()


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_header_only(w: int, h: int, bit_depth: int = 8, colour_type: int = 2, idat: bytes = b"") -> bytes:
    """A PNG with a valid IHDR claiming ``w``×``h`` and no (or a tiny) IDAT: costs nothing unless decoded."""
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0)
    body = _png_chunk(b"IHDR", ihdr)
    if idat:
        body += _png_chunk(b"IDAT", idat)
    return b"\x89PNG\r\n\x1a\n" + body + _png_chunk(b"IEND", b"")


def tiff_header_only(w: int, h: int, samples: int = 1, bits: int = 8, sample_format: int = 1) -> bytes:
    """A little-endian baseline TIFF whose IFD claims ``w``×``h`` with one strip that is not there."""
    entries = [
        (256, 4, 1, w),  # ImageWidth LONG
        (257, 4, 1, h),  # ImageLength
        (258, 3, 1, bits),  # BitsPerSample (same for every sample: one value is accepted by readers)
        (259, 3, 1, 1),  # Compression none
        (262, 3, 1, 2 if samples >= 3 else 1),  # Photometric RGB / BlackIsZero
        (273, 4, 1, 8),  # StripOffsets
        (277, 3, 1, samples),  # SamplesPerPixel
        (278, 4, 1, h),  # RowsPerStrip
        (279, 4, 1, min(w * h * samples * bits // 8, 2**32 - 1)),  # StripByteCounts
        (339, 3, 1, sample_format),  # SampleFormat 1 uint, 3 float
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        ifd += struct.pack("<HHI", tag, typ, count) + (struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value))
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd


def jpeg_header_only(w: int, h: int) -> bytes:
    """SOI + a baseline SOF0 claiming ``w``×``h`` (3 components) + EOI, no tables, no scan."""
    sof = struct.pack(">BHHB", 8, h, w, 3) + b"".join(struct.pack(">BBB", i, 0x11, 0) for i in (1, 2, 3))
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"


def bmp_header_only(w: int, h: int) -> bytes:
    """A 24-bit BMP header claiming ``w``×``h`` with no pixel array."""
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


def _exif_jpeg(arr: np.ndarray, orientation: int) -> bytes:
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _pil_bytes(im, "JPEG", quality=95, exif=exif.tobytes())


class _Writer:
    """Writes files and collects cases."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cases: list[Case] = []

    def add(self, rel: str | bytes, data: bytes, group: str, kind: str, expect: str, shape=None, pixels=None) -> Path:
        if isinstance(rel, bytes):  # a non-UTF-8 name: write through the byte-level API
            folder, _, name = rel.rpartition(b"/")
            d = os.fsencode(self.root) + b"/" + folder
            os.makedirs(d, exist_ok=True)
            fd = os.open(d + b"/" + name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            path = Path(os.fsdecode(d + b"/" + name))
        else:
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        # Hidden files (".x.png") are skipped by folder listings by design; a direct read must still work.
        self.cases.append(Case(path, group, kind, expect, shape, pixels, listed=not path.name.startswith(".")))
        return path


def _valid_images(w: _Writer) -> list[tuple[str, bytes, str]]:
    """Write the valid-image cases; return ``(kind, bytes, ext)`` bases for truncation / corruption."""
    sizes = [(1, 1), (1, 9), (9, 1), (5, 7), (48, 64)]
    bases = []
    n = 0
    for h, wd in sizes:
        rgb = _rgb(h, wd, seed=h * 100 + wd)
        gray = rgb[..., 0].copy()
        rgba = np.dstack([rgb, _rng(1).integers(0, 256, (h, wd), dtype=np.uint8)])
        u16 = (gray.astype(np.uint16) * 257)
        f32 = gray.astype(np.float32) / 255.0
        pal = Image.fromarray(gray).quantize(colors=16) if h * wd > 1 else Image.fromarray(gray).convert("P")
        bilevel = Image.fromarray((gray > 127).astype(np.uint8) * 255).convert("1")
        rep = lambda a: np.repeat(a[..., None], 3, axis=2)  # noqa: E731
        variants = [
            ("png-RGB", _pil_bytes(Image.fromarray(rgb), "PNG"), ".png", rgb),
            ("png-RGBA", _pil_bytes(Image.fromarray(rgba), "PNG"), ".png", rgb),
            ("png-L", _pil_bytes(Image.fromarray(gray), "PNG"), ".png", rep(gray)),
            ("png-LA", _pil_bytes(Image.fromarray(np.dstack([gray, gray]), "LA"), "PNG"), ".png", rep(gray)),
            ("png-P", _pil_bytes(pal, "PNG"), ".png", np.asarray(pal.convert("RGB"))),
            ("png-P-transparency", _pil_bytes(pal, "PNG", transparency=0), ".png", np.asarray(pal.convert("RGB"))),
            ("png-1", _pil_bytes(bilevel, "PNG"), ".png", np.asarray(bilevel.convert("RGB"))),
            ("png-I16", _pil_bytes(Image.fromarray(u16), "PNG"), ".png", None),
            ("png-RGB16", _cv2_png16(rgb), ".png", None),
            ("jpeg-RGB", _pil_bytes(Image.fromarray(rgb), "JPEG", quality=90), ".jpg", None),
            ("jpeg-progressive", _pil_bytes(Image.fromarray(rgb), "JPEG", quality=90, progressive=True), ".jpeg", None),
            ("jpeg-L", _pil_bytes(Image.fromarray(gray), "JPEG"), ".jpg", None),
            ("jpeg-CMYK", _pil_bytes(Image.fromarray(rgb).convert("CMYK"), "JPEG"), ".jpg", None),
            ("tiff-RGB", _pil_bytes(Image.fromarray(rgb), "TIFF"), ".tif", rgb),
            ("tiff-RGBA", _pil_bytes(Image.fromarray(rgba), "TIFF"), ".tiff", rgb),
            ("tiff-L-deflate", _pil_bytes(Image.fromarray(gray), "TIFF", compression="tiff_adobe_deflate"), ".tif", rep(gray)),
            ("tiff-u16", _tiff_bytes(u16), ".tif", None),
            ("tiff-u16-RGB", _tiff_bytes(rgb.astype(np.uint16) * 257, photometric="rgb"), ".tif", None),
            ("tiff-f32", _tiff_bytes(f32), ".tif", None),
            ("tiff-f32-RGB", _tiff_bytes(rgb.astype(np.float32) / 255, photometric="rgb"), ".tif", None),
            ("tiff-f64-nan", _tiff_bytes(np.where(gray > 200, np.nan, gray).astype(np.float64)), ".tif", None),
            ("tiff-i32", _tiff_bytes(gray.astype(np.int32) - 128), ".tif", None),
            ("tiff-planar-RGB", _tiff_bytes(np.moveaxis(rgb, 2, 0).copy(), photometric="rgb", planarconfig="separate"), ".tif", None),
            ("tiff-multipage", _tiff_bytes(np.stack([rgb, rgb[::-1]]), photometric="rgb"), ".tif", None),
            ("bmp-RGB", _pil_bytes(Image.fromarray(rgb), "BMP"), ".bmp", rgb),
            ("webp-lossless", _pil_bytes(Image.fromarray(rgb), "WEBP", lossless=True), ".webp", rgb),
        ]
        for kind, data, ext, pixels in variants:
            n += 1
            w.add(f"images/v{n:03d}_{kind}_{h}x{wd}{ext}", data, "image", f"{kind}-{h}x{wd}", "ok", (h, wd), pixels)
            if (h, wd) == (48, 64) and kind in (
                "png-RGB", "png-RGB16", "png-P", "jpeg-RGB", "jpeg-progressive", "tiff-RGB", "tiff-f32-RGB", "bmp-RGB", "webp-lossless",
            ):
                bases.append((kind, data, ext))
    # EXIF orientation: 5-8 swap width and height (JPEG and PNG eXIf), malformed EXIF blocks.
    arr = _rgb(5, 7, seed=7)
    for o in range(1, 9):
        shape = (7, 5) if o >= 5 else (5, 7)
        w.add(f"images/exif{o}_5x7.jpg", _exif_jpeg(arr, o), "image", f"exif-jpeg-orientation{o}", "ok", shape)
        exif = Image.Exif()
        exif[0x0112] = o
        w.add(f"images/exif{o}_5x7.png", _pil_bytes(Image.fromarray(arr), "PNG", exif=exif.tobytes()), "image",
              f"exif-png-orientation{o}", "ok", shape)
    for i, bad in enumerate([b"Exif\x00\x00garbage", b"Exif\x00\x00II*\x00\xff\xff\xff\x7f", b"\x00" * 40]):
        data = _pil_bytes(Image.fromarray(arr), "JPEG")
        app1 = b"\xff\xe1" + struct.pack(">H", len(bad) + 2) + bad
        w.add(f"images/badexif{i}.jpg", data[:2] + app1 + data[2:], "image", f"malformed-exif{i}", "any")
    exif = Image.Exif()
    exif[0x0112] = 99
    w.add("images/exif99_5x7.jpg", _pil_bytes(Image.fromarray(arr), "JPEG", exif=exif.tobytes()), "image",
          "exif-orientation-99", "ok", (5, 7))
    return bases


def _cv2_png16(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", rgb[..., ::-1].astype(np.uint16) * 257)
    assert ok
    return buf.tobytes()


def _hostile_images(w: _Writer, bases: list[tuple[str, bytes, str]]) -> None:
    for ext in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"):
        for e in (ext, ext.upper()):
            w.add(f"images/empty_{e[1:]}{e}", b"", "image", "0-byte", "error")
    for kind, data, ext in bases:
        cuts = sorted({1, 4, 8, 12, 16, 24, 33, 50, 64, 100, 200} | {int(len(data) * f) for f in np.linspace(0.05, 0.995, 18)})
        for c in cuts:
            if 0 < c < len(data):
                w.add(f"images/trunc_{kind}_{c}{ext}", data[:c], "image", f"truncated-{kind}@{c}", "error" if c <= 16 else "any")
        rng = _rng(len(data))
        for i in range(40):
            b = bytearray(data)
            for pos in rng.integers(0, len(b), size=int(rng.integers(1, 9))):
                b[pos] ^= int(rng.integers(1, 256))
            w.add(f"images/flip_{kind}_{i:02d}{ext}", bytes(b), "image", f"bitflip-{kind}-{i}", "any")
    huge = [
        ("png-20000-RGB", png_header_only(HUGE, HUGE), ".png"),
        ("png-20000-RGBA16", png_header_only(HUGE, HUGE, 16, 6), ".png"),
        ("png-20000-L", png_header_only(HUGE, HUGE, 8, 0), ".png"),
        ("png-20000-idat", png_header_only(HUGE, HUGE, idat=zlib.compress(b"\x00" * 1000)), ".png"),
        ("png-65535", png_header_only(65535, 65535), ".png"),
        ("png-max-x1", png_header_only(2**31 - 1, 1), ".png"),
        ("png-1xmax", png_header_only(1, 2**31 - 1), ".png"),
        ("png-0x0", png_header_only(0, 0), ".png"),
        ("png-0x5", png_header_only(0, 5), ".png"),
        ("png-bad-depth", png_header_only(5, 5, 7, 2), ".png"),
        ("tiff-20000-L", tiff_header_only(HUGE, HUGE), ".tif"),
        ("tiff-20000-RGB", tiff_header_only(HUGE, HUGE, 3), ".tif"),
        ("tiff-20000-f32", tiff_header_only(HUGE, HUGE, 1, 32, 3), ".tif"),
        ("tiff-20000-f32-RGB", tiff_header_only(HUGE, HUGE, 3, 32, 3), ".tiff"),
        ("tiff-20000-u16", tiff_header_only(HUGE, HUGE, 1, 16), ".tif"),
        ("tiff-0x0", tiff_header_only(0, 0), ".tif"),
        ("jpeg-20000", jpeg_header_only(HUGE, HUGE), ".jpg"),
        ("jpeg-65535", jpeg_header_only(65535, 65535), ".jpg"),
        ("bmp-20000", bmp_header_only(HUGE, HUGE), ".bmp"),
        ("bmp-negative", bmp_header_only(HUGE, -HUGE), ".bmp"),
    ]
    for kind, data, ext in huge:
        w.add(f"images/huge_{kind}{ext}", data, "image", f"header-only-{kind}", "error")
    liars = [
        ("png-as-jpg", _pil_bytes(Image.fromarray(_rgb(4, 6)), "PNG"), ".jpg", "ok", (4, 6)),
        ("jpeg-as-tif", _pil_bytes(Image.fromarray(_rgb(4, 6)), "JPEG"), ".tif", "ok", (4, 6)),
        ("gif-as-png", _pil_bytes(Image.fromarray(_rgb(4, 6)).convert("P"), "GIF"), ".png", "ok", (4, 6)),
        ("text-as-png", b"this is not an image\n" * 10, ".png", "error", None),
        ("html-as-jpg", b"<html><body>404 Not Found</body></html>", ".jpg", "error", None),
        ("json-as-tif", json.dumps({"image": [1, 2, 3]}).encode(), ".tif", "error", None),
        ("svg-as-png", b'<svg xmlns="http://www.w3.org/2000/svg" width="20000" height="20000"/>', ".png", "error", None),
        ("zip-as-png", b"PK\x03\x04" + b"\x00" * 100, ".png", "error", None),
        ("magic-only-png", b"\x89PNG\r\n\x1a\n", ".png", "error", None),
        ("magic-only-jpeg", b"\xff\xd8\xff", ".jpg", "error", None),
        ("magic-only-tiff", b"II*\x00", ".tif", "error", None),
        ("tiff-ifd-loop", b"II*\x00\x08\x00\x00\x00\x00\x00\x08\x00\x00\x00", ".tif", "error", None),
        ("nul-bytes", b"\x00" * 4096, ".png", "error", None),
    ]
    for kind, data, ext, expect, shape in liars:
        w.add(f"images/liar_{kind}{ext}", data, "image", kind, expect, shape)
    rng = _rng(42)
    for i in range(40):
        w.add(f"images/random_{i:02d}{['.png', '.jpg', '.tif', '.bmp', '.webp'][i % 5]}",
              rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8).tobytes(), "image", f"random-bytes-{i}", "error")
    # File names: non-UTF-8 bytes, very long, option-like, odd characters. Valid content.
    good = _pil_bytes(Image.fromarray(_rgb(3, 4, seed=5)), "PNG")
    pix = _rgb(3, 4, seed=5)
    names: list[str | bytes] = [
        b"images/latin1_\xe9t\xe9.png", b"images/bad_utf8_\xff\xfe.png", b"images/\xc3\x28_invalid2.png",
        b"images/\xed\xa0\x80_surrogate.png", b"images/\x80\x81\x82.png", b"images/mixed_\xe2\x82_cut.png",
        "images/" + "a" * 250 + ".png", "images/" + "é" * 125 + ".png", "images/" + "猫" * 80 + ".png",
        "images/" + "x" * 240 + ".jpeg", "images/-rf.png", "images/--model=evil.png", "images/ spaces .png",
        "images/new\nline.png", "images/tab\tname.png", "images/quote'\"name.png", "images/..png",
        "images/\u202eevil\u202dgnp.png", "images/emoji_😀.png", "images/UPPER.PNG", "images/semi;colon&amp.png",
        "images/back\\slash.png", "images/star*?.png",
    ]
    for i, name in enumerate(names):
        w.add(name, good, "image", f"name-{i}", "ok", (3, 4), pix)
    # Entries a folder listing must skip (and a direct read must refuse without hanging).
    d = w.root / "images" / "folder_named.png"
    d.mkdir()
    w.cases.append(Case(d, "image", "directory-named-png", "error", listed=False))
    fifo = w.root / "images" / "fifo.png"
    os.mkfifo(fifo)
    w.cases.append(Case(fifo, "image", "fifo-named-png", "error", listed=False))
    for name, target in (("dangling.png", "nowhere.png"), ("loop.png", "loop.png")):
        link = w.root / "images" / name
        os.symlink(target, link)
        w.cases.append(Case(link, "image", f"symlink-{name}", "error", listed=False))


def _masks(w: _Writer) -> None:
    h, wd = MASK_IMAGE_SHAPE
    (w.root / "maskset").mkdir(parents=True, exist_ok=True)
    (w.root / "maskset" / "classes.json").write_text(json.dumps(CLASSES_JSON))
    good_img = _pil_bytes(Image.fromarray(_rgb(h, wd, seed=9)), "PNG")
    rng = _rng(3)
    lab = rng.integers(0, K, (h, wd)).astype(np.uint8)
    lab[0, 0] = 255
    valid = _pil_bytes(Image.fromarray(lab), "PNG")
    pal = Image.fromarray(lab, "L").convert("P")
    pal.putpalette([v for c in CLASSES_JSON for v in c["color"]] + [0] * (768 - 9))
    masks: list[tuple[str, bytes, str, tuple | None]] = [
        ("valid-L", valid, "ok", (h, wd)),
        ("valid-P", _pil_bytes(pal, "PNG"), "ok", (h, wd)),
        ("valid-1", _pil_bytes(Image.fromarray(lab > 0).convert("1"), "PNG"), "ok", (h, wd)),
        ("all-ignore", _pil_bytes(Image.fromarray(np.full((h, wd), 255, np.uint8)), "PNG"), "ok", (h, wd)),
        ("colour-RGB", _pil_bytes(Image.fromarray(np.asarray(pal.convert("RGB"))), "PNG"), "error", None),
        ("colour-RGBA", _pil_bytes(pal.convert("RGBA"), "PNG"), "error", None),
        ("LA", _pil_bytes(Image.fromarray(np.dstack([lab, lab]), "LA"), "PNG"), "error", None),
        ("I16", _pil_bytes(Image.fromarray(lab.astype(np.uint16)), "PNG"), "error", None),
        ("jpeg-in-png", _pil_bytes(Image.fromarray(lab), "JPEG"), "any", None),
        ("empty", b"", "error", None),
        ("text", b"labels go here", "error", None),
        ("huge-header", png_header_only(HUGE, HUGE, 8, 0), "error", None),
        ("huge-tiff-header", tiff_header_only(HUGE, HUGE), "error", None),
    ]
    for sh in [(wd, h), (1, 1), (h - 1, wd), (h, wd + 1), (2 * h, 2 * wd), (1, wd), (h, 1)]:
        masks.append((f"wrong-size-{sh[0]}x{sh[1]}", _pil_bytes(Image.fromarray(rng.integers(0, K, sh).astype(np.uint8)), "PNG"), "error", None))
    for v in (K, K + 1, 7, 100, 254):
        bad = lab.copy()
        bad[h // 2, wd // 2] = v
        masks.append((f"value-{v}", _pil_bytes(Image.fromarray(bad), "PNG"), "error", None))
    bad_p = Image.fromarray(np.where(lab == 1, 9, lab).astype(np.uint8), "L").convert("P")
    masks.append(("palette-index-9", _pil_bytes(bad_p, "PNG"), "error", None))
    for c in (1, 8, 16, 30, 45, 60, len(valid) - 10, len(valid) - 1):
        masks.append((f"truncated@{c}", valid[:c], "error" if c <= 16 else "any", None))
    for i in range(24):
        b = bytearray(valid)
        for pos in rng.integers(0, len(b), size=int(rng.integers(1, 5))):
            b[pos] ^= int(rng.integers(1, 256))
        masks.append((f"bitflip-{i}", bytes(b), "any", None))
    for i, (kind, data, expect, shape) in enumerate(masks):
        stem = f"m{i:03d}"
        (w.root / "maskset" / "images").mkdir(exist_ok=True)
        (w.root / "maskset" / "images" / f"{stem}.png").write_bytes(good_img)
        w.add(f"maskset/masks/{stem}.png", data, "mask", kind, expect, shape)


def _classes(w: _Writer) -> None:
    good_img = _pil_bytes(Image.fromarray(_rgb(4, 4)), "PNG")
    mask = _pil_bytes(Image.fromarray(np.zeros((4, 4), np.uint8)), "PNG")
    deep = "[" * 100000 + "]" * 100000
    variants: list[tuple[str, bytes, str]] = [
        ("valid", json.dumps(CLASSES_JSON).encode(), "ok"),
        ("valid-no-colour", json.dumps([{"id": 0, "name": "a"}, {"id": 1, "name": "b"}]).encode(), "ok"),
        ("empty-file", b"", "error"),
        ("empty-list", b"[]", "error"),
        ("object", b'{"classes": []}', "error"),
        ("null", b"null", "error"),
        ("numbers", b"[1, 2, 3]", "error"),
        ("strings", b'["a", "b"]', "error"),
        ("missing-id", json.dumps([{"name": "a"}]).encode(), "error"),
        ("missing-name", json.dumps([{"id": 0}]).encode(), "error"),
        ("id-gap", json.dumps([{"id": 0, "name": "a"}, {"id": 2, "name": "b"}]).encode(), "error"),
        ("id-string", json.dumps([{"id": "zero", "name": "a"}]).encode(), "error"),
        ("id-float", json.dumps([{"id": 0.5, "name": "a"}]).encode(), "any"),
        ("id-negative", json.dumps([{"id": -1, "name": "a"}]).encode(), "error"),
        ("id-null", json.dumps([{"id": None, "name": "a"}]).encode(), "error"),
        ("duplicate-names", json.dumps([{"id": 0, "name": "a"}, {"id": 1, "name": "a"}]).encode(), "error"),
        ("empty-name", json.dumps([{"id": 0, "name": "  "}]).encode(), "error"),
        ("name-object", json.dumps([{"id": 0, "name": {"x": 1}}]).encode(), "any"),
        ("colour-string", json.dumps([{"id": 0, "name": "a", "color": "red"}]).encode(), "error"),
        ("colour-int", json.dumps([{"id": 0, "name": "a", "color": 5}]).encode(), "error"),
        ("colour-null", json.dumps([{"id": 0, "name": "a", "color": None}]).encode(), "error"),
        ("colour-300", json.dumps([{"id": 0, "name": "a", "color": [300, 0, 0]}]).encode(), "error"),
        ("colour-2", json.dumps([{"id": 0, "name": "a", "color": [1, 2]}]).encode(), "error"),
        ("colour-float", json.dumps([{"id": 0, "name": "a", "color": [0.5, 1.5, 2.5]}]).encode(), "any"),
        ("300-classes", json.dumps([{"id": i, "name": f"c{i}"} for i in range(300)]).encode(), "error"),
        ("255-classes", json.dumps([{"id": i, "name": f"c{i}"} for i in range(255)]).encode(), "ok"),
        ("deep-nesting", deep.encode(), "error"),
        ("not-utf8", b'[{"id": 0, "name": "\xe9t\xe9"}]', "error"),
        ("utf8-bom", b"\xef\xbb\xbf" + json.dumps(CLASSES_JSON).encode(), "any"),
        ("utf16", json.dumps(CLASSES_JSON).encode("utf-16"), "error"),
        ("truncated", json.dumps(CLASSES_JSON).encode()[:30], "error"),
        ("nan", b'[{"id": NaN, "name": "a"}]', "error"),
        ("infinity-id", b'[{"id": 1e999, "name": "a"}]', "error"),
        ("huge-int-id", b'[{"id": 99999999999999999999999, "name": "a"}]', "error"),
        ("trailing-garbage", json.dumps(CLASSES_JSON).encode() + b"xyz", "error"),
        ("binary", bytes(range(256)), "error"),
    ]
    for i, (kind, data, expect) in enumerate(variants):
        root = w.root / "classsets" / f"c{i:02d}"
        (root / "images").mkdir(parents=True)
        (root / "masks").mkdir()
        (root / "images" / "a.png").write_bytes(good_img)
        (root / "masks" / "a.png").write_bytes(mask)
        w.add(f"classsets/c{i:02d}/classes.json", data, "classes", kind, expect, (4, 4) if expect == "ok" else None)
    d = w.root / "classsets" / "dir"
    (d / "images").mkdir(parents=True)
    (d / "masks").mkdir()
    (d / "classes.json").mkdir()
    w.cases.append(Case(d / "classes.json", "classes", "classes-json-is-a-folder", "error", listed=False))


def _colour_masks(w: _Writer) -> None:
    h, wd = MASK_IMAGE_SHAPE
    cols = np.array([c["color"] for c in CLASSES_JSON], np.uint8)
    rng = _rng(11)
    lab = rng.integers(0, K, (h, wd))
    good = cols[lab]
    w.add("colour/valid.png", _pil_bytes(Image.fromarray(good), "PNG"), "colour", "valid", "ok", (h, wd))
    for i in range(30):
        bad = good.copy()
        n = int(rng.integers(1, 6))
        for _ in range(n):
            bad[rng.integers(0, h), rng.integers(0, wd)] = rng.integers(1, 256, 3)
        w.add(f"colour/unknown_{i:02d}.png", _pil_bytes(Image.fromarray(bad), "PNG"), "colour", f"unknown-colours-{i}", "error")
    w.add("colour/gray.png", _pil_bytes(Image.fromarray(lab.astype(np.uint8)), "PNG"), "colour", "grayscale", "any")
    w.add("colour/rgba.png", _pil_bytes(Image.fromarray(np.dstack([good, np.full((h, wd), 255, np.uint8)])), "PNG"), "colour", "rgba", "any")
    w.add("colour/rgba-transparent.png", _pil_bytes(Image.fromarray(np.dstack([good, np.zeros((h, wd), np.uint8)])), "PNG"),
          "colour", "rgba-transparent", "any")
    w.add("colour/jpeg-as-png.png", _pil_bytes(Image.fromarray(good), "JPEG", quality=50), "colour", "lossy-jpeg", "any")
    w.add("colour/rgb16.png", _cv2_png16(good), "colour", "rgb16", "any")
    w.add("colour/empty.png", b"", "colour", "0-byte", "error")
    w.add("colour/huge.png", png_header_only(HUGE, HUGE), "colour", "header-only-20000", "error")
    data = _pil_bytes(Image.fromarray(good), "PNG")
    for c in (8, 20, 40, len(data) // 2, len(data) - 1):
        w.add(f"colour/trunc_{c}.png", data[:c], "colour", f"truncated@{c}", "error" if c <= 16 else "any")
    w.add(b"colour/\xff\xfe_name.png", data, "colour", "non-utf8-name", "ok", (h, wd))


def _labelme(w: _Writer) -> None:
    h, wd = MASK_IMAGE_SHAPE
    good = {
        "version": "5.2.1", "flags": {}, "imagePath": "a.png", "imageData": None, "imageHeight": h, "imageWidth": wd,
        "shapes": [
            {"label": "cat", "points": [[1, 1], [5, 1], [5, 4]], "shape_type": "polygon", "group_id": None, "flags": {}},
            {"label": "dog", "points": [[0, 0], [2, 2]], "shape_type": "rectangle", "group_id": None, "flags": {}},
        ],
    }
    w.add("labelme/valid.json", json.dumps(good).encode(), "labelme", "valid", "ok", (h, wd))

    def variant(kind: str, obj, expect: str = "error") -> None:
        w.add(f"labelme/{kind}.json", obj if isinstance(obj, bytes) else json.dumps(obj).encode(), "labelme", kind, expect,
              (h, wd) if expect == "ok" else None)

    for key in good:
        variant(f"missing-{key}", {k: v for k, v in good.items() if k != key}, "any")
    shape0 = good["shapes"][0]
    for key in shape0:
        variant(f"shape-missing-{key}", {**good, "shapes": [{k: v for k, v in shape0.items() if k != key}]}, "any")
    bad_shapes = {
        "unknown-label": {**shape0, "label": "zebra"},
        "one-point-polygon": {**shape0, "points": [[1, 1]]},
        "no-points": {**shape0, "points": []},
        "points-not-pairs": {**shape0, "points": [1, 2, 3]},
        "points-strings": {**shape0, "points": [["a", "b"], ["c", "d"], ["e", "f"]]},
        "points-nested": {**shape0, "points": [[[1, 2]], [[3, 4]], [[5, 6]]]},
        "points-null": {**shape0, "points": None},
        "points-huge": {**shape0, "points": [[1e308, 1e308], [-1e308, 0], [0, 1e308]]},
        "points-outside": {**shape0, "points": [[-50, -50], [500, -50], [500, 500]]},
        "unknown-shape-type": {**shape0, "shape_type": "hexagon"},
        "shape-type-null": {**shape0, "shape_type": None},
        "label-int": {**shape0, "label": 3},
        "label-null": {**shape0, "label": None},
        "circle-one-point": {**shape0, "shape_type": "circle", "points": [[1, 1]]},
        "rectangle-three-points": {**shape0, "shape_type": "rectangle", "points": [[0, 0], [1, 1], [2, 2]]},
        "line": {**shape0, "shape_type": "line", "points": [[0, 0], [5, 5]]},
        "point": {**shape0, "shape_type": "point", "points": [[2, 2]]},
        "mask-garbage": {**shape0, "shape_type": "mask", "mask": "!!notbase64!!"},
    }
    for kind, shp in bad_shapes.items():
        variant(kind, {**good, "shapes": [shp]}, "any")
    for kind, obj in {
        "shapes-null": {**good, "shapes": None}, "shapes-dict": {**good, "shapes": {"a": 1}},
        "shapes-strings": {**good, "shapes": ["cat"]}, "height-string": {**good, "imageHeight": "six"},
        "height-zero": {**good, "imageHeight": 0}, "height-negative": {**good, "imageHeight": -6},
        "height-huge": {**good, "imageHeight": 10**9, "imageWidth": 10**9}, "height-float": {**good, "imageHeight": 6.5},
        "height-over-limit": {**good, "imageHeight": HUGE + 1, "imageWidth": HUGE},
        "imagedata-garbage": {**good, "imageData": "!!!not base64"},
        "imagedata-not-image": {**good, "imageData": "aGVsbG8gd29ybGQ="},
        "top-level-list": [good], "top-level-null": None, "top-level-string": "labelme",
    }.items():
        variant(kind, obj, "any")
    for kind, data in {
        "empty-file": b"", "truncated": json.dumps(good).encode()[:40], "not-utf8": json.dumps(good).encode().replace(b"cat", b"c\xe9t"),
        "deep-nesting": b'{"shapes": ' + b"[" * 50000 + b"]" * 50000 + b"}", "nan-height": json.dumps(good).replace(f'"imageHeight": {h}', '"imageHeight": NaN').encode(),
        "binary": bytes(range(256)) * 4,
    }.items():
        variant(kind, data, "error")
    # Claimed sizes and shape sizes: refused from the numbers (before any allocation), or loaded quickly.
    big = {**good, "imageHeight": HUGE, "imageWidth": HUGE}
    w.add("labelme/size-at-limit.json", json.dumps({**big, "shapes": good["shapes"]}).encode(), "labelme",
          "size-20000x20000-at-limit", "ok", (HUGE, HUGE))
    zig = _rng(22).uniform(0, HUGE, (2000, 2)).round(1).tolist()
    full = {**shape0, "shape_type": "rectangle", "points": [[0, 0], [HUGE - 1, HUGE - 1]]}
    million = [[float(i % wd), float((i // wd) % h)] for i in range(1_000_000)]
    for kind, obj in {
        "size-1e6": {**good, "imageHeight": 10**6, "imageWidth": 10**6},
        "size-1e6-by-1": {**good, "imageHeight": 10**6, "imageWidth": 1},
        "size-float-20000": {**good, "imageHeight": float(HUGE), "imageWidth": float(HUGE)},
        "size-str-20000": {**good, "imageHeight": str(HUGE), "imageWidth": str(HUGE)},
        "size-negative-20000": {**good, "imageHeight": -HUGE, "imageWidth": -HUGE},
        "size-zero-width": {**good, "imageWidth": 0},
        "size-bool": {**good, "imageHeight": True, "imageWidth": True},
        "size-bigint": {**good, "imageHeight": 10**40, "imageWidth": 10**40},
        "size-null": {**good, "imageHeight": None},
        "zigzag-outline-20000": {**big, "shapes": [{**shape0, "points": zig}]},
        "full-image-rectangle-x100": {**big, "shapes": [full] * 100},
        "points-bigint": {**good, "shapes": [{**shape0, "points": [[10**30, 1], [2, 2], [3, 1]]}]},
        "points-bool": {**good, "shapes": [{**shape0, "points": [[True, False], [True, True], [False, True]]}]},
        "points-deep-900": {**good, "shapes": [{**shape0, "points": json.loads("[" * 900 + "]" * 900)}]},
        "circle-radius-huge": {**good, "shapes": [{**shape0, "shape_type": "circle", "points": [[3, 3], [59, 3]]}]},
    }.items():
        variant(kind, obj, "error" if kind != "circle-radius-huge" else "any")
    variant("polygon-1M-points", {**good, "shapes": [{**shape0, "points": million}]}, "ok")
    rng = _rng(21)
    for i in range(20):  # random shapes, some valid, some not
        pts = rng.uniform(-5, 15, (int(rng.integers(0, 6)), 2)).round(1).tolist()
        st = ["polygon", "rectangle", "circle", "line", "point", "linestrip"][i % 6]
        variant(f"random-{i:02d}", {**good, "shapes": [{**shape0, "points": pts, "shape_type": st,
                                                         "label": ["cat", "dog", "bg", "zebra"][i % 4]}]}, "any")


def _coco(w: _Writer) -> None:
    h, wd = MASK_IMAGE_SHAPE
    cats = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    rle = {"size": [h, wd], "counts": [10, 5, 33]}
    good = {
        "images": [{"id": 1, "file_name": "a.png", "height": h, "width": wd}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 5, 1, 5, 4]], "iscrowd": 0, "area": 6, "bbox": [1, 1, 4, 3]},
            {"id": 2, "image_id": 1, "category_id": 2, "segmentation": rle, "iscrowd": 1, "area": 5, "bbox": [0, 0, 2, 5]},
        ],
        "categories": cats,
    }
    w.add("coco/valid.json", json.dumps(good).encode(), "coco", "valid", "ok", (h, wd))

    def variant(kind: str, obj, expect: str = "any") -> None:
        w.add(f"coco/{kind}.json", obj if isinstance(obj, bytes) else json.dumps(obj).encode(), "coco", kind, expect)

    for key in good:
        variant(f"missing-{key}", {k: v for k, v in good.items() if k != key})
    for key in good["images"][0]:
        variant(f"image-missing-{key}", {**good, "images": [{k: v for k, v in good["images"][0].items() if k != key}]})
    a0 = good["annotations"][0]
    for key in a0:
        variant(f"ann-missing-{key}", {**good, "annotations": [{k: v for k, v in a0.items() if k != key}]})
    segs = {
        "rle-wrong-size": {"size": [h + 3, wd], "counts": [10, 5, 33]},
        "rle-counts-overflow": {"size": [h, wd], "counts": [10, 500, 33]},
        "rle-counts-negative": {"size": [h, wd], "counts": [-10, 5]},
        "rle-counts-garbage-string": {"size": [h, wd], "counts": "\x00\x01garbage"},
        "rle-counts-compressed-bad": {"size": [h, wd], "counts": "zzzzzzzz"},
        "rle-counts-null": {"size": [h, wd], "counts": None},
        "rle-size-null": {"size": None, "counts": [1]},
        "rle-size-huge": {"size": [10**6, 10**6], "counts": [1]},
        "rle-size-negative": {"size": [-1, -1], "counts": [1]},
        "polygon-odd": [[1, 1, 5, 1, 5]],
        "polygon-two-points": [[1, 1, 5, 1]],
        "polygon-strings": [["a", "b", "c", "d", "e", "f"]],
        "polygon-empty": [[]],
        "polygon-nan": [[1, 1, float("nan"), 1, 5, 4]],
        "polygon-huge": [[1e308, 1, 5, 1e308, -1e308, 4]],
        "polygon-outside": [[-100, -100, 100, -100, 100, 100]],
        "segmentation-null": None,
        "segmentation-int": 7,
        "segmentation-string": "polygon",
    }
    for kind, seg in segs.items():
        variant(kind, {**good, "annotations": [{**a0, "segmentation": seg}]})
    for kind, obj in {
        "unknown-category": {**good, "annotations": [{**a0, "category_id": 99}]},
        "unknown-image": {**good, "annotations": [{**a0, "image_id": 42}]},
        "duplicate-image-ids": {**good, "images": good["images"] * 2},
        "duplicate-category-names": {**good, "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "cat"}]},
        "category-id-zero": {**good, "categories": [{"id": 0, "name": "cat"}, {"id": 2, "name": "dog"}]},
        "category-id-300": {**good, "categories": [{"id": 300, "name": "cat"}]},
        "300-categories": {**good, "categories": [{"id": i + 1, "name": f"c{i}"} for i in range(300)]},
        "image-height-zero": {**good, "images": [{**good["images"][0], "height": 0}]},
        "image-over-limit": {**good, "images": [{**good["images"][0], "height": HUGE + 1, "width": HUGE}]},
        "image-height-string": {**good, "images": [{**good["images"][0], "height": "six"}]},
        "images-null": {**good, "images": None}, "annotations-dict": {**good, "annotations": {"1": a0}},
        "categories-strings": {**good, "categories": ["cat", "dog"]},
        "top-level-list": [good], "top-level-null": None,
        "file-name-traversal": {**good, "images": [{**good["images"][0], "file_name": "../../etc/passwd"}]},
    }.items():
        variant(kind, obj)
    for kind, data in {
        "empty-file": b"", "truncated": json.dumps(good).encode()[:50], "not-utf8": json.dumps(good).encode().replace(b"cat", b"c\xe9t"),
        "deep-nesting": b'{"images": ' + b"[" * 50000 + b"]" * 50000 + b"}", "binary": bytes(range(256)) * 4,
    }.items():
        variant(kind, data, "error")
    # Claimed sizes, RLE sums, huge polygons: refused from the numbers (before any allocation), or loaded quickly.
    big_img = {**good["images"][0], "height": HUGE, "width": HUGE}
    variant("image-20000-at-limit-no-annotations", {**good, "images": [big_img], "annotations": []}, "ok")
    full_rle = {"size": [HUGE, HUGE], "counts": [0, HUGE * HUGE]}
    zig = _rng(32).uniform(0, HUGE, 4000).round(1).tolist()
    noise = _rng(33).random((500, 500)) < 0.5
    from pycocotools import mask as mask_utils  # a long, valid compressed RLE (~125k runs)

    noise_counts = mask_utils.encode(np.asfortranarray(noise.astype(np.uint8)))["counts"].decode("ascii")
    over = mask_utils.encode(np.asfortranarray(np.ones((h + 1, wd), np.uint8)))["counts"].decode("ascii")
    for kind, obj in {
        "image-1e6": {**good, "images": [{**good["images"][0], "height": 10**6, "width": 10**6}]},
        "image-float-20000": {**good, "images": [{**good["images"][0], "height": float(HUGE), "width": float(HUGE)}]},
        "image-str-20000": {**good, "images": [{**good["images"][0], "height": str(HUGE), "width": str(HUGE)}]},
        "image-negative-20000": {**good, "images": [{**good["images"][0], "height": -HUGE, "width": -HUGE}]},
        "image-bigint": {**good, "images": [{**good["images"][0], "height": 10**40, "width": 10**40}]},
        "images-3x20000-over-total": {**good, "images": [{**big_img, "id": i, "file_name": f"{i}.png"} for i in range(1, 4)],
                                      "annotations": []},
        "rle-sum-over": {**good, "annotations": [{**a0, "segmentation": {"size": [h, wd], "counts": [0, h * wd + 1]}}]},
        "rle-compressed-sum-over": {**good, "annotations": [{**a0, "segmentation": {"size": [h, wd], "counts": over}}]},
        "rle-counts-bigint": {**good, "annotations": [{**a0, "segmentation": {"size": [h, wd], "counts": [10**30, 1]}}]},
        "rle-counts-bool": {**good, "annotations": [{**a0, "segmentation": {"size": [h, wd], "counts": [True, 47]}}]},
        "rle-full-20000-x200": {**good, "images": [big_img], "annotations": [{**a0, "segmentation": full_rle}] * 200},
        "polygon-full-20000-x200": {**good, "images": [big_img],
                                    "annotations": [{**a0, "segmentation": [[0, 0, HUGE, 0, HUGE, HUGE, 0, HUGE]]}] * 200},
        "polygon-zigzag-20000": {**good, "images": [big_img], "annotations": [{**a0, "segmentation": [zig]}]},
        "polygon-bigint": {**good, "annotations": [{**a0, "segmentation": [[10**30, 1, 5, 1, 5, 4]]}]},
        "segmentation-deep-900": {**good, "annotations": [{**a0, "segmentation": json.loads("[" * 900 + "]" * 900)}]},
    }.items():
        variant(kind, obj, "error")
    variant("polygon-1M-points", {**good, "annotations": [{**a0, "segmentation": [[1, 1, 5, 1, 5, 4] * 333_334]}]}, "ok")
    variant("rle-125k-runs", {**good, "images": [{**good["images"][0], "height": 500, "width": 500}],
                              "annotations": [{**a0, "segmentation": {"size": [500, 500], "counts": noise_counts}}]}, "ok")
    rng = _rng(31)
    for i in range(15):
        counts = rng.integers(-3, 30, int(rng.integers(0, 8))).tolist()
        variant(f"random-rle-{i:02d}", {**good, "annotations": [{**a0, "segmentation": {"size": [h, wd], "counts": counts}}]})


def generate(root: str | Path) -> list[Case]:
    """Write the whole corpus under ``root`` (which should be empty); returns every :class:`Case`."""
    w = _Writer(Path(root))
    bases = _valid_images(w)
    _hostile_images(w, bases)
    _masks(w)
    _classes(w)
    _colour_masks(w)
    _labelme(w)
    _coco(w)
    return w.cases


if __name__ == "__main__":  # python tests/badinput.py OUT_DIR: write the corpus to look at it
    import sys
    from collections import Counter

    cases = generate(sys.argv[1])
    print(len(cases), "files:", dict(Counter(c.group for c in cases)))
