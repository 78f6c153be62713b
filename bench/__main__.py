"""Run benchmarks: ``python -m bench [NAME ...] [--json FILE] [--quick] [--record [--notes TEXT]]``; ``python -m bench hitl --help`` and
``python -m bench clicks --help`` for their own options (``python -m bench tta`` takes ``--images N``,
``python -m bench claims`` ``--registry FILE``). A benchmark whose result has ``"ok": False`` (``claims`` with a
mismatch) makes the exit status 1."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    """Names of the benchmark modules in ``bench/`` (files not starting with ``_``)."""
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_"))


def machine_info() -> dict:
    """Machine, Python, torch version and date, recorded with every result."""
    import torch

    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _record(name: str, mod, result: dict, args) -> None:
    """Write ``docs/records/<name>.json`` for a benchmark that declares ``RECORD_MODELS`` (the bundled models its
    figures depend on, by name; empty when none) and does not write its own record."""
    from bench._record import model_entry, write_record
    from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR

    models = [model_entry(m, DEFAULT_MODEL_DIR / f"{m}.safetensors") for m in mod.RECORD_MODELS]
    notes = " ".join(x for x in (args.notes, "--quick (smaller sizes / fewer repeats)" if args.quick else "") if x)
    print(f"wrote {write_record(name, result, script=f'python -m bench {name}', models=models, notes=notes)}")


def main(argv: list[str] | None = None) -> int:
    names = available()
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(names)}")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--quick", action="store_true", help="smaller sizes / fewer repeats (a smoke run)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--record", action="store_true",
                   help="benchmarks that support it write their record to docs/records/<name>.json (bench/_record.py)")
    p.add_argument("--notes", default="", help="with --record: the conditions of this run (machine load, what ran beside it)")
    args, extra = p.parse_known_args(argv)
    own_options = (["hitl"], ["clicks"], ["tta"], ["claims"])  # benchmarks that parse args.extra themselves
    if extra and args.names not in own_options:
        p.error(f"unrecognized arguments: {' '.join(extra)} (only `python -m bench hitl` / `clicks` / `tta` / `claims` take their own options)")
    args.extra = extra
    unknown = [n for n in args.names if n not in names]
    if unknown:
        p.error(f"unknown benchmark(s) {unknown}; available: {names}")
    results = {"machine": machine_info(), "results": {}}
    print(json.dumps(results["machine"], indent=1))
    for name in args.names or names:
        print(f"\n=== {name} ===", flush=True)
        mod = importlib.import_module(f"bench.{name}")
        results["results"][name] = mod.run(args)
        if args.record and getattr(mod, "RECORD_MODELS", None) is not None:
            _record(name, mod, results["results"][name], args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    failed = [n for n, r in results["results"].items() if isinstance(r, dict) and r.get("ok") is False]
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
