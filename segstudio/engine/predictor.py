"""``Predictor``: image(s) in, probabilities / label maps out, on the best device."""

from __future__ import annotations

import numpy as np
import torch

from segstudio.data.transforms import to_model_input
from segstudio.engine.checkpoint import LoadedModel
from segstudio.engine.devices import resolve_device


class Predictor:
    """Run a loaded model on RGB images.

    Uses ``torch.inference_mode``; on CUDA also channels_last and float16 autocast (AMP).

    Args:
        loaded: model + card from :func:`segstudio.engine.load_checkpoint`.
        device: ``auto``, ``cpu``, ``cuda``...

    Raises:
        ValueError: unavailable device.
    """

    def __init__(self, loaded: LoadedModel, device: str = "auto") -> None:
        self.loaded = loaded
        self.device = resolve_device(device)
        self.model = loaded.model.to(self.device).eval()
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.classes = loaded.classes

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self.device, non_blocking=True)
        if self.device.type == "cuda":
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
            logits = self.model(batch)["out"]
        return logits.float()

    def predict_logits(self, images: list[np.ndarray]) -> torch.Tensor:
        """Logits float32 (N, K, H, W) on CPU for N uint8 (H, W, 3) RGB images of equal size.

        Raises:
            ValueError: images of different sizes or not uint8 RGB.
        """
        if len({im.shape for im in images}) != 1:
            raise ValueError("predict_logits needs images of one size; call predict() per image instead")
        x = torch.stack([to_model_input(im, self.loaded.mean, self.loaded.std) for im in images])
        return self._forward(x).cpu()

    def predict_proba(self, image: np.ndarray) -> np.ndarray:
        """Softmax probabilities float32 (K, H, W) of one uint8 (H, W, 3) RGB image."""
        return torch.softmax(self.predict_logits([image]), dim=1)[0].numpy()

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Label map uint8 (H, W) (argmax over classes) of one uint8 (H, W, 3) RGB image."""
        return self.predict_logits([image])[0].argmax(0).to(torch.uint8).numpy()
