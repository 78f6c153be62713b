"""Copy a small subset of ``../shared`` into a gitignored folder that can travel with the working tree to a GPU machine
(issue 33; ``scripts/gpu_check.sh`` runs on it with ``SEGSTUDIO_SHARED`` pointing there).

The folder mirrors ``../shared``'s layout (``datasets/<name>/images|masks|train.txt|val.txt|classes.json``), so every
bench and test that reads ``$SEGSTUDIO_SHARED`` works on it unchanged:

* ``camvid``: the first ``--camvid-train`` train and ``--camvid-val`` val frames (the zoo's from-scratch rows train
  and evaluate on them; ``bench predict_folder`` / ``train_step`` read them). Images are re-encoded as JPEG
  (quality ``--jpeg-quality``) to fit the size limit — a PNG frame is ~250 KB — so pixels differ slightly from
  ../shared's PNGs: figures measured on the subset say so. Masks are copied byte for byte.
* ``camvid_samples``: copied whole (the CUDA tests' frames).
* every proxy (a dataset with ``train.txt`` other than CamVid): the first ``--proxy-train`` train images (``bench
  hitl``'s user corrections) and the first ``--proxy-val`` val images, original bytes.

Usage: ``python scripts/make_gpu_subset.py [--out gpu_subset] [--max-mb 26]``; refuses (exit 1) when the subset is
larger than ``--max-mb`` (the working tree that travels is limited to 64 MiB in all, the repository itself ~33 MB).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _stems(ds: Path, split: str) -> list[str]:
    f = ds / f"{split}.txt"
    return [Path(s).stem for s in f.read_text().split()] if f.is_file() else []


def _image(ds: Path, stem: str) -> Path:
    found = sorted((ds / "images").glob(stem + ".*"))
    if not found:
        raise FileNotFoundError(f"{ds.name}: no image for {stem}")
    return found[0]


def copy_dataset(src: Path, dst: Path, splits: dict[str, int], jpeg_quality: int | None = None) -> int:
    """Copy the first ``n`` images (and masks) of each split in ``splits`` from ``src`` to ``dst``; returns bytes written."""
    from PIL import Image

    (dst / "images").mkdir(parents=True, exist_ok=True)
    (dst / "masks").mkdir(parents=True, exist_ok=True)
    for name in ("classes.json", "SOURCE.md"):
        if (src / name).is_file():
            shutil.copy(src / name, dst / name)
    total = 0
    for split, n in splits.items():
        stems = _stems(src, split)[:n]
        for stem in stems:
            img = _image(src, stem)
            if jpeg_quality is not None:
                buf = io.BytesIO()
                Image.open(img).convert("RGB").save(buf, format="JPEG", quality=jpeg_quality)
                (dst / "images" / f"{stem}.jpg").write_bytes(buf.getvalue())
                total += len(buf.getvalue())
            else:
                shutil.copy(img, dst / "images" / img.name)
                total += img.stat().st_size
            mask = src / "masks" / f"{stem}.png"
            if mask.is_file():
                shutil.copy(mask, dst / "masks" / mask.name)
                total += mask.stat().st_size
        (dst / f"{split}.txt").write_text("".join(s + "\n" for s in stems))
    return total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared", default=str(SHARED), help="the full shared folder (default ../shared)")
    p.add_argument("--out", default=str(REPO / "gpu_subset"), help="output folder (default gpu_subset/, gitignored)")
    p.add_argument("--camvid-train", type=int, default=128)
    p.add_argument("--camvid-val", type=int, default=101)
    p.add_argument("--jpeg-quality", type=int, default=90)
    p.add_argument("--proxy-train", type=int, default=8)
    p.add_argument("--proxy-val", type=int, default=6)
    p.add_argument("--max-mb", type=float, default=26.0)
    args = p.parse_args(argv)
    shared, out = Path(args.shared) / "datasets", Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    sizes = {}
    sizes["camvid"] = copy_dataset(shared / "camvid", out / "datasets" / "camvid",
                                   {"train": args.camvid_train, "val": args.camvid_val}, args.jpeg_quality)
    samples = shared / "camvid_samples"
    if samples.is_dir():
        shutil.copytree(samples, out / "datasets" / "camvid_samples")
        sizes["camvid_samples"] = sum(f.stat().st_size for f in samples.rglob("*") if f.is_file())
    for ds in sorted(shared.iterdir()):
        if ds.name in ("camvid", "camvid_samples") or not (ds / "train.txt").is_file():
            continue
        sizes[ds.name] = copy_dataset(ds, out / "datasets" / ds.name, {"train": args.proxy_train, "val": args.proxy_val})
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    (out / "SUBSET.json").write_text(json.dumps({"args": vars(args), "bytes": sizes, "total_bytes": total}, indent=1) + "\n")
    print(f"wrote {out} ({total / 2**20:.1f} MiB): " + ", ".join(f"{k} {v / 2**20:.1f}" for k, v in sizes.items()))
    if total > args.max_mb * 2**20:
        print(f"the subset is larger than --max-mb {args.max_mb}: take fewer images", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
