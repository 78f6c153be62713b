"""scripts/zoo.py's generated text follows the committed results (docs/model-zoo.json), not fixed wording."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import load_script

REPO = Path(__file__).resolve().parents[1]


def _zoo():
    return load_script("zoo")


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


def test_segnet_basic_row_trains_from_scratch_with_median_frequency_weights():
    zoo = _zoo()
    assert "segnet_basic" in zoo.MODELS and zoo.architecture("segnet_basic") == ("segnet_basic", None)
    cmd = zoo.command("segnet_basic")
    assert cmd[cmd.index("--model") + 1] == "segnet_basic" and "--encoder" not in cmd
    assert cmd[cmd.index("--class-weights") + 1] == "median"
    # the long run's learning curve: one validation per epoch when asked
    long = zoo.command("segnet_basic", 30, zoo.LONG_RUNS, val_every=1)
    assert long[long.index("--epochs") + 1] == "30" and long[long.index("--val-every") + 1] == "1"
    assert long[-1] == "runs/zoo-long/segnet_basic"


def test_baseline_note_separates_random_init_rows_clear_of_the_baseline():
    zoo = _zoo()
    stored = {
        "simple_cnn": {"miou": 0.205},
        "fcn8s": {"miou": 0.497, "encoder_pretrained": True},
        "unet": {"miou": 0.221, "encoder_pretrained": False},
        "segnet_basic": {"miou": 0.301, "encoder_pretrained": False},
    }
    text = "\n".join(zoo._baseline_notes(stored))
    assert "clear of it at the same budget (≥ 5 points): `segnet_basic` 30.1 at 4 epochs (+9.6)" in text
    assert "The other random-init rows (`unet` 22.1 at 4 epochs (+1.6)) are not" in text
    stored["segnet_basic"]["miou"] = 0.24  # 3.5 points: not clear
    text = "\n".join(zoo._baseline_notes(stored))
    assert "clear of it" not in text
    assert "The random-init rows (`unet` 22.1 at 4 epochs (+1.6), `segnet_basic` 24.0 at 4 epochs (+3.5)) are not" in text


def _long(miou: float, epochs: int = 12, done: int | None = None) -> dict:
    return {"epochs": epochs, "epochs_done": epochs if done is None else done, "miou": miou,
            "curve": [[epochs, miou]], "encoder_pretrained": False}


def test_random_init_rows_are_shown_and_judged_at_the_from_scratch_budget():
    zoo = _zoo()
    stored = {
        "simple_cnn": {"miou": 0.205},
        "fcn8s": {"miou": 0.497, "encoder_pretrained": True},
        "segnet_basic": {"miou": 0.21, "encoder_pretrained": False},
        "long": {"simple_cnn": _long(0.25), "segnet_basic": _long(0.29), "unet": _long(0.40, done=8),
                 "unet_mobilenet_v2": {**_long(0.43), "encoder_pretrained": True}},
    }
    # a finished random-init long run is the row's figure; an ImageNet one or a stopped one is not
    assert zoo.shown("segnet_basic", stored) == (stored["long"]["segnet_basic"], 12)
    assert zoo.shown("unet_mobilenet_v2", stored) == ({}, zoo.EPOCHS)
    assert zoo.shown("fcn8s", stored) == (stored["fcn8s"], zoo.EPOCHS)
    text = "\n".join(zoo._baseline_notes(stored))
    assert "20.5 at 4 epochs, 25.0 at 12 epochs" in text
    # 29.0 is 8.5 points above the 4-epoch baseline, but only 4.0 above the baseline trained as long: not clear
    assert "clear of it" not in text and "`segnet_basic` 29.0 at 12 epochs (+4.0)" in text
    stored["long"]["segnet_basic"] = _long(0.31)
    assert "clear of it at the same budget (≥ 5 points): `segnet_basic` 31.0 at 12 epochs (+6.0)" in "\n".join(
        zoo._baseline_notes(stored))
    # a random-init row at 12 epochs with no 12-epoch baseline gets no gap (and is not called clear)
    del stored["long"]["simple_cnn"]
    text = "\n".join(zoo._baseline_notes(stored))
    assert "clear of it" not in text and "`segnet_basic` 31.0 at 12 epochs (no baseline run that long)" in text


def test_segnet_basic_item_reads_gap_rise_and_lost_class_from_the_runs():
    zoo = _zoo()
    names = ["Sky", "Building", "Pole"]
    sb = {"epochs": 12, "miou": 0.30, "curve": [[8, 0.27], [12, 0.30]], "iou": {"Sky": 0.8, "Building": 0.01, "Pole": 0.1},
          "confusion": [[90, 10, 0], [5, 1, 94], [0, 0, 10]], "class_weights": {"Sky": 0.3, "Building": 0.2, "Pole": 4.8}}
    base = {"epochs": 12, "miou": 0.27, "curve": [[8, 0.269], [12, 0.27]],
            "iou": {"Sky": 0.9, "Building": 0.45, "Pole": 0.0}}
    text = " ".join(" ".join(zoo._segnet_basic_item({"segnet_basic": sb, "simple_cnn": base}, 6)).split())
    assert text.startswith("6. **SegNet-Basic") and "+3.0 points against `simple_cnn` trained as long" in text
    assert "epoch 8 to 12" in text and "SegNet-Basic +3.0" in text and "`simple_cnn` +0.1" in text
    assert "Building (1.0 IoU vs 45.0)" in text and "Pole (94 %, weight 24× Building's)" in text
    assert "pull it into the classes they raise" in text
    # a baseline trained for another budget is not compared; no long run, no item
    other = " ".join(zoo._segnet_basic_item({"segnet_basic": sb, "simple_cnn": {**base, "epochs": 4}}, 5))
    assert "against `simple_cnn`" not in other and other.startswith("5. ")
    assert zoo._segnet_basic_item({"simple_cnn": base}, 5) == []


def test_lists_read_as_prose():
    zoo = _zoo()
    assert zoo._and([]) == "" and zoo._and(["a"]) == "a" and zoo._and(["a", "b"]) == "a and b"
    assert zoo._and(["a", "b", "c"]) == "a, b and c"
