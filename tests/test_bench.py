"""Benchmarks: issue 29's proxy suite (``python -m bench hitl --suite``): which folders are proxies, the suite table, and one
real budget-path fine-tune through the bench on a proxy, scored on val images it never trained on."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from bench import hitl
from conftest import SHARED


def test_proxies_are_every_dataset_with_train_txt_but_camvid(tmp_path):
    for name in ("camvid", "camvid_samples", "drive", "zeta", "no_split"):
        (tmp_path / name).mkdir()
        if name != "no_split":
            (tmp_path / name / "train.txt").write_text("a\n")
    (tmp_path / "file.txt").write_text("")
    assert [p.name for p in hitl.proxies(tmp_path)] == ["drive", "zeta"]


def _rec(name, recipe, fixed, long, lowest):
    runs = {"budget_3min": {"miou": recipe, "lowest_trained_iou": lowest, "steps_done": 100},
            "fixed_3min": {"miou": fixed}}
    if long is not None:
        runs["long_20min"] = {"miou": long}
        for r in runs.values():
            r["ratio_to_long"] = round(r["miou"] / long, 3)
    return {"data": f"/x/{name}", "runs": runs}


def test_suite_table_reports_ratio_fixed_plan_mean_and_worst():
    text = hitl.table([_rec("a", 60.0, 55.0, 64.0, 31.0), _rec("b", 40.0, 42.0, 50.0, 12.5), _rec("c", 70.0, 60.0, None, 50.0)], 3, 20)
    lines = text.splitlines()
    assert lines[2].startswith("| a | 60.00 | 31.00 | 64.00 | 0.938 | 55.00 | +5.00 |")
    assert lines[3].startswith("| b | 40.00 | 12.50 | 50.00 | 0.800 | 42.00 | -2.00 |")
    assert lines[4].startswith("| c | 70.00 | 50.00 | — | — | 60.00 | +10.00 |")  # no long reference yet
    assert lines[5].startswith("| **mean** | 56.67 |") and "0.869" in lines[5] and "+4.33" in lines[5]
    assert "Worst ratio to the long reference: 0.800 (b)" in text


def test_ratios_are_derived_again_from_the_stored_runs_after_a_long_reference_is_re_run():
    rec = _rec("a", 60.0, 55.0, 64.0, 31.0)
    rec["runs"]["long_20min"]["miou"] = 80.0  # the long reference re-run alone (a variant run, no ratios set)
    hitl.set_ratios(rec, 20)
    assert rec["runs"]["budget_3min"]["ratio_to_long"] == 0.75 and rec["runs"]["long_20min"]["ratio_to_long"] == 1.0
    hitl.set_ratios(rec, 60)  # no 60-min reference: no ratio
    assert rec["runs"]["budget_3min"]["ratio_to_long"] is None


@pytest.mark.data
def test_bench_fine_tune_on_a_proxy_scores_images_it_never_trained_on(tmp_path, monkeypatch):
    """Two ISBI slices through the bench's one-click path (a 20-s budget, not max_steps), scored on ISBI val: the
    record names the trained classes, the lowest of their IoUs, the commit and the starting model's SHA-256."""
    isbi = SHARED / "datasets" / "isbi2012_membrane"
    args = SimpleNamespace(extra=["--data", str(isbi), "--budgets", "0.33", "--long-minutes", "0", "--no-fixed",
                                  "--train-images", "2", "--out-dir", str(tmp_path / "out"), "--device", "cpu"])
    hitl.run(args)
    rec = json.loads((tmp_path / "out" / "isbi2012_membrane.val.json").read_text())
    run = rec["runs"]["budget_0.33min"]
    trained = set(rec["train_images"])
    val = set((isbi / "val.txt").read_text().split())
    assert len(trained) == 2 and not trained & val and run["images"] == len(val)  # scored on images it never saw
    assert run["schedule"]["stopped"] == "budget" and run["overridden"] == {"budget_s": 19.8}
    assert rec["trained_classes"] == ["membrane", "cell"] and run["lowest_trained_iou"] == min(run["iou"].values())
    assert len(rec["init_sha256"]) == 64 and rec["commit"]
    assert 0 < run["miou"] <= 100


def test_bench_train_step_refuses_a_dataset_too_small_for_its_steps():
    """Issue 33, item 4: 24 images, batch 8, 2 + 8 steps used to crash with StopIteration; now a clear refusal."""
    from bench.train_step import check_steps_fit

    check_steps_fit(80, 8, 10)  # exactly fits
    with pytest.raises(SystemExit, match=r"24 training images give 3 full batches of 8.*SEGSTUDIO_BENCH_STEPS <= 1"):
        check_steps_fit(24, 8, 10)


@pytest.mark.data
def test_predict_folder_says_where_the_time_goes():
    """Issue 33, item 3: the full pipeline, the data path alone (null model) and the model alone, on the CPU; the data
    path without a model is faster than the whole pipeline, and the bound is the slower part."""
    import torch

    from bench.predict_folder import NullModel, _paths, where_time_goes
    from segstudio.engine import load_checkpoint

    out = NullModel(3)(torch.zeros(2, 3, 5, 7))["out"]
    assert out.shape == (2, 3, 5, 7) and not out.any()
    res = where_time_goes(load_checkpoint(None), _paths(4), torch.device("cpu"), reps=1)
    assert res["data_path_images_per_s"] > res["full_pipeline_images_per_s"] > 0 and res["model_alone_images_per_s"] > 0
    slower = min(("data path", res["data_path_images_per_s"]), ("model", res["model_alone_images_per_s"]), key=lambda t: t[1])
    assert res["bound"] == slower[0]
    # the batched pipeline (issue 33, item 4): its own two figures and predict_folder old vs new, real and null model
    assert res["batched_data_path_images_per_s"] > res["batched_full_pipeline_images_per_s"] > 0
    assert set(res["predict_folder_images_per_s"]) == {
        "today (serial writes)", "per-image (old)", "batched (new)", "today (serial writes), null model",
        "per-image (old), null model", "batched (new), null model"}
    assert all(v > 0 for v in res["predict_folder_images_per_s"].values())


def test_runs_table_lists_every_run_and_the_mean_of_the_domains_that_have_it():
    recs = [_rec("a", 60.0, 55.0, None, 31.0), _rec("b", 40.0, 42.0, None, 12.5)]
    recs[0]["runs"]["bn_train"] = {"miou": 66.0, "lowest_trained_iou": 40.0}
    text = hitl.runs_table(recs, ["budget_3min", "fixed_3min", "bn_train"])
    lines = text.splitlines()
    assert lines[2] == "| a | 60.00 (31.0) | 55.00 (—) | 66.00 (40.0) |"
    assert lines[3] == "| b | 40.00 (12.5) | 42.00 (—) | — |"
    assert lines[4] == "| **mean (domains with the run)** | 50.00 (2) | 48.50 (2) | 66.00 (1) |"
    suite = {"split": "val", "budgets": [3.0], "long_minutes": 20.0, "domains": recs}
    assert "Every run, mIoU" in hitl.suite_markdown(suite)
