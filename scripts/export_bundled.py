"""Copy a trained checkpoint into resources/models/ as a bundled model (float16 weights + card).

Usage: python scripts/export_bundled.py RUN_DIR/model.safetensors NAME [--card-extra JSON]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR, load_checkpoint, save_checkpoint  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("checkpoint")
    ap.add_argument("name")
    ap.add_argument("--card-extra", default="{}", help="JSON merged into the card")
    args = ap.parse_args()
    loaded = load_checkpoint(args.checkpoint)
    card = dict(loaded.card)
    card["name"] = args.name
    card.update(json.loads(args.card_extra))
    path = save_checkpoint(DEFAULT_MODEL_DIR, loaded.model, card, half=True, stem=args.name)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
