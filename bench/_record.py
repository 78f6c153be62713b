"""Records: the JSON a measuring script writes into ``docs/records/`` so that every figure the docs quote has one.

A record holds the results and what they depend on: the script and command that measured them, the git commit of
the tree (and whether it had uncommitted changes), each model measured with its file's SHA-256, the machine
(threads, torch) and free-text notes on the conditions (a shared machine's load). ``python -m bench claims``
(``bench/claims.py``) compares the figures quoted in the docs with these records.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECORDS = REPO / "docs" / "records"
"""Where the records live (one JSON file per measurement)."""


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (the identity of a model's weights in a record)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def git_state() -> dict:
    """``{"commit": HEAD's hash or None, "dirty": True when tracked files differ from it}`` for this repository."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout
        return {"commit": commit, "dirty": bool(status.strip())}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def _command() -> str:
    """This process's command line as typed (``python -m bench ...`` for the bench dispatcher)."""
    if not sys.argv:
        return ""
    first = "python -m bench" if Path(sys.argv[0]).name == "__main__.py" else f"python {sys.argv[0]}"
    return " ".join([first, *sys.argv[1:]])


def model_entry(name: str, path: str | Path) -> dict:
    """``{"name", "path" (relative to the repo where possible), "sha256"}`` of one measured model file."""
    p = Path(path).resolve()
    try:
        shown = str(p.relative_to(REPO))
    except ValueError:
        shown = str(p)
    return {"name": name, "path": shown, "sha256": sha256_file(p)}


def write_record(name: str, results: dict, *, script: str, models: list[dict], notes: str = "",
                 directory: Path | None = None) -> Path:
    """Write ``docs/records/<name>.json`` atomically and return its path.

    Args:
        name: file stem of the record.
        results: the measured figures (JSON-able).
        script: the script or ``python -m bench NAME`` that measured them.
        models: :func:`model_entry` of every model the figures depend on.
        notes: conditions of the measurement (load on the machine, threads, what the figures are and are not).
        directory: where to write (default ``docs/records``).
    """
    import torch

    from segstudio.io import atomic_write_bytes

    record = {
        "script": script,
        "command": _command(),
        **git_state(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "models": models,
        "notes": notes,
        "results": results,
    }
    out = (directory or RECORDS) / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, (json.dumps(record, indent=1) + "\n").encode())
    return out
