"""Segmentation architectures behind one registry.

``get_model(name, num_classes, **kw)`` returns an ``nn.Module`` whose ``forward(x)`` takes float32
(N, 3, H, W) normalised images and returns ``{"out": logits (N, K, H, W)}`` (plus ``"aux"`` where the
paper uses an auxiliary head), as torchvision's segmentation models do. Models never import Qt.
"""

from segstudio.models.registry import ModelSpec, get_model, get_spec, list_models, register_model

# Importing the architecture packages registers them.
from segstudio.models import deeplabv3plus as _deeplabv3plus  # noqa: F401
from segstudio.models import unet as _unet  # noqa: F401

__all__ = ["ModelSpec", "get_model", "get_spec", "list_models", "register_model"]
