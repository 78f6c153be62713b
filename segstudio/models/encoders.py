"""Backbones that return a pyramid of feature maps, built from torchvision with its weights API.

An encoder's ``forward(x)`` returns a list of five feature maps at strides 2, 4, 8, 16, 32 (deeper
stages are dilated instead of strided when an output stride of 8 or 16 is asked for, so their strides
are capped at ``output_stride``), ``out_channels`` lists their channel counts and ``pretrained`` says
whether ImageNet weights were actually loaded (``False`` when they were not on disk: random init).

Encoders:
- ``mobilenet_v2`` — Sandler et al., CVPR 2018.
- ``resnet18``, ``resnet50``, ``resnet101`` — He et al., "Deep Residual Learning for Image Recognition",
  CVPR 2016; atrous (dilated) stages as in DeepLab (torchvision's ``replace_stride_with_dilation``).
- ``vgg16``, ``vgg16_bn`` — Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
  Recognition", ICLR 2015; the 13 conv layers with their 5 max-pools (fc layers are the models' business).
  Dilated like DeepLab v1: a pool beyond the output stride becomes a 3×3 stride-1 pool and later convs
  are dilated.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch
import torchvision
from torch import nn

log = logging.getLogger(__name__)

ENCODERS = ("mobilenet_v2", "resnet18", "resnet50", "resnet101", "vgg16", "vgg16_bn")


def _check_output_stride(output_stride: int) -> None:
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")


def _dilate(module: nn.Module, dilation: int) -> None:
    """Turn the strided 3×3 convs of ``module`` into stride-1 convs with the given dilation (atrous)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
            m.stride = (1, 1)
            m.dilation = (dilation, dilation)
            m.padding = (dilation, dilation)


def load_torchvision_weights(builder, weights: str | None, name: str):
    """Build a torchvision model with ``weights`` (e.g. ``"IMAGENET1K_V1"``), offline-tolerant.

    torchvision looks in ``$TORCH_HOME/hub/checkpoints`` first and downloads otherwise. When the
    weights are neither on disk nor downloadable, the model is built with random initialisation and a
    warning is logged.

    Returns:
        ``(model, pretrained_loaded: bool)``.
    """
    if weights is None:
        return builder(weights=None), False
    try:
        return builder(weights=weights), True
    except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError
        log.warning("%s: ImageNet weights %s not available offline (%s); using random initialisation", name, weights, exc)
        return builder(weights=None), False


class _PyramidEncoder(nn.Module):
    """Runs ``self.stages`` in turn and returns every stage's output."""

    stages: nn.ModuleList

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class MobileNetV2Encoder(_PyramidEncoder):
    """MobileNetV2 feature pyramid (Sandler et al., "MobileNetV2: Inverted Residuals and Linear
    Bottlenecks", CVPR 2018), torchvision's ``features`` without the final 1×1 conv to 1280 channels.

    Args:
        pretrained: load ImageNet weights (``MobileNet_V2_Weights.IMAGENET1K_V1``) when available.
        output_stride: 8, 16 or 32; stages beyond it use dilated convolutions.

    Shapes:
        input float32 (N, 3, H, W) → features with channels (16, 24, 32, 96, 320) at strides
        (2, 4, 8, 16, 32) — capped at ``output_stride``.
    """

    out_channels = (16, 24, 32, 96, 320)

    def __init__(self, pretrained: bool = True, output_stride: int = 16) -> None:
        super().__init__()
        _check_output_stride(output_stride)
        net, self.pretrained = load_torchvision_weights(
            torchvision.models.mobilenet_v2, "IMAGENET1K_V1" if pretrained else None, "mobilenet_v2"
        )
        f = net.features
        self.stages = nn.ModuleList([f[0:2], f[2:4], f[4:7], f[7:14], f[14:18]])
        self.output_stride = output_stride
        if output_stride <= 16:
            _dilate(self.stages[4], 2 if output_stride == 16 else 4)
        if output_stride == 8:
            _dilate(self.stages[3], 2)


