"""P1: ``Predictor.predict_many`` images/s over a folder of CamVid images vs a plain torchvision loop.

Baseline (the loop a user would write): ``PIL.Image.open → to_tensor → normalize → model(x[None])["out"].argmax(1)``
one image at a time under ``torch.no_grad()``, with the same model object and the same number of threads.
Candidate: ``Predictor(loaded, device).predict_many(paths, batch_size)`` yielding the same label maps.
Both produce uint8 label maps of every image. The methods are interleaved chunk by chunk (every chunk of
``CHUNK`` images runs through every method, order rotated) so load changes on a shared machine hit all of
them alike; images/s = images / total seconds per method; the median of the per-chunk ratios is also given.

Variants isolate what each optimisation buys: inference_mode + prefetch thread + channels-last argmax (no
folding, NCHW, batch 1), ``+fold BN+channels_last`` (batch 1), the same with batch 4, and with ``SEGSTUDIO_BENCH_COMPILE=1`` also
``full+torch.compile`` (its compile time is reported separately and excluded from images/s).
Agreement of the label maps with the baseline is reported (should be > 99.9 %).

On the CPU, when onnxruntime is installed (``pip install segstudio[export]``), ``onnxruntime (export)`` runs the
default model exported by ``segstudio.engine.export.export_model`` (ONNX, float32, fixed 360x480, verified against
PyTorch) through the same ``Predictor.predict_many`` (batch 1) with ONNX Runtime's CPU provider at
``torch.get_num_threads()`` intra-op threads: its ratio stands beside torch's on the same images and threads
(``SEGSTUDIO_BENCH_ONNX=0`` leaves it out; the export time is reported separately).

**The batched pipeline** (issue 33, ``segstudio.engine.fast_predict.predict_batched``: decode pool, pinned
non-blocking copies, bf16 autocast and on-device argmax on CUDA) is a row beside them, ``batched pipeline`` (its
default batch: 8 on CUDA, 1 on the CPU; on CUDA also ``batched pipeline fp16`` and ``batched pipeline auto batch``),
in the same interleaved chunks. ``SEGSTUDIO_BENCH_CHUNK`` should be at least the batch on a GPU.

**Where the time goes** (issue 33): three figures per device for the batch-4 Predictor: the full pipeline, the
*data path alone* (the same ``predict_many`` with a null model that returns zero logits of the right shape:
decode, to-tensor, copies, argmax, results) and the *model alone* (the Predictor's prepared model on synthetic
batches already on the device). The smaller of the two ceilings is what bounds the pipeline (printed). The same
two pipeline figures for the batched pipeline (``batched_*``), and ``predict_folder`` (label and overlay PNGs
written to a temporary folder) as it was before issue 33 (``today``: per-image stream, serial writes, overlays at
zlib level 6), with today's per-image stream in the new writer pool (``per-image (old)``) and new (batched, writer
pool), each with the real and the null model: the data-path ceiling of the whole ``segstudio predict``.

Env: ``SEGSTUDIO_BENCH_IMAGES`` (default 24, quick 8), ``SEGSTUDIO_BENCH_ROUNDS`` (passes, default 2, quick 1),
``SEGSTUDIO_BENCH_CHUNK`` (4). ``--record`` (the dispatcher's) writes ``docs/records/predict-folder.json``
(``SEGSTUDIO_BENCH_RECORD``: another record name).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

CAMVID = Path(os.environ.get("SEGSTUDIO_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "datasets" / "camvid"


def _paths(n: int) -> list[Path]:
    names = (CAMVID / "val.txt").read_text().split()
    paths = []
    for name in names:
        cands = [CAMVID / "images" / name] + sorted((CAMVID / "images").glob(Path(name).stem + ".*"))
        p = next((c for c in cands if c.is_file()), None)
        if p is not None:
            paths.append(p)
        if len(paths) == n:
            break
    if len(paths) < n:
        raise FileNotFoundError(f"needs {n} CamVid val images under {CAMVID}/images")
    return paths


def baseline(model, paths, mean, std, device) -> list[np.ndarray]:
    """The plain loop: PIL → to_tensor → normalize → model(x) per image under no_grad."""
    from PIL import Image
    from torchvision.transforms.functional import normalize, to_tensor

    out = []
    with torch.no_grad():
        for p in paths:
            x = normalize(to_tensor(Image.open(p).convert("RGB")), mean, std)[None].to(device)
            out.append(model(x)["out"].argmax(1)[0].to(torch.uint8).cpu().numpy())
    return out


class NullModel(torch.nn.Module):
    """A model that costs nothing: zero logits (N, K, H, W) float32 for any input (N, 3, H, W)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.k = int(num_classes)

    def forward(self, x):
        return {"out": x.new_zeros((x.shape[0], self.k, x.shape[2], x.shape[3]))}


