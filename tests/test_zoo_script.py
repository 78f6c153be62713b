"""scripts/zoo.py's generated text follows the committed results (docs/model-zoo.json), not fixed wording."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _zoo():
    spec = importlib.util.spec_from_file_location("zoo_script", REPO / "scripts" / "zoo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_clear_of_the_baseline_means_five_points_above_it_at_the_best_epoch():
    zoo = _zoo()
    base = 0.205
    assert zoo._lifted({"curve": [[4, 0.21], [8, 0.26]]}, base)  # the best epoch counts, not the last
    assert not zoo._lifted({"curve": [[4, 0.213], [6, 0.192]]}, base)
    assert not zoo._lifted({"curve": []}, base) and not zoo._lifted({"curve": [[4, 0.5]]}, None)


def test_segnet_sentence_follows_its_long_run():
    zoo = _zoo()
    stuck = zoo._segnet_advice({"epochs": 6, "curve": [[4, 0.213], [6, 0.192]]}, 0.205)
    assert "did not leave the baseline in 6 epochs" in stuck and "21.3 at epoch 4" in stuck
    lifted = zoo._segnet_advice({"epochs": 12, "curve": [[4, 0.21], [8, 0.27], [12, 0.325]]}, 0.205)
    assert "12 epochs" in lifted and "32.5 (epoch 12)" in lifted and "12 points above" in lifted
    assert "longer schedule" in zoo._segnet_advice(None, 0.205)


def test_random_init_section_lists_every_committed_long_run():
    zoo = _zoo()
    stored = json.loads((REPO / "docs" / "model-zoo.json").read_text())
    text = "\n".join(zoo._random_init_section(stored))
    for row, long in stored["long"].items():
        assert f"--epochs {long['epochs']}`" in text, row
    assert "More budget lifts" in text


def test_a_stopped_long_run_says_how_far_it_got():
    zoo = _zoo()
    text = zoo._segnet_advice({"epochs": 12, "epochs_done": 9, "curve": [[4, 0.183], [8, 0.202]]}, 0.205)
    assert "9 of 12 epochs so far" in text and "20.2 at epoch 8" in text


def test_segnet_sentence_reports_the_median_frequency_row_once_trained():
    zoo = _zoo()
    long = {"epochs": 12, "curve": [[4, 0.183], [8, 0.202], [12, 0.2225]]}
    text = zoo._segnet_advice(long, 0.205, {"miou": 0.231})
    assert "segnet_median" in text and "23.1" in text and "--class-weights median" not in text
    assert "--class-weights median" in zoo._segnet_advice(long, 0.205, None)