def _dilate_basic_layer(layer: nn.Sequential, dilation: int, previous: int) -> None:
    """Make a ResNet BasicBlock stage atrous, following torchvision's Bottleneck convention.

    The first block keeps the previous dilation in its (formerly strided) first conv, everything
    after it uses ``dilation``; the shortcut's 1×1 conv loses its stride.
    """
    for i, block in enumerate(layer):
        first = previous if i == 0 else dilation
        block.conv1.stride, block.conv1.dilation, block.conv1.padding = (1, 1), (first, first), (first, first)
        block.conv2.dilation, block.conv2.padding = (dilation, dilation), (dilation, dilation)
        if block.downsample is not None:
            block.downsample[0].stride = (1, 1)


class ResNetEncoder(_PyramidEncoder):
    """ResNet feature pyramid (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016).

    Stages: stem (conv1+BN+ReLU, stride 2), max-pool + ``layer1`` (stride 4), ``layer2`` (8),
    ``layer3`` (16), ``layer4`` (32). For output stride 8/16 the last stages are dilated instead of
    strided (DeepLab's atrous ResNet): torchvision's ``replace_stride_with_dilation`` for the Bottleneck
    nets, the same rule applied by hand to ResNet-18's BasicBlocks (which torchvision does not dilate).

    Args:
        depth: 18, 50 or 101.
        pretrained: load ImageNet weights (``IMAGENET1K_V1``) when on disk; random init otherwise.
        output_stride: 8, 16 or 32.

    Shapes:
        input float32 (N, 3, H, W) → features with channels (64, 64, 128, 256, 512) for ResNet-18 or
        (64, 256, 512, 1024, 2048) for ResNet-50/101, at strides (2, 4, 8, 16, 32) capped at
        ``output_stride``.
    """

    def __init__(self, depth: int = 50, pretrained: bool = True, output_stride: int = 16) -> None:
        super().__init__()
        _check_output_stride(output_stride)
        name = f"resnet{depth}"
        if depth not in (18, 50, 101):
            raise ValueError(f"ResNet depth must be 18, 50 or 101, got {depth}")
        replace = [False, output_stride <= 8, output_stride <= 16]
        builder = getattr(torchvision.models, name)
        if depth != 18:
            builder = functools.partial(builder, replace_stride_with_dilation=replace)
        net, self.pretrained = load_torchvision_weights(builder, "IMAGENET1K_V1" if pretrained else None, name)
        if depth == 18:
            if output_stride <= 8:
                _dilate_basic_layer(net.layer3, 2, 1)
            if output_stride <= 16:
                _dilate_basic_layer(net.layer4, 2 if output_stride == 16 else 4, 1 if output_stride == 16 else 2)
        self.out_channels = (64, 64, 128, 256, 512) if depth == 18 else (64, 256, 512, 1024, 2048)
        self.output_stride = output_stride
        self.stages = nn.ModuleList(
            [
                nn.Sequential(net.conv1, net.bn1, net.relu),
                nn.Sequential(net.maxpool, net.layer1),
                net.layer2,
                net.layer3,
                net.layer4,
            ]
        )


def vgg16_features(batch_norm: bool = False, pretrained: bool = True) -> tuple[nn.Sequential, bool]:
    """torchvision's VGG-16 ``features`` (13 convs + 5 max-pools), offline-tolerant.

    Without ImageNet weights only the conv stack is built (initialised as torchvision's VGG does),
    skipping the 124 M-parameter classifier a full ``vgg16()`` would allocate and initialise.

    Returns:
        ``(features, pretrained_loaded)``.
    """
    name = "vgg16_bn" if batch_norm else "vgg16"

    def builder(weights=None) -> nn.Sequential:
        if weights is not None:
            return getattr(torchvision.models, name)(weights=weights).features
        features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"], batch_norm=batch_norm)
        for m in features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        return features

    return load_torchvision_weights(builder, "IMAGENET1K_V1" if pretrained else None, name)


