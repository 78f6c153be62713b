"""Issue 34's click tables in docs/benchmarks.md ("Click model on every proxy"), rendered from their records.

    python scripts/click_tables.py            # print the val and test tables (per proxy, per class)
    python scripts/click_tables.py --claims   # also replace their claims in docs/claims.json

Reads ``docs/records/clicks-<proxy>-<split>.json`` (written by ``python -m bench clicks --compare-model ... --record``;
the three methods: the shipped model ``clicknet``, the previous model ``clicknet_b``, GrabCut). Run from the repository
root; paste the printed rows into the doc, then ``python -m bench claims`` checks every figure against its record.
The ``prose`` list holds the claims of figures quoted in the text around the test table.
"""
import json, sys
from pathlib import Path
PROXIES = ["isbi2012_membrane", "drive", "crackforest", "jsrt_scr", "car_parts"]
REC = Path("docs/records")

def rows(split, with_camvid=True):
    out, claims = [], []
    names = [(p, f"clicks-{p}-{split}.json") for p in PROXIES]
    if with_camvid and split == "val":
        names.append(("camvid (Car)", "clicks-camvid-car-val.json"))
    for label, fn in names:
        f = REC / fn
        if not f.is_file():
            continue
        r = json.loads(f.read_text())
        res = r["results"]; m = res["methods"]
        if "clicknet_b" not in m or "grabcut" not in m:
            continue
        cells = []
        keys = []
        for meth in ("clicknet", "clicknet_b", "grabcut"):
            a, b = m[meth]["NoC@85"], m[meth]["NoC@90"]
            cells.append(f"{a:.2f} / {b:.2f}")
            keys += [(f"{a:.2f}", f"results.methods.{meth}.NoC@85", 2), (f"{b:.2f}", f"results.methods.{meth}.NoC@90", 2)]
        ious = [m[x]["IoU@1"] for x in ("clicknet", "clicknet_b", "grabcut")]
        keys += [(f"{v:.3f}", f"results.methods.{x}.IoU@1", 3) for v, x in zip(ious, ("clicknet", "clicknet_b", "grabcut"))]
        row = f"| {label} | {res['objects']} | " + " | ".join(cells) + " | " + " / ".join(f"{v:.3f}" for v in ious) + " |"
        out.append(row)
        claims += [{"doc": "docs/benchmarks.md", "quote": row, "figure": fig, "record": str(f), "key": k, "digits": d} for fig, k, d in keys]
    return out, claims

def per_class(split):
    out, claims = [], []
    for p in PROXIES:
        f = REC / f"clicks-{p}-{split}.json"
        if not f.is_file():
            continue
        r = json.loads(f.read_text())
        if "clicknet_b" not in r["results"]["methods"]:
            continue
        for cname, row in r["results"]["per_class"].items():
            cells, keys = [], []
            for meth in ("clicknet", "clicknet_b", "grabcut"):
                a, b = row[meth]["NoC@85"], row[meth]["NoC@90"]
                cells.append(f"{a:.2f} / {b:.2f}")
                keys += [(f"{a:.2f}", ["results", "per_class", cname, meth, "NoC@85"], 2), (f"{b:.2f}", ["results", "per_class", cname, meth, "NoC@90"], 2)]
            line = f"| {p} | {cname} | {row['clicknet']['n']} | " + " | ".join(cells) + " |"
            out.append(line)
            claims += [{"doc": "docs/benchmarks.md", "quote": line, "figure": fig, "record": str(f), "key": k, "digits": d} for fig, k, d in keys]
    return out, claims

if __name__ == "__main__":
    allc = []
    for split in ("val", "test"):
        r, c = rows(split); allc += c
        print(f"--- {split}"); print("\n".join(r))
        pc, c2 = per_class(split); allc += c2
        print(f"--- per class {split}"); print("\n".join(pc))
    R = lambda px: f"docs/records/clicks-{px}-test.json"
    PC = lambda c, m: ["results", "per_class", c, m, "NoC@85"]
    prose = [
        ("and **NoC@85 <= 5 holds on ISBI only** (4.00).", "4.00", R("isbi2012_membrane"), "results.methods.clicknet.NoC@85"),
        ("cells 2.55, JSRT lungs 4.50 and heart 6.00", "2.55", R("isbi2012_membrane"), PC("cell", "clicknet")),
        ("cells 2.55, JSRT lungs 4.50 and heart 6.00", "4.50", R("jsrt_scr"), PC("lung", "clicknet")),
        ("cells 2.55, JSRT lungs 4.50 and heart 6.00", "6.00", R("jsrt_scr"), PC("heart", "clicknet")),
        ("but the wheels (7.00) and background at 5.50", "7.00", R("car_parts"), PC("wheel", "clicknet")),
        ("but the wheels (7.00) and background at 5.50", "5.50", R("car_parts"), PC("front_bumper", "clicknet")),
        ("(its background components: 9.75 against 5.38)", "9.75", R("crackforest"), PC("background", "clicknet")),
        ("(its background components: 9.75 against 5.38)", "5.38", R("crackforest"), PC("background", "clicknet_b")),
    ]
    allc += [{"doc": "docs/benchmarks.md", "quote": q, "figure": f, "record": r, "key": k, "digits": 2} for q, f, r, k in prose]
    if "--claims" in sys.argv:
        reg = json.loads(Path("docs/claims.json").read_text())
        import re
        pat = re.compile(r"docs/records/clicks-(" + "|".join(PROXIES + ["camvid-car"]) + r")-(val|test)\.json$")
        keep = [c for c in reg["claims"] if not pat.search(c["record"])]
        print(f"dropped {len(reg['claims']) - len(keep)} old claims, adding {len(allc)}")
        reg["claims"] = keep + allc
        Path("docs/claims.json").write_text(json.dumps(reg, indent=1, ensure_ascii=False) + "\n")
