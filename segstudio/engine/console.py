"""Console reporting for the command line: tqdm progress bars and metric tables (no Qt; the GUI shows the same
callbacks in its own widgets)."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def train_progress() -> Callable[[str, dict], None]:
    """A :data:`~segstudio.engine.trainer.Callback` that draws a tqdm bar over the planned steps (re-sized when a
    time budget re-plans them) and prints one line per epoch (train loss, validation mIoU in %)."""
    from tqdm import tqdm

    bar = None

    def progress(event: str, info: dict) -> None:
        nonlocal bar
        if event == "step":
            if bar is None:
                bar = tqdm(total=info["total_steps"], initial=info["global_step"] - 1, unit="step", dynamic_ncols=True)
            if bar.total != info["total_steps"]:  # a time budget re-plans the number of steps
                bar.total = info["total_steps"]
                bar.refresh()
            bar.update(1)
            bar.set_postfix(epoch=info["epoch"] + 1, loss=f"{info['loss']:.3f}", lr=f"{info['lr']:.1e}")
        elif event == "epoch":
            msg = f"epoch {info['epoch']}: train loss {info['train_loss']:.4f}"
            if "val_miou" in info:
                msg += f", val mIoU {100 * info['val_miou']:.2f}"
            (bar.write if bar else print)(msg)
        elif event == "done" and bar is not None:
            bar.close()

    return progress


def count_progress(unit: str = "img"):
    """``(progress(done, total), close())``: a tqdm bar for :func:`~segstudio.engine.predict_folder.predict_folder`
    and :func:`~segstudio.engine.evaluate.evaluate`."""
    from tqdm import tqdm

    bar = tqdm(unit=unit, dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(1)

    return progress, bar.close


def metrics_table(res: dict) -> list[str]:
    """The lines ``segstudio evaluate`` prints for a result of :func:`~segstudio.engine.evaluate.evaluate`:
    overall pixel accuracy, mean class accuracy, mIoU, fwIoU, mean F1 (percent; ``-`` when undefined), then one
    line per class (IoU, precision, recall, F1)."""
    pct = lambda v: "-" if v is None else f"{100 * v:.2f}"  # noqa: E731  (None: no labelled pixels)
    lines = [
        f"pixel accuracy {pct(res['pixel_accuracy'])}  mean class accuracy {pct(res['mean_class_accuracy'])}  "
        f"mIoU {pct(res['miou'])}  fwIoU {pct(res['fw_iou'])}  mean F1 {pct(res['mean_f1'])}  ({res['images']} images)"
    ]
    for name, v in res["iou"].items():
        lines.append(
            f"  {name:<16} IoU {pct(v):>6}  precision {pct(res['precision'][name]):>6}  "
            f"recall {pct(res['recall'][name]):>6}  F1 {pct(res['f1'][name]):>6}"
        )
    return lines