class VGGEncoder(_PyramidEncoder):
    """VGG-16 feature pyramid (Simonyan & Zisserman, ICLR 2015): the 13 3×3 convs (with BN for
    ``vgg16_bn``), each of the 5 blocks ending in its 2×2 max-pool.

    For output stride 8/16 a pool beyond the output stride becomes a 3×3 stride-1 pool (padding 1)
    and the convs after it are dilated, as DeepLab v1 does to VGG-16 (Chen et al., ICLR 2015, Sec. 3.1).
    The 2×2 pools round up (``ceil_mode``, as in the Caffe models), so a stride-s map is ⌈H/s⌉ × ⌈W/s⌉.

    Args:
        batch_norm: build ``vgg16_bn`` instead of ``vgg16``.
        pretrained: load ImageNet weights (``IMAGENET1K_V1``) when on disk; random init otherwise.
        output_stride: 8, 16 or 32.

    Shapes:
        input float32 (N, 3, H, W) → pool1..pool5 with channels (64, 128, 256, 512, 512) at strides
        (2, 4, 8, 16, 32) capped at ``output_stride`` (sizes rounded up).
    """

    out_channels = (64, 128, 256, 512, 512)

    def __init__(self, batch_norm: bool = False, pretrained: bool = True, output_stride: int = 32) -> None:
        super().__init__()
        _check_output_stride(output_stride)
        features, self.pretrained = vgg16_features(batch_norm, pretrained)
        stages, start = [], 0
        for i, layer in enumerate(features):
            if isinstance(layer, nn.MaxPool2d):
                stages.append(features[start : i + 1])
                start = i + 1
        for i, stage in enumerate(stages):  # stage i runs at stride 2**i and pools to 2**(i+1)
            if 2**i > output_stride:
                _dilate(stage, 2**i // output_stride)
            if 2 ** (i + 1) > output_stride:
                stage[-1] = nn.MaxPool2d(3, stride=1, padding=1)
            else:
                stage[-1].ceil_mode = True  # as Caffe's VGG: odd sizes round up, tiny inputs keep a pixel
        self.stages = nn.ModuleList(stages)
        self.output_stride = output_stride


def vgg_imagenet_fc(name: str = "vgg16") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """torchvision's ImageNet fc6/fc7 of VGG-16 reshaped as convolutions ("convolutionalised", FCN Sec. 3.1).

    Only meaningful when the weights are on disk (call it when the encoder's ``pretrained`` is True).

    Returns:
        ``(w6 (4096, 512, 7, 7), b6 (4096,), w7 (4096, 4096, 1, 1), b7 (4096,))``.
    """
    weights = torchvision.models.get_model_weights(name).IMAGENET1K_V1
    sd = weights.get_state_dict(progress=False)
    return (
        sd["classifier.0.weight"].reshape(4096, 512, 7, 7),
        sd["classifier.0.bias"],
        sd["classifier.3.weight"].reshape(4096, 4096, 1, 1),
        sd["classifier.3.bias"],
    )


def get_encoder(name: str, pretrained: bool = True, output_stride: int = 16) -> nn.Module:
    """Build encoder ``name`` (one of :data:`ENCODERS`).

    Raises:
        ValueError: for an unknown encoder (message lists the known ones) or output stride.
    """
    if name == "mobilenet_v2":
        return MobileNetV2Encoder(pretrained=pretrained, output_stride=output_stride)
    if name in ("resnet18", "resnet50", "resnet101"):
        return ResNetEncoder(int(name[6:]), pretrained=pretrained, output_stride=output_stride)
    if name in ("vgg16", "vgg16_bn"):
        return VGGEncoder(batch_norm=name == "vgg16_bn", pretrained=pretrained, output_stride=output_stride)
    raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")


def imagenet_weights_on_disk(encoder: str) -> bool:
    """True when torchvision's ImageNet weights of ``encoder`` are in ``$TORCH_HOME/hub/checkpoints``.

    That is where the encoders look first (:func:`segstudio.models.encoders.load_torchvision_weights`); without
    the file and offline they fall back to random initialisation.
    """
    try:
        weights = torchvision.models.get_model_weights(encoder).IMAGENET1K_V1
    except (ValueError, AttributeError, KeyError):
        return False
    return (Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name).is_file()
