"""Issue 34's click tables in docs/benchmarks.md ("Click model on every proxy"), rendered from their records.

    python scripts/click_tables.py            # print the val and test tables (per proxy, per class, boundary)

Reads ``docs/records/clicks-<proxy>-<split>.json`` (written by ``python -m bench clicks --compare-model ... --record``;
the three methods: the shipped model ``clicknet``, the previous model ``clicknet_b``, GrabCut). Run from the repository
root and paste the printed tables into the doc. The tables are ``generated`` blocks of ``docs/claims.json``:
``python -m bench claims`` renders them again with :func:`proxy_table` and :func:`class_table` from the records it
names and requires each doc block to equal its rendering, so every figure of a table equals its record.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

PROXIES = ["isbi2012_membrane", "drive", "crackforest", "jsrt_scr", "car_parts"]
"""Row order of the tables (the proxy suite's datasets)."""
CAMVID = ("camvid (Car)", "clicks-camvid-car-val.json")
"""The CamVid-cars row of the val table: its label and record file."""
METHODS = ("clicknet", "clicknet_b", "grabcut")
"""The shipped model, the previous model and GrabCut, as ``bench clicks --compare-model`` names them."""
REC = Path("docs/records")


def record_paths(split: str) -> list[str]:
    """The records of one split's tables (``val`` adds CamVid cars), repository-relative, in row order."""
    paths = [str(REC / f"clicks-{p}-{split}.json") for p in PROXIES]
    return paths + ([str(REC / CAMVID[1])] if split == "val" else [])


def _label(path: str) -> str:
    name = Path(path).name
    if name == CAMVID[1]:
        return CAMVID[0]
    return next(p for p in PROXIES if name.startswith(f"clicks-{p}-"))


def _pair(m: dict) -> str:
    return f"{m['NoC@85']:.2f} / {m['NoC@90']:.2f}"


def _compared(records: dict[str, dict]) -> list[tuple[str, dict]]:
    """``(row label, results)`` of the records that measured all three methods, in the given order."""
    out = []
    for path, rec in records.items():
        res = rec["results"]
        if all(m in res["methods"] for m in METHODS):
            out.append((_label(path), res))
    return out


def proxy_table(records: dict[str, dict]) -> str:
    """Markdown table, one row per record: objects, NoC@85 / NoC@90 of the three methods, IoU after one click.

    Args:
        records: repository-relative record path -> the record (``bench clicks --record`` JSON), in row order;
            all of one split. Records without all three methods are left out.
    """
    rows = _compared(records)
    split = rows[0][1]["split"] if rows else "val"
    lines = [f"| proxy ({split} objects) | n | shipped NoC@85 / @90 | previous NoC@85 / @90 | GrabCut NoC@85 / @90 "
             "| IoU@1 shipped / previous / GrabCut |", "|---|---|---|---|---|---|"]
    for label, res in rows:
        m = res["methods"]
        cells = " | ".join(_pair(m[x]) for x in METHODS)
        ious = " / ".join(f"{m[x]['IoU@1']:.3f}" for x in METHODS)
        lines.append(f"| {label} | {res['objects']} | {cells} | {ious} |")
    return "\n".join(lines)


def class_table(records: dict[str, dict]) -> str:
    """Markdown table, one row per (proxy, class): objects of the class, NoC@85 / NoC@90 of the three methods.

    Args:
        records: as :func:`proxy_table` (CamVid cars, one class, is left out).
    """
    lines = ["| proxy | class | n | shipped NoC@85 / @90 | previous NoC@85 / @90 | GrabCut NoC@85 / @90 |",
             "|---|---|---|---|---|---|"]
    for label, res in _compared(records):
        if label == CAMVID[0]:
            continue
        for cname, row in res["per_class"].items():
            cells = " | ".join(_pair(row[x]) for x in METHODS)
            lines.append(f"| {label} | {cname} | {row['clicknet']['n']} | {cells} |")
    return "\n".join(lines)


def boundary_paths(split: str) -> list[str]:
    """The ``bench clicks --boundary`` records of one split, repository-relative, in :data:`PROXIES` order."""
    return [str(REC / f"clicks-boundary-{p}-{split}.json") for p in PROXIES]


def boundary_table(records: dict[str, dict]) -> str:
    """Markdown table of what NoC@85 asks of boundary precision: one row per (proxy, class) with the class's
    objects, median width (px) and mean IoU of an object with its own outline moved 1 px out / in, and how many
    objects such a shift takes below 0.85. A proxy where no object falls below 0.85 gets one row, "every class".

    Args:
        records: record path -> ``bench clicks --boundary --record`` JSON, in row order.
    """
    lines = ["| proxy | class | n | width px (median) | IoU, outline 1 px out | IoU, outline 1 px in "
             "| objects below 0.85 |", "|---|---|---|---|---|---|---|"]
    for path, rec in records.items():
        res = rec["results"]
        label = next(p for p in PROXIES if Path(path).name.startswith(f"clicks-boundary-{p}-"))
        if res["below_85_either"] == 0:
            objs = res["objects_list"]
            mid = statistics.median(o["width_px"] for o in objs)
            grown = statistics.fmean(o["iou_grown_1px"] for o in objs)
            shrunk = statistics.fmean(o["iou_shrunk_1px"] for o in objs)
            lines.append(f"| {label} | every class ({len(res['per_class'])}) | {len(objs)} | {mid:.1f} | {grown:.3f} | "
                         f"{shrunk:.3f} | 0 |")
            continue
        for cname, r in res["per_class"].items():
            lines.append(f"| {label} | {cname} | {r['n']} | {r['width_px_median']:.1f} | {r['iou_grown_1px_mean']:.3f} | "
                         f"{r['iou_shrunk_1px_mean']:.3f} | {r['below_85_either']} |")
    return "\n".join(lines)


def load(split: str) -> dict[str, dict]:
    """The records of :func:`record_paths` that exist, read from the current directory (the repository root)."""
    return {p: json.loads(Path(p).read_text()) for p in record_paths(split) if Path(p).is_file()}


if __name__ == "__main__":
    for split in ("val", "test"):
        recs = load(split)
        print(f"--- {split}\n{proxy_table(recs)}\n--- per class {split}\n{class_table(recs)}")
        bounds = {p: json.loads(Path(p).read_text()) for p in boundary_paths(split) if Path(p).is_file()}
        print(f"--- boundary {split}\n{boundary_table(bounds)}")
