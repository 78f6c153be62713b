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
