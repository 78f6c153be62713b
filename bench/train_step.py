"""P2: ``Trainer`` steps/s on CamVid crops vs a plain torch training loop (target >= 1.0x: no framework overhead).

Both train the bundled DeepLab v3+ (MobileNetV2) from the same weights on CamVid ``train`` with the same
dataset object (:class:`segstudio.data.SegmentationDataset` + ``train_transforms``, random crops), the same
batch size and DataLoader workers, cross-entropy with ignore_index, AdamW and a poly LR schedule.
The plain loop is the torchvision ``references/segmentation`` pattern: ``for x, y in loader: loss =
F.cross_entropy(model(x)["out"], y, ignore_index); zero_grad; backward; step; sched.step(); loss.item()``.

Steps/s is timed from the end of warm-up step ``W`` to the end of step ``W + N`` (timestamps from the
Trainer's ``"step"`` callback and the same point in the plain loop), so the Trainer's end-of-epoch
checkpoint writing is not counted (it happens once per epoch, not per step). Runs alternate, the order
flipped every round (plain, Trainer, Trainer, plain, ...) so neither always runs second, and medians are
compared. ``data_wait_fraction`` is the share of each loop's timed step time spent waiting for the next
batch (near 0: loading is not the bottleneck; for the Trainer, measured by wrapping its ``loader``).

Env: ``SEGSTUDIO_BENCH_BATCH`` (8, quick 4), ``SEGSTUDIO_BENCH_CROP`` (256, quick 160),
``SEGSTUDIO_BENCH_STEPS`` (8, quick 3), ``SEGSTUDIO_BENCH_WORKERS`` (1), ``SEGSTUDIO_BENCH_ROUNDS`` (2, quick 1),
``SEGSTUDIO_BENCH_DATA`` (a dataset folder instead of CamVid; one that holds fewer than (2 + steps) × batch
training images is refused with what to change, instead of the ``StopIteration`` it raised),
``SEGSTUDIO_BENCH_PROFILE=1`` (print the torch.profiler top ops of 2 Trainer steps).
"""

from __future__ import annotations

import copy
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

CAMVID = Path(os.environ.get("SEGSTUDIO_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "datasets" / "camvid"
WARMUP = 2


RECORD_MODELS = ("camvid_deeplabv3plus_mobilenetv2",)
"""Bundled models whose weights these figures depend on (``python -m bench train_step --record`` names them)."""


def _dataset(crop: int, root: Path = CAMVID):
    from segstudio.data.dataset import SegmentationDataset
    from segstudio.data.transforms import train_transforms
    from segstudio.io.datasets import find_samples

    samples, classes = find_samples(root, "train")
    ds = SegmentationDataset(samples, classes.num_classes)
    ds.transform = train_transforms(crop_size=(crop, crop), base_short_side=360)
    return ds


def check_steps_fit(num_images: int, batch: int, steps: int) -> None:
    """Both loops time ``steps`` steps within one pass over the data (the Trainer writes a checkpoint at each epoch's
    end, which is no per-step cost): refuse a dataset too small for that, saying what to change.

    Raises:
        SystemExit: ``num_images // batch < steps``.
    """
    if num_images // max(1, batch) < steps:
        raise SystemExit(
            f"bench train_step: {num_images} training images give {num_images // max(1, batch)} full batches of {batch}, "
            f"but {steps} steps ({WARMUP} warm-up + timed) must fit in one epoch; set SEGSTUDIO_BENCH_STEPS <= "
            f"{max(0, num_images // max(1, batch) - WARMUP)} or SEGSTUDIO_BENCH_BATCH <= {max(1, num_images // steps)}, "
            "or point SEGSTUDIO_BENCH_DATA at a larger dataset"
        )


def plain_loop(model, ds, batch, workers, steps, device, seed=0) -> tuple[list[float], float]:
    """The plain torch loop; returns (timestamps after each step, seconds spent waiting for batches after warm-up)."""
    import torch.nn.functional as F

    from segstudio.core.labels import IGNORE_INDEX

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers, generator=g,
        persistent_workers=workers > 0, pin_memory=device.type == "cuda",
    )
    model = model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / steps) ** 0.9)
    stamps, wait = [], 0.0
    it = iter(loader)
    for s in range(steps):
        t0 = time.perf_counter()
        x, y = next(it)
        if s >= WARMUP:
            wait += time.perf_counter() - t0
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(model(x)["out"], y, ignore_index=IGNORE_INDEX)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss.item()
        stamps.append(time.perf_counter())
    del it, loader  # ends the worker processes
    return stamps, wait


class _TimedLoader:
    """Wraps a DataLoader: same iteration, plus ``waits``, the seconds each ``next`` took."""

    def __init__(self, loader) -> None:
        self.loader, self.waits = loader, []

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        it = iter(self.loader)
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            self.waits.append(time.perf_counter() - t0)
            yield item


