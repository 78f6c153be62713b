"""Click-to-segment: the NoC protocol for the click model and for GrabCut driven by the same clicks.

``python -m bench clicks --data DIR [--split test] [--max-clicks 20] [--classes NAME|ID ...] [--limit N]
[--model PATH] [--methods clicknet grabcut] [--record]``; ``--record`` writes
``docs/records/clicks-<dataset>[-<classes>].json`` (with the click model's SHA-256).

Objects are the connected components (8-connected) of one class covering >= 0.5 % of the image, in a dataset
folder of the ``../shared`` layout (``images/``, ``masks/``, ``<split>.txt``, ``classes.json``). For each object
the standard protocol (Xu et al., CVPR 2016; RITM, Sofiiuk et al., ICIP 2022) runs: the first click at the
object's most interior point, each next click at the interior point of the largest error region, positive
for a missed part and negative for a false positive, the previous mask fed back; NoC@85 / NoC@90 = mean
number of clicks to reach IoU 0.85 / 0.90, counted as ``--max-clicks`` (20) when never reached. Both methods
see exactly this protocol (the clicks depend on each method's own errors, as the protocol says).
Pixels labelled ``ignore`` (255) count for neither IoU nor errors.

Timing: ``ms/click`` is the wall time of one answer to a click (the click model: decoder only, the image
being encoded once per image — reported as ``encode ms``; GrabCut: one ``cv2.grabCut`` call of 5 iterations).
``--limit N`` takes N objects evenly spaced over the split's object list.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench clicks", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="dataset folder (images/, masks/, <split>.txt, classes.json)")
    p.add_argument("--split", default="test", help="split list to read (default test)")
    p.add_argument("--max-clicks", type=int, default=20)
    p.add_argument("--classes", nargs="+", help="class names or ids to take objects from (default all)")
    p.add_argument("--limit", type=int, default=0, help="at most this many objects, evenly spaced (0: all)")
    p.add_argument("--model", help="click model weights (default: the shipped one)")
    p.add_argument("--methods", nargs="+", default=["clicknet", "grabcut"], choices=["clicknet", "grabcut"])
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    return p.parse_args(argv)


def _class_ids(spec: list[str] | None, classes) -> list[int] | None:
    if not spec:
        return None
    names = {n.lower(): i for i, n in enumerate(classes.names)}
    out = []
    for s in spec:
        if s.isdigit():
            out.append(int(s))
        elif s.lower() in names:
            out.append(names[s.lower()])
        else:
            raise SystemExit(f"unknown class {s!r}; classes are {', '.join(classes.names)}")
    return out


def run(args) -> dict:
    import torch

    from segstudio.core.labels import IGNORE_INDEX
    from segstudio.engine.click.protocol import evaluate_object, grabcut_from_clicks, noc, object_masks
    from segstudio.engine.click.session import ClickSession, load_click_model
    from segstudio.io.datasets import find_samples
    from segstudio.io.images import read_image
    from segstudio.io.labels import read_index_png

    a = _parse(list(getattr(args, "extra", []) or []))
    if a.threads:
        torch.set_num_threads(a.threads)
    data = Path(a.data)
    if not (data / f"{a.split}.txt").is_file():
        have = sorted(p.stem for p in data.glob("*.txt"))
        raise SystemExit(f"{data} has no {a.split}.txt; choose --split from {have}")
    samples, classes = find_samples(data, a.split)
    ids = _class_ids(a.classes, classes)
    # the object list: (sample index, object index in that image)
    index = []
    for si, s in enumerate(samples):
        labels = read_index_png(s.mask)
        index += [(si, k) for k in range(len(object_masks(labels, ids)))]
    if a.limit and len(index) > a.limit:
        pick = np.linspace(0, len(index) - 1, a.limit).round().astype(int)
        index = [index[i] for i in sorted(set(pick.tolist()))]
    by_image: dict[int, list[int]] = {}
    for si, k in index:
        by_image.setdefault(si, []).append(k)
    model = card = None
    if "clicknet" in a.methods:
        model, card = load_click_model(a.model)
    res = {m: {"ious": [], "ms": [], "encode_ms": []} for m in a.methods}
    names = dict(enumerate(classes.names))
    per_class: dict[str, int] = {}
    for si, ks in by_image.items():
        image, labels = read_image(samples[si].image), read_index_png(samples[si].mask)
        ignore = labels == IGNORE_INDEX
        objs = object_masks(labels, ids)
        session = None
        if model is not None:
            t = time.perf_counter()
            session = ClickSession(model, image)
            res["clicknet"]["encode_ms"].append(1e3 * (time.perf_counter() - t))
        for k in ks:
            cid, gt = objs[k]
            per_class[names.get(cid, str(cid))] = per_class.get(names.get(cid, str(cid)), 0) + 1
            for m in a.methods:
                ms = res[m]["ms"]

                def predict(clicks, prev, m=m, ms=ms):
                    t = time.perf_counter()
                    out = session.predict(clicks, prev) if m == "clicknet" else grabcut_from_clicks(image, clicks, prev)
                    ms.append(1e3 * (time.perf_counter() - t))
                    return out

                res[m]["ious"].append(evaluate_object(predict, gt, a.max_clicks, ignore, stop_iou=0.90))
        log.info("%s: %d objects done", samples[si].image.name, len(ks))
    summary = {"data": str(data), "split": a.split, "objects": len(index), "classes": per_class,
               "max_clicks": a.max_clicks, "methods": {}}
    if card is not None:
        summary["model"] = {"name": card.get("name"), "training": card.get("training", {})}
    for m, r in res.items():
        ious = r["ious"]
        out = {
            "NoC@85": float(statistics.fmean(noc(v, 0.85, a.max_clicks) for v in ious)) if ious else None,
            "NoC@90": float(statistics.fmean(noc(v, 0.90, a.max_clicks) for v in ious)) if ious else None,
            "fail@90": int(sum(max(v) < 0.90 for v in ious)),
            "IoU@1": float(statistics.fmean(v[0] for v in ious)) if ious else None,
            "ms_per_click_median": float(statistics.median(r["ms"])) if r["ms"] else None,
            "clicks": len(r["ms"]),
        }
        if r["encode_ms"]:
            out["encode_ms_median"] = statistics.median(r["encode_ms"])
        summary["methods"][m] = out
    print(f"\n{data.name} ({a.split}), {len(index)} objects {per_class}, max {a.max_clicks} clicks, "
          f"torch threads {torch.get_num_threads()}")
    print("| method | NoC@85 | NoC@90 | >=20 clicks @90 | IoU@1 | ms/click (median) | encode ms/image |")
    print("|---|---|---|---|---|---|---|")
    for m, o in summary["methods"].items():
        if o["NoC@85"] is None:
            print(f"| {m} | - | - | - | - | - | - |")
            continue
        enc = f"{o['encode_ms_median']:.0f}" if "encode_ms_median" in o else "-"
        print(f"| {m} | {o['NoC@85']:.2f} | {o['NoC@90']:.2f} | {o['fail@90']} | {o['IoU@1']:.3f} | "
              f"{o['ms_per_click_median']:.1f} | {enc} |")
    if getattr(args, "record", False):
        from bench._record import model_entry, write_record
        from segstudio.engine.click.session import default_click_model_path

        name = "-".join(["clicks", data.name, *(a.classes or [])]).lower()
        weights = Path(a.model) if a.model else default_click_model_path()
        models = [model_entry("clicknet", weights)] if "clicknet" in a.methods else []
        path = write_record(name, summary, script="python -m bench clicks", models=models,
                            notes=getattr(args, "notes", "") or "")
        print(f"wrote {path}")
    return summary
