"""Click-to-segment: the NoC protocol for the click model and for GrabCut driven by the same clicks.

``python -m bench clicks --data DIR [--split test] [--max-clicks 20] [--classes NAME|ID ...] [--limit N]
[--model PATH] [--compare-model PATH] [--methods clicknet grabcut] [--record]``; ``--record`` writes
``docs/records/clicks-<dataset>[-<classes>].json`` (with the click model's SHA-256). ``--data`` takes any dataset
folder of the ``../shared`` layout (every proxy) and ``--split`` any of its split lists (``val`` for decisions).
``--compare-model PATH`` runs a second click model (method ``clicknet_b``) on the same objects in the same run,
e.g. a new training run against the shipped model; its record is ``clicks-<dataset>[-<classes>]-<split>.json``.

``--session`` (issue 34, item 4) runs the protocol as a labelling session instead: the split's images in order
(``--session-images``, default 30), up to ``--per-image`` objects of each (evenly spaced over its object list),
and after each finished object the click decoder is adapted as the GUI's click tool does after each Enter
(:mod:`segstudio.engine.click.adapt_policy`: it continues from its last adapted state on the most recent
``--adapt-keep`` finished objects for ``--adapt-steps`` steps — the GUI's step cap, run exactly, so a session does
not depend on the machine's speed; Kontogianni et al., ECCV 2020). As in the GUI, a guard
(:class:`segstudio.engine.click.adapt.AdaptGuard`) scores each finished object with both decoders (NoC@85, each on
its own errors) before it trains, and the adapted decoder answers the next object only while it needs no more
clicks on average.
``--adapt-every image`` adapts once per image instead (the benchmark of before). The same objects are also run with the unadapted model in the same run (the control: later images may
just be easier). It prints NoC@85 / NoC@90 over images 1–10, 11–20, 21–30; ``--record`` writes
``docs/records/clicks-session-<dataset>.json`` (val) or ``clicks-session-<dataset>-<split>.json``.

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

``--boundary`` runs no method: for the same objects it reports each class's structure width (px,
:func:`segstudio.engine.click.protocol.structure_width`) and the IoU of each object with its own outline moved
one pixel out and one pixel in (:func:`segstudio.engine.click.protocol.boundary_shift_iou`), and how many objects
fall below 0.85 that way: on those, NoC@85 asks for an answer within less than a pixel of the annotator's outline
everywhere. ``--record`` writes ``docs/records/clicks-boundary-<dataset>-<split>.json``. With ``--session`` it takes the
session's objects instead and adds, per 10-image block, the NoC@85 floor were the objects that a 1-px shift takes
below 0.85 both ways to stay at ``--max-clicks`` and every other to take one click
(``clicks-boundary-session-<dataset>-<split>.json``).
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
    p.add_argument("--compare-model", help="a second click model run on the same objects (method clicknet_b)")
    p.add_argument("--methods", nargs="+", default=["clicknet", "grabcut"], choices=["clicknet", "grabcut"])
    p.add_argument("--session", action="store_true", help="a labelling session with online adaptation (see above)")
    p.add_argument("--session-images", type=int, default=30)
    p.add_argument("--per-image", type=int, default=4, help="session: objects per image (evenly spaced)")
    from segstudio.engine.click import adapt_policy

    p.add_argument("--adapt-steps", type=int, default=adapt_policy.MAX_STEPS, help="session: decoder steps per adaptation")
    p.add_argument("--adapt-lr", type=float, default=adapt_policy.LR)
    p.add_argument("--adapt-keep", type=int, default=adapt_policy.KEEP_OBJECTS,
                   help="session: an adaptation trains on this many most recent finished objects (0: all)")
    p.add_argument("--adapt-every", choices=("object", "image"), default="object",
                   help="session: adapt after each finished object (the GUI) or after each image")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--boundary", action="store_true",
                   help="no method: each object's width and its IoU with its outline moved 1 px out / in (see above)")
    return p.parse_args(argv)


def _evenly(n: int, k: int) -> list[int]:
    """At most ``k`` indices of ``range(n)`` evenly spaced, first and last included (all of them when ``n <= k``)."""
    if n <= k:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))


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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")  # per-image progress
    if a.threads:
        torch.set_num_threads(a.threads)
    data = Path(a.data)
    if not (data / f"{a.split}.txt").is_file():
        have = sorted(p.stem for p in data.glob("*.txt"))
        raise SystemExit(f"{data} has no {a.split}.txt; choose --split from {have}")
    if a.session and not a.boundary:
        return run_session(a, record=getattr(args, "record", False), notes=getattr(args, "notes", "") or "")
    if a.compare_model and "clicknet_b" not in a.methods:
        a.methods = [*a.methods, "clicknet_b"]
    samples, classes = find_samples(data, a.split)
    ids = _class_ids(a.classes, classes)
    # the object list: (sample index, object index in that image)
    index = []
    if a.session:  # --boundary --session: the session's objects (its first images, per_image evenly spaced of each)
        samples = samples[: a.session_images]
    for si, s in enumerate(samples):
        labels = read_index_png(s.mask)
        n = len(object_masks(labels, ids))
        index += [(si, k) for k in (_evenly(n, a.per_image) if a.session and a.per_image else range(n))]
    if a.limit and not a.session:
        index = [index[i] for i in _evenly(len(index), a.limit)]
    by_image: dict[int, list[int]] = {}
    for si, k in index:
        by_image.setdefault(si, []).append(k)
    if a.boundary:
        return run_boundary(a, args, data, samples, classes, ids, by_image)
    model = card = model_b = card_b = None
    if "clicknet" in a.methods:
        model, card = load_click_model(a.model)
    if "clicknet_b" in a.methods:
        model_b, card_b = load_click_model(a.compare_model)
    res = {m: {"ious": [], "ms": [], "encode_ms": []} for m in a.methods}
    names = dict(enumerate(classes.names))
    per_class: dict[str, int] = {}
    obj_class: list[str] = []  # class name of each evaluated object, in the order of res[m]["ious"]
    for si, ks in by_image.items():
        image, labels = read_image(samples[si].image), read_index_png(samples[si].mask)
        ignore = labels == IGNORE_INDEX
        objs = object_masks(labels, ids)
        sessions = {}
        for m, net in (("clicknet", model), ("clicknet_b", model_b)):
            if net is not None:
                t = time.perf_counter()
                sessions[m] = ClickSession(net, image)
                res[m]["encode_ms"].append(1e3 * (time.perf_counter() - t))
        for k in ks:
            cid, gt = objs[k]
            per_class[names.get(cid, str(cid))] = per_class.get(names.get(cid, str(cid)), 0) + 1
            obj_class.append(names.get(cid, str(cid)))
            for m in a.methods:
                ms = res[m]["ms"]

                def predict(clicks, prev, m=m, ms=ms):
                    t = time.perf_counter()
                    out = sessions[m].predict(clicks, prev) if m in sessions else grabcut_from_clicks(image, clicks, prev)
                    ms.append(1e3 * (time.perf_counter() - t))
                    return out

                res[m]["ious"].append(evaluate_object(predict, gt, a.max_clicks, ignore, stop_iou=0.90))
        log.info("%s: %d objects done", samples[si].image.name, len(ks))
    summary = {"data": str(data), "split": a.split, "objects": len(index), "classes": per_class,
               "max_clicks": a.max_clicks, "methods": {}}
    if card is not None:
        summary["model"] = {"name": card.get("name"), "path": str(a.model or "shipped"), "training": card.get("training", {})}
    if card_b is not None:
        summary["model_b"] = {"name": card_b.get("name"), "path": str(a.compare_model), "training": card_b.get("training", {})}
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
    summary["per_class"] = {}
    for cname in sorted(set(obj_class)):
        sel = [i for i, c in enumerate(obj_class) if c == cname]
        summary["per_class"][cname] = {
            m: {"n": len(sel),
                "NoC@85": float(statistics.fmean(noc(r["ious"][i], 0.85, a.max_clicks) for i in sel)),
                "NoC@90": float(statistics.fmean(noc(r["ious"][i], 0.90, a.max_clicks) for i in sel))}
            for m, r in res.items()}
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
    if len(summary["per_class"]) > 1:
        ms = list(summary["methods"])
        print("\n| class | n | " + " | ".join(f"{m} NoC@85 / @90" for m in ms) + " |")
        print("|---|---|" + "---|" * len(ms))
        for cname, row in summary["per_class"].items():
            cells = " | ".join(f"{row[m]['NoC@85']:.2f} / {row[m]['NoC@90']:.2f}" for m in ms)
            print(f"| {cname} | {row[ms[0]]['n']} | {cells} |")
    if getattr(args, "record", False):
        from bench._record import model_entry, write_record
        from segstudio.engine.click.session import default_click_model_path

        name = "-".join(["clicks", data.name, *(a.classes or []), *([a.split] if a.compare_model else [])]).lower()
        weights = Path(a.model) if a.model else default_click_model_path()
        models = [model_entry("clicknet", weights)] if "clicknet" in a.methods else []
        if a.compare_model:
            models.append(model_entry("clicknet_b", Path(a.compare_model)))
        path = write_record(name, summary, script="python -m bench clicks", models=models,
                            notes=getattr(args, "notes", "") or "")
        print(f"wrote {path}")
    return summary


def run_boundary(a, args, data: Path, samples, classes, ids, by_image: dict[int, list[int]]) -> dict:
    """The ``--boundary`` mode: per object its class, width and IoU under a 1-px outline shift; per class the
    median width, the mean IoUs and how many objects a 1-px shift takes below 0.85 (see the module's docstring)."""
    from segstudio.core.labels import IGNORE_INDEX
    from segstudio.engine.click.protocol import boundary_shift_iou, object_masks, structure_width
    from segstudio.io.labels import read_index_png

    names = dict(enumerate(classes.names))
    objects = []
    for si, ks in by_image.items():
        labels = read_index_png(samples[si].mask)
        ignore = labels == IGNORE_INDEX
        objs = object_masks(labels, ids)
        for k in ks:
            cid, gt = objs[k]
            grown, shrunk = boundary_shift_iou(gt, ignore)
            objects.append({"image": samples[si].image.name, "image_index": si, "class": names.get(cid, str(cid)),
                            "width_px": round(structure_width(gt), 2), "pixels": int(gt.sum()),
                            "iou_grown_1px": round(grown, 4), "iou_shrunk_1px": round(shrunk, 4)})
    per_class = {}
    for cname in sorted({o["class"] for o in objects}):
        sel = [o for o in objects if o["class"] == cname]
        per_class[cname] = {
            "n": len(sel),
            "width_px_median": float(statistics.median(o["width_px"] for o in sel)),
            "iou_grown_1px_mean": round(statistics.fmean(o["iou_grown_1px"] for o in sel), 4),
            "iou_shrunk_1px_mean": round(statistics.fmean(o["iou_shrunk_1px"] for o in sel), 4),
            "below_85_either": sum(min(o["iou_grown_1px"], o["iou_shrunk_1px"]) < 0.85 for o in sel),
        }
    summary = {"data": str(data), "split": a.split, "objects": len(objects), "limit": a.limit,
               "per_class": per_class, "objects_list": objects,
               "below_85_either": sum(min(o["iou_grown_1px"], o["iou_shrunk_1px"]) < 0.85 for o in objects)}
    if a.session:
        summary["session_images"], summary["per_image"] = len(samples), a.per_image
        summary["blocks"] = _boundary_blocks(objects, len(samples), a.max_clicks)
    print(f"\n{data.name} ({a.split}), {len(objects)} objects: IoU of each object with its outline moved 1 px")
    print("| class | n | width px (median) | IoU 1 px out | IoU 1 px in | objects below 0.85 either way |")
    print("|---|---|---|---|---|---|")
    for cname, r in per_class.items():
        print(f"| {cname} | {r['n']} | {r['width_px_median']:.1f} | {r['iou_grown_1px_mean']:.3f} | "
              f"{r['iou_shrunk_1px_mean']:.3f} | {r['below_85_either']} |")
    for b in summary.get("blocks", []):
        print(f"images {b['images']}: {b['objects']} objects, {b['thin']} below 0.85 both ways; NoC@85 floor "
              f"{b['noc85_floor']:.2f}")
    if getattr(args, "record", False):
        from bench._record import write_record

        stem = f"clicks-boundary-{'session-' if a.session else ''}{data.name}-{a.split}".lower()
        path = write_record(stem, summary, script="python -m bench clicks",
                            models=[], notes=getattr(args, "notes", "") or "")
        print(f"wrote {path}")
    return summary


def _boundary_blocks(objects: list[dict], n_images: int, max_clicks: int) -> list[dict]:
    """Per 10-image block of a session: its objects, the ``thin`` ones (a 1-px outline shift either way takes them
    below IoU 0.85) and the block's NoC@85 floor were every thin object to stay at ``max_clicks`` and every other
    object to take one click: ``(max_clicks · thin + (objects − thin)) / objects``."""
    out = []
    for lo in range(0, n_images, 10):
        sel = [o for o in objects if lo <= o["image_index"] < lo + 10]
        if not sel:
            continue
        thin = sum(max(o["iou_grown_1px"], o["iou_shrunk_1px"]) < 0.85 for o in sel)
        out.append({"images": f"{lo + 1}-{min(lo + 10, n_images)}", "objects": len(sel), "thin": thin,
                    "noc85_floor": round((max_clicks * thin + len(sel) - thin) / len(sel), 4)})
    return out


def run_session(a, record: bool = False, notes: str = "") -> dict:
    """``--session``: the split's first ``a.session_images`` images in order as a labelling session, the click decoder
    adapted after each finished object (or image, ``a.adapt_every``) on the most recent ``a.adapt_keep`` finished objects;
    the unadapted model on the same objects as control.

    Returns the summary dict (per image NoC@85/90 of both, the 10-image block means, the adaptation info).
    """
    import copy

    import torch

    from segstudio.core.labels import IGNORE_INDEX
    from segstudio.engine.click.adapt import (AdaptExample, AdaptGuard, adapt_click_decoder, apply_adapted,
                                              guard_new_examples, prune_cache)
    from segstudio.engine.click.protocol import Click, evaluate_object, noc, object_masks
    from segstudio.engine.click.session import ClickSession, load_click_model
    from segstudio.io.datasets import find_samples
    from segstudio.io.images import read_image
    from segstudio.io.labels import read_index_png

    data = Path(a.data)
    samples, classes = find_samples(data, a.split)
    samples = samples[: a.session_images]
    base, card = load_click_model(a.model)
    adapted = base  # the adapted decoder (trained on, whatever the guard says)
    guard = AdaptGuard()
    used_adapted = []  # per object: did the guard let the adapted decoder answer it
    pool: list[AdaptExample] = []
    rows = []
    t_adapt = []
    enc_cache: dict = {}
    for i, s in enumerate(samples):
        image, labels = read_image(s.image), read_index_png(s.mask)
        ignore = labels == IGNORE_INDEX
        objs = object_masks(labels)
        if a.per_image:
            objs = [objs[j] for j in _evenly(len(objs), a.per_image)]
        sess_base = ClickSession(base, image)
        sess_ad = copy.copy(sess_base)  # the adapted decoder reads the same cached encoding (encoder + neck frozen)
        sess_ad.model = adapted if guard.use_adapted else base
        row = {"image": s.image.name, "objects": len(objs), "adapted": [], "base": []}
        for j, (_, gt) in enumerate(objs):
            for key, sess in (("adapted", sess_ad), ("base", sess_base)):
                clicks_made: list[Click] = []

                def predict(clicks, prev, sess=sess, rec=clicks_made):
                    rec[:] = clicks
                    return sess.predict(clicks, prev)

                ious = evaluate_object(predict, gt, a.max_clicks, ignore, stop_iou=0.90)
                row[key].append([noc(ious, 0.85, a.max_clicks), noc(ious, 0.90, a.max_clicks)])
                if key == "adapted":
                    used_adapted.append(sess.model is adapted and adapted is not base)
                    pool.append(AdaptExample(image, gt, list(clicks_made), ignore))
                    # test, then train: both decoders answer the person's clicks before the object trains one
                    guard_new_examples(guard, adapted, base, pool[-1:], enc_cache)  # the new object only
            last_object = i + 1 == len(samples) and j + 1 == len(objs)
            if not last_object and (a.adapt_every == "object" or j + 1 == len(objs)):
                t = time.perf_counter()
                recent = pool[-a.adapt_keep:] if a.adapt_keep else pool
                enc_cache = prune_cache(enc_cache, recent)  # the GUI keeps the same window
                state, info = adapt_click_decoder(adapted, recent, seconds=1e9, max_steps=a.adapt_steps, lr=a.adapt_lr,
                                                  seed=len(pool), cache=enc_cache)
                adapted = apply_adapted(base, state)
                sess_ad.model = adapted if guard.use_adapted else base
                t_adapt.append(time.perf_counter() - t)
        rows.append(row)

        def mean(key, j):
            return float(np.mean([v[j] for v in row[key]])) if row[key] else None
        log.info("image %d %s: %d objects, NoC@85 adapted %s base %s", i + 1, s.image.name, len(objs), mean("adapted", 0), mean("base", 0))
    blocks = []
    for b in range(0, len(rows), 10):
        blk = rows[b:b + 10]
        out = {"images": f"{b + 1}-{b + len(blk)}", "objects": sum(r["objects"] for r in blk)}
        for key in ("adapted", "base"):
            vals = [v for r in blk for v in r[key]]
            out[key] = {"NoC@85": float(np.mean([v[0] for v in vals])) if vals else None,
                        "NoC@90": float(np.mean([v[1] for v in vals])) if vals else None}
        blocks.append(out)
    summary = {"data": str(data), "split": a.split, "session_images": len(rows), "per_image": a.per_image,
               "max_clicks": a.max_clicks, "adapt_steps": a.adapt_steps, "adapt_lr": a.adapt_lr,
               "adapt_keep": a.adapt_keep, "adapt_every": a.adapt_every, "adaptations": len(t_adapt),
               "objects_answered_by_adapted": int(sum(used_adapted)), "guard": guard.to_json(),
               "adapt_seconds_median": float(statistics.median(t_adapt)) if t_adapt else None,
               "torch_threads": torch.get_num_threads(),
               "model": {"name": card.get("name"), "path": str(a.model or "shipped")}, "blocks": blocks, "images": rows}
    if len(blocks) >= 3 and blocks[0]["adapted"]["NoC@85"]:
        first, third = blocks[0]["adapted"]["NoC@85"], blocks[2]["adapted"]["NoC@85"]
        summary["reduction_21_30_vs_1_10_adapted"] = round(1 - third / first, 4)
        fb, tb = blocks[0]["base"]["NoC@85"], blocks[2]["base"]["NoC@85"]
        summary["reduction_21_30_vs_1_10_base"] = round(1 - tb / fb, 4) if fb else None
    print(f"\n{data.name} ({a.split}) session: {len(rows)} images, <= {a.per_image} objects each, "
          f"{a.adapt_steps} adaptation steps after each {a.adapt_every} on the last {a.adapt_keep or 'all'} objects "
          f"(median {summary['adapt_seconds_median']} s)")
    print("| images | objects | NoC@85 adapted | NoC@85 unadapted | NoC@90 adapted | NoC@90 unadapted |")
    print("|---|---|---|---|---|---|")
    for b in blocks:
        f = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        print(f"| {b['images']} | {b['objects']} | {f(b['adapted']['NoC@85'])} | {f(b['base']['NoC@85'])} | "
              f"{f(b['adapted']['NoC@90'])} | {f(b['base']['NoC@90'])} |")
    if record:
        from bench._record import model_entry, write_record
        from segstudio.engine.click.session import default_click_model_path

        weights = Path(a.model) if a.model else default_click_model_path()
        name = f"clicks-session-{data.name}" + ("" if a.split == "val" else f"-{a.split}")
        path = write_record(name.lower(), summary, script="python -m bench clicks --session",
                            models=[model_entry("clicknet", weights)], notes=notes)
        print(f"wrote {path}")
    return summary
