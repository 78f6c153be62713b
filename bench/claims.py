"""Every figure the docs quote equals its record: ``python -m bench claims [--registry docs/claims.json]``.

The registry (``docs/claims.json``) lists claims; each is

``{"doc": "README.md", "quote": "exact text of the doc containing the figure", "figure": "70.3",
   "record": "docs/records/x.json", "key": "results.a.b", "scale": 100, "digits": 1}``

and is checked thus: ``quote`` occurs in ``doc`` verbatim (so an edited sentence is noticed), ``figure`` occurs in
``quote``, and the record's value at ``key`` (dot-separated; list indices as numbers), times ``scale`` (default 1),
formatted with ``digits`` decimals, equals ``figure`` (``key`` may be a list of parts where a key has a dot). A record must name the commit it was measured at and the
SHA-256 of each model it measured (``bench/_record.py``); a claim on an older record without them carries
``"provenance_gap": "why"`` and is reported as such, never silently.

``generated`` lists docs that contain a Markdown block rendered from a record by a function
(``{"doc", "record", "renderer": "module:function"}``, e.g. the CamVid ablation table, ``scripts.camvid_recipe:
ablation_markdown`` of ``docs/camvid-recipe.json``, in ``docs/camvid-recipe.md`` and the model card): the block
rendered now must occur in the doc verbatim, so every figure of it equals the record. A block rendered from several
records names them as ``"records": [...]`` instead, and its renderer gets ``{path: record}`` in that order (issue
34's click tables, ``scripts.click_tables``: one record per proxy).

``scan`` in the registry names docs (optionally a list of section headings) whose decimal figures must all be
registered claims: a decimal number in a scanned section that no claim's quote covers, and that ``not_figures``
does not list (a version, a CLI example), fails the check. ``pending`` lists sections whose figures are not
registered yet, with the reason (e.g. the HITL tables of docs/benchmarks.md, re-measured elsewhere): they are
printed, not checked, and a claim may be added for them like any other.

Exits (``main``) / returns (``run``) non-zero on any mismatch, missing quote, unreadable record or unregistered figure.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REGISTRY = REPO / "docs" / "claims.json"
DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.]*\d)")
"""A decimal figure (``70.3``, ``0.0825``) not part of a longer token such as a version ``2.14.1`` or a hash."""


def _lookup(obj, key: str | list):
    """The value at ``key`` in a record: a dot-separated path, or a list of parts (for keys containing a dot)."""
    for part in (key.split(".") if isinstance(key, str) else key):
        if isinstance(obj, list):
            obj = obj[int(part)]
        else:
            obj = obj[part]
    return obj


def format_value(value: float, scale: float = 1, digits: int = 1) -> str:
    """``value * scale`` with ``digits`` decimals, as a doc writes it (``0.70321`` -> ``70.3`` at scale 100)."""
    return f"{float(value) * scale:.{digits}f}"


def sections(text: str, headings: list[str] | None) -> list[str]:
    """The parts of a Markdown ``text`` under each heading in ``headings`` (up to the next heading of the same or a
    higher level); the whole text when ``headings`` is ``None``. A heading that is missing raises ``KeyError``."""
    if headings is None:
        return [text]
    lines = text.splitlines()
    out = []
    for h in headings:
        starts = [i for i, line in enumerate(lines) if line.startswith(h)]
        if not starts:
            raise KeyError(h)
        i = starts[0]
        level = len(lines[i]) - len(lines[i].lstrip("#"))
        j = i + 1
        while j < len(lines) and not (lines[j].startswith("#") and len(lines[j]) - len(lines[j].lstrip("#")) <= level):
            j += 1
        out.append("\n".join(lines[i:j]))
    return out


def check(registry_path: Path = REGISTRY, root: Path = REPO) -> tuple[list[str], list[str]]:
    """Check every claim of the registry; return ``(errors, notes)`` (no errors: the docs match their records)."""
    reg = json.loads(Path(registry_path).read_text())
    errors, notes = [], []
    gaps: dict[tuple[str, str], list[str]] = {}
    docs: dict[str, str] = {}
    records: dict[str, dict] = {}

    def doc(name: str) -> str | None:
        if name not in docs:
            p = root / name
            docs[name] = p.read_text() if p.is_file() else None
        return docs[name]

    for i, c in enumerate(reg.get("claims", [])):
        where = f"claim {i} ({c.get('doc')}: {c.get('figure')!r})"
        text = doc(c["doc"])
        if text is None:
            errors.append(f"{where}: no such doc")
            continue
        if c["quote"] not in text:
            errors.append(f"{where}: quote not in the doc: {c['quote']!r}")
            continue
        if c["figure"] not in c["quote"]:
            errors.append(f"{where}: figure not in its quote")
            continue
        rp = c["record"]
        if rp not in records:
            try:
                records[rp] = json.loads((root / rp).read_text())
            except (OSError, ValueError) as e:
                errors.append(f"{where}: record {rp} unreadable: {e}")
                continue
        rec = records[rp]
        try:
            value = _lookup(rec, c["key"])
        except (KeyError, IndexError, ValueError, TypeError):
            errors.append(f"{where}: no key {c['key']!r} in {rp}")
            continue
        got = format_value(value, c.get("scale", 1), c.get("digits", 1))
        if got != c["figure"]:
            errors.append(f"{where}: the doc says {c['figure']}, {rp} {c['key']} gives {got}")
        # a commit, and a SHA-256 for every model listed ("models": [] for figures that depend on no model)
        provenance = bool(rec.get("commit")) and isinstance(rec.get("models"), list) \
            and all(isinstance(m, dict) and m.get("sha256") for m in rec["models"])
        if not provenance:
            if c.get("provenance_gap"):
                gaps.setdefault((rp, c["provenance_gap"]), []).append(c["figure"])
            else:
                errors.append(f"{where}: {rp} names no commit and model SHA-256 (bench/_record.py writes them)")
        elif rec.get("dirty"):
            notes.append(f"{where}: {rp} was measured on a tree with uncommitted changes")

    rendered: dict[str, list[str]] = {}  # doc -> its generated blocks (checked whole, so the scan skips them)
    for g in reg.get("generated", []):
        sources = g["records"] if "records" in g else [g["record"]]
        where = f"generated {g['doc']} from {', '.join(sources)}"
        text = doc(g["doc"])
        try:
            import importlib

            mod, fn = g["renderer"].split(":")
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            loaded = {rp: json.loads((root / rp).read_text()) for rp in sources}
            block = getattr(importlib.import_module(mod), fn)(loaded if "records" in g else loaded[g["record"]])
        except (OSError, ValueError, ImportError, AttributeError) as e:
            errors.append(f"{where}: cannot render: {e}")
            continue
        rendered.setdefault(g["doc"], []).append(block.strip())
        if text is None or block.strip() not in text:
            errors.append(f"{where}: the doc's block differs from {g['renderer']} of the record(s)")
        elif g.get("provenance_gap"):
            notes.append(f"{where}: no commit / model SHA-256: {g['provenance_gap']}")
    for (rp, why), figures in gaps.items():
        notes.append(f"{rp} has no commit / model SHA-256 ({len(figures)} claims: {', '.join(figures)}): {why}")
    ignore = set(reg.get("not_figures", {}))
    for entry in reg.get("scan", []):
        text = doc(entry["doc"])
        if text is None:
            errors.append(f"scan: no such doc {entry['doc']}")
            continue
        quotes = [c["quote"] for c in reg.get("claims", []) if c["doc"] == entry["doc"]]
        try:
            parts = sections(text, entry.get("sections"))
        except KeyError as e:
            errors.append(f"scan {entry['doc']}: no section {e}")
            continue
        for part in parts:
            covered = part
            for block in rendered.get(entry["doc"], []):
                covered = covered.replace(block, " ")
            for q in quotes:
                covered = covered.replace(q, " ")
            for ignored in sorted(ignore, key=len, reverse=True):  # a longer phrase before its parts
                covered = covered.replace(ignored, " ")
            for m in DECIMAL.finditer(covered):
                line = covered[covered.rfind("\n", 0, m.start()) + 1: covered.find("\n", m.end())]
                errors.append(f"scan {entry['doc']}: figure {m.group()} has no claim: {line.strip()[:160]!r}")
    for p in reg.get("pending", []):
        notes.append(f"pending (not checked): {p['doc']} {p['section']!r}: {p['reason']}")
    return errors, notes


def run(args) -> dict:
    """``python -m bench claims``: print mismatches and notes; the result's ``ok`` is False on any mismatch."""
    registry = REGISTRY
    extra = list(getattr(args, "extra", []) or [])
    if "--registry" in extra:
        registry = Path(extra[extra.index("--registry") + 1])
    errors, notes = check(registry)
    n = len(json.loads(Path(registry).read_text()).get("claims", []))
    for line in notes:
        print("note:", line)
    for line in errors:
        print("MISMATCH:", line)
    print(f"{n} claims, {len(errors)} mismatches")
    return {"claims": n, "errors": errors, "notes": notes, "ok": not errors}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: exit status 1 when a claim does not match its record."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m bench claims", description=__doc__)
    p.add_argument("--registry", default=str(REGISTRY))
    ns = p.parse_args(argv)
    errors, notes = check(Path(ns.registry))
    for line in notes:
        print("note:", line)
    for line in errors:
        print("MISMATCH:", line)
    print(f"{len(errors)} mismatches")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