def where_time_goes(loaded, paths: list[Path], device, batch: int = 4, reps: int = 3, fast_batch: int | None = None) -> dict:
    """Images/s of the full batch-``batch`` pipeline, of its data path alone (a :class:`NullModel`) and of the model
    alone on synthetic (batch, 3, H, W) inputs on ``device``; ``bound`` names the slower of the two parts. The same
    for the batched pipeline (batch ``fast_batch``, default: its device default) and for ``predict_folder`` (files
    written) old vs new."""
    from segstudio.engine import Predictor
    from segstudio.engine.checkpoint import LoadedModel
    from segstudio.io import read_image

    full = Predictor(loaded, str(device))
    null = Predictor(LoadedModel(model=NullModel(loaded.classes.num_classes).eval(), card=loaded.card), str(device), fuse_bn=False)
    h, w = read_image(paths[0]).shape[:2]

    def pipeline(pred, batched: bool = False) -> float:
        from segstudio.engine.fast_predict import predict_batched

        def once(part):
            if batched:
                return predict_batched(pred, part, batch_size=fast_batch)
            return pred.predict_many(part, batch_size=batch)

        for _ in once(paths[:batch]):  # warm-up
            pass
        t0 = time.perf_counter()
        for _ in range(reps):
            for _ in once(paths):
                pass
        return reps * len(paths) / (time.perf_counter() - t0)

    def today(pred, out: Path, b: int) -> None:
        """main's ``predict_folder`` loop before issue 33: per-image stream, serial writes, overlay at zlib 6."""
        import io as _io

        from PIL import Image

        from segstudio.core import blend_overlay
        from segstudio.engine.predict_folder import output_names, predict_images
        from segstudio.io import atomic_write_bytes, write_index_png

        out.mkdir(parents=True, exist_ok=True)
        names = output_names(paths)
        for res in predict_images(pred, paths, batch_size=b):
            label_name, overlay_name = names[paths[res.index]]
            write_index_png(out / label_name, res.labels)
            buf = _io.BytesIO()
            Image.fromarray(blend_overlay(res.image, res.labels, pred.classes, 0.5)).save(buf, format="PNG")
            atomic_write_bytes(out / overlay_name, buf.getvalue())

    def folder(pred, pipe: str) -> float:
        import shutil
        import tempfile

        from segstudio.engine.predict_folder import predict_folder

        tmp = Path(tempfile.mkdtemp(prefix="segstudio-bench-"))
        try:
            b = fast_batch if pipe == "batched" else batch
            predict_folder(pred, paths[:batch], tmp / "warm", batch_size=b, pipeline="per-image" if pipe == "today" else pipe)
            t0 = time.perf_counter()
            for r in range(reps):
                if pipe == "today":
                    today(pred, tmp / str(r), b)
                else:
                    predict_folder(pred, paths, tmp / str(r), batch_size=b, pipeline=pipe)
            return reps * len(paths) / (time.perf_counter() - t0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def model_alone() -> float:
        x = torch.randn(batch, 3, h, w, device=device)
        if full.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        amp = full.amp and device.type == "cuda"
        n = max(2, reps * len(paths) // batch)
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            full.model(x)  # warm-up
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            for _ in range(n):
                full.model(x)["out"]
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        return n * batch / (time.perf_counter() - t0)

    if fast_batch is None:
        fast_batch = 8 if device.type == "cuda" else 1
    res = {"batch": batch, "full_pipeline_images_per_s": round(pipeline(full), 3),
           "data_path_images_per_s": round(pipeline(null), 3), "model_alone_images_per_s": round(model_alone(), 3)}
    res["bound"] = "data path" if res["data_path_images_per_s"] < res["model_alone_images_per_s"] else "model"
    print(f"where the time goes (batch {batch}, {device}): full pipeline {res['full_pipeline_images_per_s']:.2f} img/s; "
          f"data path alone (null model) {res['data_path_images_per_s']:.2f} img/s; model alone (synthetic batches) "
          f"{res['model_alone_images_per_s']:.2f} img/s: bound by the {res['bound']}", flush=True)
    res["batched_batch"] = fast_batch
    res["batched_full_pipeline_images_per_s"] = round(pipeline(full, True), 3)
    res["batched_data_path_images_per_s"] = round(pipeline(null, True), 3)
    res["predict_folder_images_per_s"] = {
        "today (serial writes)": round(folder(full, "today"), 3),
        "per-image (old)": round(folder(full, "per-image"), 3), "batched (new)": round(folder(full, "batched"), 3),
        "today (serial writes), null model": round(folder(null, "today"), 3),
        "per-image (old), null model": round(folder(null, "per-image"), 3),
        "batched (new), null model": round(folder(null, "batched"), 3),
    }
    pf = res["predict_folder_images_per_s"]
    print(f"batched pipeline (batch {fast_batch}, {device}): full {res['batched_full_pipeline_images_per_s']:.2f} img/s; "
          f"data path alone {res['batched_data_path_images_per_s']:.2f} img/s (old: {res['data_path_images_per_s']:.2f})", flush=True)
    print("predict_folder with PNG writing, img/s: " + "; ".join(f"{k} {v:.2f}" for k, v in pf.items())
          + f"; new/today {pf['batched (new)'] / pf['today (serial writes)']:.2f}x, data-path ceiling new/today "
          f"{pf['batched (new), null model'] / pf['today (serial writes), null model']:.2f}x", flush=True)
    return res


def run(args) -> dict:
    from segstudio.engine import Predictor, load_checkpoint
    from segstudio.engine.devices import resolve_device

    device = resolve_device(getattr(args, "device", "auto"))
    n = int(os.environ.get("SEGSTUDIO_BENCH_IMAGES", 8 if args.quick else 24))
    rounds = int(os.environ.get("SEGSTUDIO_BENCH_ROUNDS", 1 if args.quick else 2))
    chunk = int(os.environ.get("SEGSTUDIO_BENCH_CHUNK", 4))
    paths = _paths(n)
    loaded = load_checkpoint(None)
    model = loaded.model.to(device).eval()
    variants = {
        "inference_mode+prefetch+fast argmax": dict(kw=dict(fuse_bn=False, channels_last=False), batch=1),
        "+fold BN+channels_last": dict(kw=dict(), batch=1),
        "+fold BN+channels_last, batch 4": dict(kw=dict(), batch=4),
    }
    compile_s = None
    if os.environ.get("SEGSTUDIO_BENCH_COMPILE") == "1":
        variants["full+torch.compile"] = dict(kw=dict(compile=True), batch=4)
    variants["batched pipeline"] = dict(kw=dict(), batch=None, batched=True)
    if device.type == "cuda":
        variants["batched pipeline fp16"] = dict(kw=dict(), batch=None, batched=True, precision="fp16")
        variants["batched pipeline auto batch"] = dict(kw=dict(), batch="auto", batched=True)
    preds = {k: Predictor(loaded, str(device), **v["kw"]) for k, v in variants.items()}

    def predict(k, part):
        """Label maps of ``part`` by method ``k``."""
        v = variants[k]
        if v.get("batched"):
            from segstudio.engine.fast_predict import predict_batched

            return [r.labels for r in predict_batched(preds[k], part, batch_size=v["batch"], precision=v.get("precision", "auto"))]
        return [res.output for res in preds[k].predict_many(part, batch_size=v["batch"])]

    export_s = None
    if device.type == "cpu" and os.environ.get("SEGSTUDIO_BENCH_ONNX", "1") == "1":
        import importlib.util
        import tempfile

        if importlib.util.find_spec("onnxruntime") is not None:
            from segstudio.engine.export import export_model, load_onnx
            from segstudio.io import read_image

            t0 = time.perf_counter()
            onnx_file = Path(tempfile.mkdtemp(prefix="segstudio-bench-")) / "default.onnx"
            export_model(loaded, onnx_file, "onnx", image=read_image(paths[0]))
            export_s = time.perf_counter() - t0
            variants["onnxruntime (export)"] = dict(kw=dict(), batch=1)
            preds["onnxruntime (export)"] = Predictor(load_onnx(onnx_file), "cpu")
    # warm-up (first-call allocations, oneDNN primitive caches; compile happens here)
    ref = baseline(model, paths[:2], loaded.mean, loaded.std, device)
    for k, p in preds.items():
        t0 = time.perf_counter()
        predict(k, paths[:4])
        if "compile" in k:
            compile_s = time.perf_counter() - t0
    # Interleave finely: every chunk of images is run by every method (order rotated per chunk), so load
    # changes on this shared machine hit all methods alike; images/s = images / total time per method.
    methods = ["baseline", *variants]
    secs = {k: 0.0 for k in methods}
    chunk_ratio: dict[str, list[float]] = {k: [] for k in variants}
    agree: dict[str, list[float]] = {k: [] for k in variants}
    chunks = [paths[i : i + chunk] for i in range(0, n, chunk)] * rounds
    for c, part in enumerate(chunks):
        order = methods[c % len(methods) :] + methods[: c % len(methods)]
        took, labels = {}, {}
        for k in order:
            t0 = time.perf_counter()
            if k == "baseline":
                labels[k] = baseline(model, part, loaded.mean, loaded.std, device)
            else:
                labels[k] = predict(k, part)
            took[k] = time.perf_counter() - t0
            secs[k] += took[k]
        for k in variants:
            chunk_ratio[k].append(took["baseline"] / took[k])
            agree[k].append(float(np.mean([(a == b).mean() for a, b in zip(labels[k], labels["baseline"])])))
        print(f"chunk {c + 1}/{len(chunks)}: baseline {len(part) / took['baseline']:.3f} img/s; "
              + "  ".join(f"{k} x{chunk_ratio[k][-1]:.2f}" for k in variants), flush=True)
    total = sum(len(p) for p in chunks)
    med = {k: total / secs[k] for k in methods}
    res = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "images": n,
        "image_size": "360x480",
        "rounds": rounds,
        "images_per_s": {k: round(v, 3) for k, v in med.items()},
        "chunk": chunk,
        "ratio_to_baseline": {k: round(v / med["baseline"], 3) for k, v in med.items() if k != "baseline"},
        "median_chunk_ratio": {k: round(statistics.median(v), 3) for k, v in chunk_ratio.items()},
        "agreement_with_baseline": {k: round(min(v), 5) for k, v in agree.items()},
        "target": ">= 1.3x",
    }
    if "+fold BN+channels_last" in med:  # issue 33: the batched pipeline vs today's Predictor, same run
        res["batched_vs_predictor"] = {k: round(med[k] / med["+fold BN+channels_last"], 3) for k in variants if k.startswith("batched")}
    if compile_s is not None:
        res["compile_warmup_s"] = round(compile_s, 1)
    if export_s is not None:
        res["onnx_export_s"] = round(export_s, 1)
        res["onnx_vs_torch_predictor"] = round(med["onnxruntime (export)"] / med["+fold BN+channels_last"], 3)
    res["where_time_goes"] = where_time_goes(loaded, paths, device, reps=1 if args.quick else 2)
    print(f"baseline (PIL + to_tensor + model(x), no_grad, one by one): {med['baseline']:.3f} images/s")
    for k in variants:
        print(f"Predictor {k:<38} {med[k]:.3f} images/s  ratio {med[k] / med['baseline']:.2f}x  "
              f"(median per chunk {res['median_chunk_ratio'][k]:.2f}x)  agreement >= {100 * min(agree[k]):.3f}%")
    if getattr(args, "record", False):
        from bench._record import model_entry, write_record
        from segstudio.engine.checkpoint import default_checkpoint

        path = write_record(os.environ.get("SEGSTUDIO_BENCH_RECORD", "predict-folder"), res, script="python -m bench predict_folder",
                            models=[model_entry("camvid_deeplabv3plus_mobilenetv2", default_checkpoint())],
                            notes=getattr(args, "notes", "") or "")
        print(f"wrote {path}")
    return res
