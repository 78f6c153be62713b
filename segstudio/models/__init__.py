"""Segmentation architectures behind one registry.

``get_model(name, num_classes, **kw)`` returns an ``nn.Module`` whose ``forward(x)`` takes float32
(N, 3, H, W) normalised images and returns ``{"out": logits (N, K, H, W)}`` (plus ``"aux"`` where the
paper uses an auxiliary head), as torchvision's segmentation models do. Models never import Qt.
"""

from segstudio.models.registry import ModelSpec, get_model, get_spec, list_models, register_model

# Importing the architecture packages registers them.
from segstudio.models import deeplabv1 as _deeplabv1  # noqa: F401
from segstudio.models import deeplabv2 as _deeplabv2  # noqa: F401
from segstudio.models import deeplabv3 as _deeplabv3  # noqa: F401
from segstudio.models import deeplabv3plus as _deeplabv3plus  # noqa: F401
from segstudio.models import fcn as _fcn  # noqa: F401  (fcn32s, fcn16s, fcn8s)
from segstudio.models import gcn as _gcn  # noqa: F401
from segstudio.models import ksac as _ksac  # noqa: F401
from segstudio.models import lraspp as _lraspp  # noqa: F401
from segstudio.models import parsenet as _parsenet  # noqa: F401
from segstudio.models import pspnet as _pspnet  # noqa: F401
from segstudio.models import segnet as _segnet  # noqa: F401
from segstudio.models import simple_cnn as _simple_cnn  # noqa: F401
from segstudio.models import unet as _unet  # noqa: F401

__all__ = ["ModelSpec", "get_model", "get_spec", "list_models", "register_model"]
