"""`python -m bench claims` (issue 30): every figure registered in docs/claims.json equals its record, and the check
fails on a changed figure, an edited quote, a record without provenance and an unregistered figure."""

from __future__ import annotations

import json
from pathlib import Path

from bench.claims import check, format_value, main

REPO = Path(__file__).resolve().parents[1]


def test_docs_match_their_records():
    errors, notes = check()
    assert errors == [], "\n".join(errors)
    reg = json.loads((REPO / "docs" / "claims.json").read_text())
    docs = {c["doc"] for c in reg["claims"]}
    assert {"README.md", "docs/benchmarks.md"} <= docs
    # The HITL tables are rendered from the suite's records and the section is scanned (issue 29 re-ran them).
    assert any(g["renderer"] == "bench.hitl:suite_markdown" for g in reg["generated"])
    assert any("## HITL - learning per minute" in (e.get("sections") or []) for e in reg["scan"])
    assert main([]) == 0


def _fixture(tmp_path: Path, doc_text: str, record: dict, claim: dict, scan=False) -> Path:
    (tmp_path / "docs" / "records").mkdir(parents=True)
    (tmp_path / "README.md").write_text(doc_text)
    (tmp_path / "docs" / "records" / "r.json").write_text(json.dumps(record))
    reg = {"claims": [{"doc": "README.md", "record": "docs/records/r.json", **claim}],
           "scan": [{"doc": "README.md", "sections": None}] if scan else [], "not_figures": {"Python 3.11": "a version"}}
    (tmp_path / "docs" / "claims.json").write_text(json.dumps(reg))
    return tmp_path / "docs" / "claims.json"


RECORD = {"commit": "abc", "dirty": False, "models": [{"name": "m", "sha256": "00"}], "results": {"miou": 0.6444}}
CLAIM = {"quote": "scores mIoU 64.4 on the samples", "figure": "64.4", "key": "results.miou", "scale": 100, "digits": 1}


def test_a_matching_claim_passes_and_each_kind_of_drift_fails(tmp_path):
    doc = "Python 3.11. The model scores mIoU 64.4 on the samples.\n"
    reg = _fixture(tmp_path, doc, RECORD, CLAIM, scan=True)
    assert check(reg, tmp_path) == ([], [])

    # the record changes (re-measured) and the doc does not
    (tmp_path / "docs" / "records" / "r.json").write_text(json.dumps({**RECORD, "results": {"miou": 0.6512}}))
    errors, _ = check(reg, tmp_path)
    assert len(errors) == 1 and "the doc says 64.4" in errors[0] and "65.1" in errors[0]

    # the doc is edited and the quote is gone
    (tmp_path / "docs" / "records" / "r.json").write_text(json.dumps(RECORD))
    (tmp_path / "README.md").write_text(doc.replace("64.4", "66.0"))
    errors, _ = check(reg, tmp_path)
    assert any("quote not in the doc" in e for e in errors)
    # ... and its new figure is registered nowhere
    assert any("figure 66.0 has no claim" in e for e in errors)


def test_a_record_without_commit_or_model_hash_fails_unless_the_gap_is_declared(tmp_path):
    doc = "The model scores mIoU 64.4 on the samples.\n"
    bare = {"results": {"miou": 0.6444}}
    reg = _fixture(tmp_path, doc, bare, CLAIM)
    errors, _ = check(reg, tmp_path)
    assert len(errors) == 1 and "names no commit and model SHA-256" in errors[0]
    reg = _fixture(tmp_path / "b", doc, bare, {**CLAIM, "provenance_gap": "checkpoint not kept"})
    errors, notes = check(reg, tmp_path / "b")
    assert errors == [] and any("checkpoint not kept" in n for n in notes)


def test_format_value_rounds_as_docs_write():
    assert format_value(0.70321, 100, 1) == "70.3"
    assert format_value(0.08249, 1, 4) == "0.0825"
    assert format_value(104.14, 1, 0) == "104"


def test_a_generated_block_must_equal_its_renderer_of_the_record(tmp_path):
    record = {"rows": [1, 2]}
    reg = _fixture(tmp_path, "intro\n" + json.dumps(record) + "\nend\n", RECORD, CLAIM)
    registry = json.loads(reg.read_text())
    registry["claims"] = []
    (tmp_path / "docs" / "records" / "g.json").write_text(json.dumps(record))
    registry["generated"] = [{"doc": "README.md", "record": "docs/records/g.json", "renderer": "json:dumps"}]
    reg.write_text(json.dumps(registry))
    assert check(reg, tmp_path)[0] == []
    (tmp_path / "docs" / "records" / "g.json").write_text(json.dumps({"rows": [1, 3]}))
    errors, _ = check(reg, tmp_path)
    assert len(errors) == 1 and "differs from json:dumps" in errors[0]


def test_a_block_generated_from_several_records_gets_them_all_in_order(tmp_path):
    """Issue 34's click tables: one record per proxy, one block; a changed figure in any record fails the check."""
    import sys

    if str(REPO) not in sys.path:  # scripts/ is no installed package
        sys.path.insert(0, str(REPO))
    from scripts.click_tables import class_table, proxy_table

    def rec(split, noc85, per_class):
        methods = {m: {"NoC@85": noc85 + i, "NoC@90": noc85 + i + 1, "IoU@1": 0.5 - i / 10} for i, m in
                   enumerate(("clicknet", "clicknet_b", "grabcut"))}
        return {"results": {"split": split, "objects": 3, "methods": methods, "per_class": per_class}}

    cls = {"cell": {m: {"NoC@85": 2.0, "NoC@90": 3.0, "n": 2} for m in ("clicknet", "clicknet_b", "grabcut")}}
    paths = ["docs/records/clicks-isbi2012_membrane-test.json", "docs/records/clicks-drive-test.json"]
    records = {paths[0]: rec("test", 4.0, cls), paths[1]: rec("test", 13.5, cls)}
    table = proxy_table(records)
    assert table.splitlines()[0].startswith("| proxy (test objects) |")
    assert table.splitlines()[2] == "| isbi2012_membrane | 3 | 4.00 / 5.00 | 5.00 / 6.00 | 6.00 / 7.00 | 0.500 / 0.400 / 0.300 |"
    assert table.splitlines()[3].startswith("| drive | 3 | 13.50 / 14.50 |")
    assert class_table(records).splitlines()[2] == "| isbi2012_membrane | cell | 2 | 2.00 / 3.00 | 2.00 / 3.00 | 2.00 / 3.00 |"

    reg = _fixture(tmp_path, "intro\n" + table + "\nend\n", RECORD, CLAIM)
    registry = json.loads(reg.read_text())
    registry["claims"] = []
    for p, r in records.items():
        (tmp_path / p).write_text(json.dumps(r))
    registry["generated"] = [{"doc": "README.md", "records": paths, "renderer": "scripts.click_tables:proxy_table"}]
    reg.write_text(json.dumps(registry))
    assert check(reg, tmp_path)[0] == []
    (tmp_path / paths[1]).write_text(json.dumps(rec("test", 12.5, cls)))  # the second proxy re-measured
    errors, _ = check(reg, tmp_path)
    assert len(errors) == 1 and "differs from scripts.click_tables:proxy_table" in errors[0] and paths[1] in errors[0]