def trainer_run(model, card, ds, batch, workers, steps, device, profile=False, waits=None, amp="auto") -> list[float]:
    """``Trainer.fit`` for ``steps`` steps; returns the timestamps of its ``"step"`` callbacks.

    ``waits``: a list that receives the seconds each batch took to arrive; ``amp``: ``TrainConfig.amp``."""
    from segstudio.engine.trainer import TrainConfig, Trainer

    stamps: list[float] = []

    def cb(event, info):
        if event == "step":
            stamps.append(time.perf_counter())

    cfg = TrainConfig(epochs=1, batch_size=batch, num_workers=workers, device=str(device), max_steps=steps, seed=0, amp=amp)
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(model, card, ds, None, cfg, tmp, callbacks=[cb])
        tr.loader = timed = _TimedLoader(tr.loader)
        if profile:
            from torch.profiler import ProfilerActivity, profile as prof

            with prof(activities=[ProfilerActivity.CPU]) as p:
                tr.fit()
            print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
        else:
            tr.fit()
    if waits is not None:
        waits.extend(timed.waits)
    return stamps


def _rate(stamps: list[float]) -> float:
    return (len(stamps) - WARMUP) / (stamps[-1] - stamps[WARMUP - 1])


def run(args) -> dict:
    from segstudio.engine import load_checkpoint
    from segstudio.engine.devices import resolve_device

    device = resolve_device(getattr(args, "device", "auto"))
    q = args.quick
    batch = int(os.environ.get("SEGSTUDIO_BENCH_BATCH", 4 if q else 8))
    crop = int(os.environ.get("SEGSTUDIO_BENCH_CROP", 160 if q else 256))
    n = int(os.environ.get("SEGSTUDIO_BENCH_STEPS", 3 if q else 8))
    workers = int(os.environ.get("SEGSTUDIO_BENCH_WORKERS", 1))
    rounds = int(os.environ.get("SEGSTUDIO_BENCH_ROUNDS", 1 if q else 2))
    steps = WARMUP + n
    loaded = load_checkpoint(None)
    ds = _dataset(crop, Path(os.environ.get("SEGSTUDIO_BENCH_DATA", CAMVID)))
    check_steps_fit(len(ds), batch, steps)
    plain, framework, waits, twaits, fp32 = [], [], [], [], []
    for r in range(rounds):
        for which in ("plain", "trainer") if r % 2 == 0 else ("trainer", "plain"):
            if which == "plain":
                stamps, wait = plain_loop(copy.deepcopy(loaded.model), ds, batch, workers, steps, device)
                plain.append(_rate(stamps))
                waits.append(wait / (stamps[-1] - stamps[WARMUP - 1]))
            else:
                w: list[float] = []
                stamps = trainer_run(copy.deepcopy(loaded.model), loaded.card, ds, batch, workers, steps, device, waits=w)
                framework.append(_rate(stamps))
                twaits.append(sum(w[WARMUP:steps]) / (stamps[-1] - stamps[WARMUP - 1]))
        if device.type == "cuda":  # issue 33: the same Trainer in float32 (amp off) beside its autocast default
            fp32.append(_rate(trainer_run(copy.deepcopy(loaded.model), loaded.card, ds, batch, workers, steps, device, amp="off")))
        print(f"round {r + 1}: plain {plain[-1]:.3f} steps/s  Trainer {framework[-1]:.3f} steps/s "
              f"(ratio {framework[-1] / plain[-1]:.2f})" + (f"  Trainer fp32 {fp32[-1]:.3f} steps/s" if fp32 else ""), flush=True)
    if os.environ.get("SEGSTUDIO_BENCH_PROFILE") == "1":
        trainer_run(copy.deepcopy(loaded.model), loaded.card, ds, batch, workers, 2, device, profile=True)
    mp, mf = statistics.median(plain), statistics.median(framework)
    res = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "batch": batch,
        "crop": crop,
        "workers": workers,
        "timed_steps": n,
        "rounds": rounds,
        "plain_steps_per_s": round(mp, 4),
        "trainer_steps_per_s": round(mf, 4),
        "all_rounds": {"plain": [round(v, 4) for v in plain], "trainer": [round(v, 4) for v in framework]},
        "ratio_to_baseline": round(mf / mp, 3),
        "round_ratios": [round(f / p, 3) for f, p in zip(framework, plain)],
        "data_wait_fraction_plain": round(statistics.median(waits), 4),
        "data_wait_fraction_trainer": round(statistics.median(twaits), 4),
        "target": ">= 1.0x",
    }
    if fp32:
        res["trainer_fp32_steps_per_s"] = round(statistics.median(fp32), 4)
        res["autocast_speedup"] = round(mf / statistics.median(fp32), 3)
        res["autocast_target"] = ">= 2x"
        print(f"Trainer autocast {mf:.3f} vs float32 {res['trainer_fp32_steps_per_s']:.3f} steps/s: {res['autocast_speedup']:.2f}x")
    print(f"plain loop {mp:.3f} steps/s, Trainer {mf:.3f} steps/s: ratio {mf / mp:.2f}x "
          f"(batch {batch}, crop {crop}, {workers} worker(s)); waited for data: plain loop "
          f"{100 * res['data_wait_fraction_plain']:.1f}%, Trainer {100 * res['data_wait_fraction_trainer']:.1f}% of the time")
    return res
