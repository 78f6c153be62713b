"""The click model at inference: the shipped model's path (:func:`default_click_model_path`), loading a click model
(:func:`load_click_model`) and :class:`ClickSession`, which encodes an image once and then answers each set of
clicks with the light click decoder only (the GUI's Click tool, the NoC benchmark).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from segstudio.data.transforms import IMAGENET_MEAN, IMAGENET_STD, to_model_input
from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR, CheckpointError
from segstudio.engine.click.protocol import Click, guidance_maps
from segstudio.models.clicknet import ClickNet

#: Folder and name of the shipped click model.
CLICK_MODEL_DIR = DEFAULT_MODEL_DIR / "interactive"
CLICK_MODEL_NAME = "clicknet_mobilenetv2"


# ---------------------------------------------------------------------------------------------------------
# the model and its inference session
# ---------------------------------------------------------------------------------------------------------
def default_click_model_path() -> Path:
    """Weights of the shipped click model (``resources/models/interactive/clicknet_mobilenetv2.safetensors``)."""
    return CLICK_MODEL_DIR / f"{CLICK_MODEL_NAME}.safetensors"


def load_click_model(path: str | Path | None = None, map_location: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Load a click model (``.safetensors`` + ``.json`` card) in eval mode; default: the shipped one.

    Raises:
        CheckpointError: missing file or card, or weights that do not fit the card's architecture.
    """
    from safetensors.torch import load_file

    path = Path(path) if path is not None else default_click_model_path()
    card_path = path.with_suffix(".json")
    if not path.is_file() or not card_path.is_file():
        raise CheckpointError(f"{path}: click model weights or its card {card_path.name} missing")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    if card.get("architecture") != "clicknet":
        raise CheckpointError(f"{path}: not a click model (architecture {card.get('architecture')!r})")
    model = ClickNet(num_classes=1, **{**card.get("model_kwargs", {}), "pretrained": False})
    state = {k: v.float() for k, v in load_file(str(path), device=map_location).items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit clicknet {card.get('model_kwargs')}: {exc}") from None
    return model.eval(), card


class ClickSession:
    """Encode an image once, then answer each click set fast (the click-dependent decoder only).

    Args:
        model: a :class:`~segstudio.models.clicknet.ClickNet` (set to eval mode here).
        image: uint8 (H, W, 3) RGB.
        max_side: images whose longer side exceeds it are processed at that size (probabilities are
            resized back), in px.
        device: torch device string.

    Attributes:
        encoder_runs: how many times the image encoder ran (1 after construction).
        shape: (H, W) of ``image``.

    Raises:
        ValueError: not a uint8 RGB image.
    """

    def __init__(self, model: torch.nn.Module, image: np.ndarray, max_side: int = 1024, device: str = "cpu") -> None:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
        self.model = model.eval()
        self.device = device
        self.shape = image.shape[:2]
        h, w = self.shape
        self.scale = min(1.0, max_side / max(h, w))
        self.work_shape = (max(1, round(h * self.scale)), max(1, round(w * self.scale)))
        if self.scale < 1.0:
            image = cv2.resize(image, self.work_shape[::-1], interpolation=cv2.INTER_AREA)
        self.encoder_runs = 0
        x = to_model_input(image, IMAGENET_MEAN, IMAGENET_STD)[None].to(device)
        with torch.inference_mode():
            self.enc = model.encode_image(x)
        self.encoder_runs += 1

    def probabilities(self, clicks: list[Click], prev_mask: np.ndarray | None = None) -> np.ndarray:
        """Object probability float32 (H, W) in [0, 1] for ``clicks`` (image pixels) and an optional bool
        (H, W) previous mask.

        Raises:
            ValueError: no click, or ``prev_mask`` of the wrong shape.
        """
        if not clicks:
            raise ValueError("at least one click is needed")
        s = self.scale
        hw = self.work_shape
        cl = [Click(min(int(c.y * s), hw[0] - 1), min(int(c.x * s), hw[1] - 1), c.positive) for c in clicks]
        prev = None
        if prev_mask is not None:
            if prev_mask.shape != self.shape:
                raise ValueError(f"previous mask {prev_mask.shape} does not match the image {self.shape}")
            prev = prev_mask if s == 1.0 else cv2.resize(prev_mask.astype(np.uint8), hw[::-1], interpolation=cv2.INTER_NEAREST)
        g = torch.from_numpy(guidance_maps(cl, hw, prev))[None].to(self.device)
        with torch.inference_mode():
            prob = torch.sigmoid(self.model.decode_clicks(self.enc, g))[0, 0].float().cpu().numpy()
        if s < 1.0:
            prob = cv2.resize(prob, self.shape[::-1], interpolation=cv2.INTER_LINEAR)
        return prob

    def predict(self, clicks: list[Click], prev_mask: np.ndarray | None = None, threshold: float = 0.5) -> np.ndarray:
        """bool (H, W) object mask: :meth:`probabilities` > ``threshold``."""
        return self.probabilities(clicks, prev_mask) > threshold
