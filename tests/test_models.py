"""The model zoo: the contract every registered architecture keeps, plus each paper's invariant.

Contract (ARCHITECTURE.md): ``get_model(name, K, pretrained=False)`` → module whose ``forward`` maps
float32 (N, 3, H, W) of any size to ``{"out": (N, K, H, W)}`` (``"aux"`` too, in training mode, where the
paper has an auxiliary head), gradients reach the first layer, and every num_classes-dependent weight
sits under a ``classifier`` path segment so a checkpoint can be re-headed for a new class set.

Parameter counts and re-heading are checked on the ``meta`` device (shapes only, no memory, no init),
forward passes on small inputs, so the file runs in a couple of minutes on a 2-core CPU.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segstudio.engine.checkpoint import load_state_into
from segstudio.models import get_model, get_spec, list_models
from segstudio.models.common import bilinear_kernel, bilinear_upsampler
from segstudio.models.deeplabv1 import LargeFOV
from segstudio.models.deeplabv3plus import ASPP
from segstudio.models.encoders import ENCODERS, MobileNetV2Encoder, ResNetEncoder, get_encoder, load_torchvision_weights
from segstudio.models.gcn import BoundaryRefine, GlobalConv
from segstudio.models.ksac import KSAC
from segstudio.models.parsenet import L2Norm

ZOO = (
    "simple_cnn", "fcn32s", "fcn16s", "fcn8s", "unet", "segnet", "segnet_basic", "pspnet", "deeplabv1",
    "deeplabv2", "deeplabv3", "deeplabv3plus", "parsenet", "gcn", "ksac", "lraspp",
)  # fmt: skip
WITH_AUX = {"pspnet"}
MODELS = list_models()


@pytest.fixture(autouse=True, scope="module")
def _module_setup():
    """Small convs gain nothing from a second thread, and when the CPU is shared (e.g. a training run
    beside the tests) OpenMP's spinning threads slow these tests down by an order of magnitude."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
    _model.cache_clear()  # the three FCNs alone hold 1.6 GB


@functools.cache
def _model(name: str) -> nn.Module:
    """One randomly initialised 11-class model per architecture (default settings), shared by the tests."""
    torch.manual_seed(0)
    return get_model(name, 11, pretrained=False).eval()


def _meta(name: str, num_classes: int, **kw) -> nn.Module:
    with torch.device("meta"):
        return get_model(name, num_classes, pretrained=False, **kw)


def _nparams(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def test_registry_has_the_whole_zoo():
    assert set(ZOO) <= set(MODELS)
    for name in MODELS:
        spec = get_spec(name)
        assert spec.name == name and spec.paper
        if spec.default_encoder is not None:
            assert spec.default_encoder in spec.encoders


# --------------------------------------------------------------------------------------------
# the contract, for every registered model


@pytest.mark.parametrize("name", MODELS)
def test_output_shape_any_size_eval(name):
    model = _model(name)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 123, 157))
        assert set(out) == {"out"}, "no aux output in eval mode"
        assert out["out"].shape == (1, 11, 123, 157) and out["out"].dtype == torch.float32
        assert torch.isfinite(out["out"]).all()
        x2 = torch.randn(2, 3, 70, 45)
        y2 = model(x2)["out"]
        assert y2.shape == (2, 11, 70, 45)
        # eval mode: samples are independent of their batch mates
        assert torch.allclose(y2[1:], model(x2[1:])["out"], atol=1e-4, rtol=1e-4)
        assert model(torch.randn(1, 3, 5, 7))["out"].shape == (1, 11, 5, 7)  # smaller than any stride


# FCN's 4096-wide fc6 (103 M weights) makes a CPU backward pass take tens of seconds; a narrower fc6/fc7
# exercises the same gradient path.
LIGHT_TRAIN = {f"fcn{v}s": {"fc_channels": 256} for v in (32, 16, 8)}


@pytest.mark.parametrize("name", MODELS)
def test_train_mode_outputs_and_gradients_reach_first_conv(name):
    if name in LIGHT_TRAIN:
        torch.manual_seed(0)
        model = get_model(name, 11, pretrained=False, **LIGHT_TRAIN[name])
    else:
        model = _model(name)
    model.train()
    try:
        model.zero_grad(set_to_none=True)
        torch.manual_seed(1)
        x = torch.randn(2, 3, 64, 80)
        target = torch.randint(0, 11, (2, 64, 80))
        out = model(x)
        assert set(out) == ({"out", "aux"} if name in WITH_AUX else {"out"})
        for v in out.values():
            assert v.shape == (2, 11, 64, 80)
        loss = F.cross_entropy(out["out"], target)
        if "aux" in out:
            loss = loss + 0.4 * F.cross_entropy(out["aux"], target)
        loss.backward()
        first = _first_conv(model)
        assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0
        assert first.in_channels == 3, "the first conv found is the input layer"
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


@pytest.mark.parametrize("name", MODELS)
def test_batch_of_one_trains(name):
    """No BatchNorm sees a single value per channel (e.g. after global pooling), so batch size 1 trains
    (BatchNorm's size check runs on the meta device too)."""
    model = _meta(name, 4).train()
    out = model(torch.empty(1, 3, 64, 64, device="meta"))
    assert out["out"].shape == (1, 4, 64, 64)


@pytest.mark.parametrize("name", MODELS)
def test_new_head_only_touches_classifier_keys(name):
    """Going 11 → 3 classes with ``allow_new_head`` re-initialises exactly the ``classifier`` keys whose
    shape depends on K (and nothing outside a ``classifier`` path segment depends on K)."""
    src, dst = _meta(name, 11), _meta(name, 3)
    sd_src, sd_dst = src.state_dict(), dst.state_dict()
    assert sd_src.keys() == sd_dst.keys()
    differing = {k for k in sd_dst if sd_dst[k].shape != sd_src[k].shape}
    fresh = load_state_into(dst, sd_src, allow_new_head=True)
    assert fresh, "some layer must depend on the number of classes"
    assert set(fresh) == differing
    assert all("classifier" in k.split(".") for k in fresh), fresh


def test_new_head_loads_values_for_the_rest():
    dst = get_model("pspnet", 3, pretrained=False, encoder="resnet18")
    src18 = get_model("pspnet", 11, pretrained=False, encoder="resnet18")
    fresh = load_state_into(dst, src18.state_dict(), allow_new_head=True)
    assert set(fresh) == {"classifier.weight", "classifier.bias", "aux.classifier.weight", "aux.classifier.bias"}
    for k, v in dst.state_dict().items():
        if k not in fresh:
            assert torch.equal(v, src18.state_dict()[k]), k


@pytest.mark.parametrize("name", [n for n in MODELS if len(get_spec(n).encoders) > 1])
@pytest.mark.parametrize("encoder", ["mobilenet_v2", "resnet18", "resnet50"])
def test_models_accept_the_common_encoders(name, encoder):
    assert encoder in get_spec(name).encoders
    model = _meta(name, 5, encoder=encoder)
    assert type(model.encoder) is {"mobilenet_v2": MobileNetV2Encoder}.get(encoder, ResNetEncoder)
    y = model(torch.empty(1, 3, 77, 93, device="meta"))["out"]
    assert y.shape == (1, 5, 77, 93)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("fcn8s", {"output_stride": 8}),
        ("gcn", {"output_stride": 16}),
        ("segnet", {"encoder": "resnet50"}),
        ("segnet_basic", {"encoder": "vgg16_bn"}),
        ("segnet_basic", {"output_stride": 32}),
        ("simple_cnn", {"encoder": "resnet18"}),
        ("pspnet", {"encoder": "nope"}),
        ("pspnet", {"output_stride": 32}),
        ("deeplabv3", {"output_stride": 4}),
        ("gcn", {"kernel_size": 4}),
    ],
)
def test_invalid_builder_arguments_raise_value_error(name, kwargs):
    with pytest.raises(ValueError):
        _meta(name, 3, **kwargs)


# --------------------------------------------------------------------------------------------
# encoders


@pytest.mark.parametrize("name", ENCODERS)
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_encoder_pyramid_strides_and_channels(name, output_stride):
    with torch.device("meta"):
        enc = get_encoder(name, pretrained=False, output_stride=output_stride)
    assert enc.pretrained is False
    feats = enc(torch.empty(1, 3, 128, 192, device="meta"))
    assert tuple(f.shape[1] for f in feats) == tuple(enc.out_channels)
    strides = [min(2 ** (i + 1), output_stride) for i in range(5)]
    assert [tuple(f.shape[-2:]) for f in feats] == [(128 // s, 192 // s) for s in strides]


def test_encoder_pretrained_flag(monkeypatch):
    assert get_encoder("mobilenet_v2", pretrained=True).pretrained is True  # weights seeded by conftest

    def offline(weights=None):
        if weights is not None:
            raise OSError("no network")
        return nn.Conv2d(1, 1, 1)

    model, loaded = load_torchvision_weights(offline, "IMAGENET1K_V1", "fake")
    assert loaded is False and isinstance(model, nn.Conv2d)


def test_resnet18_dilation_follows_torchvision_rule():
    with torch.device("meta"):
        enc = get_encoder("resnet18", pretrained=False, output_stride=8)
    l3, l4 = enc.stages[3], enc.stages[4]
    assert l3[0].conv1.dilation == (1, 1) and l3[0].conv1.stride == (1, 1) and l3[1].conv2.dilation == (2, 2)
    assert l4[0].conv1.dilation == (2, 2) and l4[1].conv2.dilation == (4, 4)
    assert all(m.stride == (1, 1) for s in (l3, l4) for m in s.modules() if isinstance(m, nn.Conv2d))


# --------------------------------------------------------------------------------------------
# parameter counts against the papers / reference implementations (shapes only, meta device)


@pytest.mark.parametrize(
    ("name", "num_classes", "kwargs", "reference"),
    [
        ("fcn32s", 21, {}, 134.27e6),  # FCN paper Table 1: FCN-VGG16 134M
        ("fcn16s", 21, {}, 134.0e6),
        ("fcn8s", 21, {}, 134.0e6),
        ("segnet", 12, {}, 29.5e6),  # SegNet paper Table 6: 29.5M
        ("unet", 2, {"base_channels": 64, "depth": 4}, 31.0e6),  # common reference U-Net at base 64
        ("pspnet", 21, {"encoder": "resnet50"}, 49.0e6),  # semseg PSPNet-ResNet50 incl. aux, ~46–49M
        ("deeplabv1", 21, {"encoder": "vgg16"}, 20.5e6),  # DeepLab v1 Table 2: LargeFOV 20.5M
        ("deeplabv3", 21, {"encoder": "resnet50"}, 39.6e6),  # torchvision deeplabv3_resnet50 minus aux
    ],
)
def test_parameter_count_matches_reference(name, num_classes, kwargs, reference):
    n = _nparams(_meta(name, num_classes, **kwargs))
    assert abs(n - reference) <= 0.10 * reference, f"{name}: {n / 1e6:.2f}M vs {reference / 1e6:.2f}M"


def test_parameter_counts_of_small_heads_are_exact():
    k = 11
    # simple_cnn: 6 × (3×3 conv no bias + BN) + 1×1 classifier
    assert _nparams(_meta("simple_cnn", k)) == 3 * 64 * 9 + 5 * 64 * 64 * 9 + 6 * 2 * 64 + 64 * k + k
    # deeplabv2 on ResNet: four 3×3 convs 2048 → K (+bias), summed
    m = _meta("deeplabv2", k)
    assert _nparams(m) - _nparams(m.encoder) == 4 * (2048 * 9 * k + k)
    # parsenet = deeplabv1 + two L2Norm scales (1024 each) + K×1024 more classifier inputs
    assert _nparams(_meta("parsenet", k)) == _nparams(_meta("deeplabv1", k)) + 2 * 1024 + 1024 * k


@pytest.mark.parametrize("k", [11, 12, 2])
def test_segnet_basic_parameter_count_is_the_papers_configuration(k):
    """SegNet paper Sec. 4.1: 4 encoder + 4 decoder layers, each a 7×7 conv with 64 feature maps and no bias,
    followed by BatchNorm (a scale and a shift per map); a 1×1 classifier with bias to K classes. Computed here
    from that layer formula, layer by layer, not read back from the model."""
    kernel, width, stages = 7, 64, 4
    conv = lambda cin, cout: kernel * kernel * cin * cout  # noqa: E731  (no bias)
    bn = 2 * width
    encoder = conv(3, width) + bn + (stages - 1) * (conv(width, width) + bn)
    decoder = stages * (conv(width, width) + bn)
    classifier = width * k + k
    expected = encoder + decoder + classifier
    assert _nparams(_meta("segnet_basic", k)) == expected
    # a ReLU in the decoder adds no parameters
    assert _nparams(_meta("segnet_basic", k, decoder_relu=True)) == expected


# --------------------------------------------------------------------------------------------
# architectural invariants


def test_simple_cnn_keeps_resolution():
    model = _model("simple_cnn")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 7 and all(c.stride == (1, 1) and c.dilation == (1, 1) for c in convs)
    resamplers = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Upsample, nn.ConvTranspose2d)
    assert not [m for m in model.modules() if isinstance(m, resamplers)]
    sizes = []
    hooks = [c.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[-2:]))) for c in convs]
    with torch.no_grad():
        model(torch.randn(1, 3, 31, 17))
    for h in hooks:
        h.remove()
    assert set(sizes) == {(31, 17)}


@pytest.mark.parametrize("variant", [32, 16, 8])
def test_fcn_upsampling_is_learned_and_starts_bilinear(variant):
    model = _model(f"fcn{variant}s")
    ups = {n: m for n, m in model.named_modules() if isinstance(m, nn.ConvTranspose2d)}
    expected = {32: {"classifier.upscore"}, 16: {"classifier.upscore2", "classifier.upscore"}}.get(
        variant, {"classifier.upscore2", "classifier.upscore_pool4", "classifier.upscore"}
    )
    assert set(ups) == expected
    for m in ups.values():
        assert m.weight.requires_grad
        assert torch.equal(m.weight, bilinear_kernel(m.in_channels, m.kernel_size[0]))
    assert ups["classifier.upscore"].stride == (variant, variant)
    assert ups["classifier.upscore"].kernel_size == (2 * variant, 2 * variant)
    skips = {n for n in model.classifier if n.startswith("score_pool")}
    assert skips == {32: set(), 16: {"score_pool4"}, 8: {"score_pool4", "score_pool3"}}[variant]
    fc6, fc7 = model.fc[0], model.fc[3]
    assert fc6.kernel_size == (7, 7) and fc6.out_channels == 4096
    assert fc7.kernel_size == (1, 1) and fc7.out_channels == 4096


def test_bilinear_upsampler_interpolates():
    up = bilinear_upsampler(1, 4)
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    y = up(x).detach()
    assert y.shape == (1, 1, 12, 16)
    ref = F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    assert torch.allclose(y[..., 2:-2, 2:-2], ref[..., 2:-2, 2:-2], atol=1e-5)  # identical away from the border


def test_fcn_skips_fuse_pool4_and_pool3():
    """The skip scorers start at zero (paper Sec. 4.2) and feed the output: making one non-zero changes it."""
    model = _model("fcn8s")
    x = torch.randn(1, 3, 64, 64)
    for name in ("score_pool4", "score_pool3"):
        assert not model.classifier[name].weight.any() and not model.classifier[name].bias.any()
    with torch.no_grad():
        base = model(x)["out"]
        for name in ("score_pool4", "score_pool3"):
            model.classifier[name].bias.fill_(1.0)
            try:
                assert not torch.allclose(base, model(x)["out"]), name
            finally:
                model.classifier[name].bias.zero_()


@pytest.mark.parametrize(("depth", "base"), [(4, 32), (3, 8)])
def test_unet_contracting_and_expanding_paths(depth, base):
    """Fig. 1: double 3×3 conv per level, 2×2 max-pool between levels, channels doubling; expanding path of
    2×2 stride-2 up-convs halving the channels, concatenation with the same-level skip, double 3×3 conv."""
    from segstudio.models.unet import UNet

    torch.manual_seed(0)
    model = get_model("unet", 11, depth=depth, base_channels=base).eval()
    assert isinstance(model, UNet) and len(model.down) == depth + 1 and len(model.up) == len(model.up_conv) == depth
    chans = [base * 2**i for i in range(depth + 1)]
    for block, c in zip(model.down, chans):
        convs = [m for m in block if isinstance(m, nn.Conv2d)]
        assert [cv.kernel_size for cv in convs] == [(3, 3), (3, 3)] and convs[-1].out_channels == c
    for up, conv, c in zip(model.up, model.up_conv, reversed(chans[:-1])):
        assert up.kernel_size == (2, 2) and up.stride == (2, 2) and (up.in_channels, up.out_channels) == (2 * c, c)
        assert conv[0].in_channels == 2 * c  # up-conv output concatenated with the skip of the same width
    # the finest skip is concatenated as is, and each level runs at half the previous resolution
    seen, cat_inputs, sizes = {}, [], []
    hooks = [model.down[0].register_forward_hook(lambda m, i, o: seen.setdefault("skip", o))]
    hooks.append(model.up_conv[-1].register_forward_pre_hook(lambda m, a: cat_inputs.append(a[0])))
    hooks += [b.register_forward_pre_hook(lambda m, a: sizes.append(tuple(a[0].shape[-2:]))) for b in model.down]
    with torch.no_grad():
        model(torch.randn(1, 3, 48, 64))
    for h in hooks:
        h.remove()
    assert torch.equal(cat_inputs[0][:, :base], seen["skip"])
    assert sizes == [(48 // 2**i, 64 // 2**i) for i in range(depth + 1)]


@pytest.mark.parametrize("encoder", ["mobilenet_v2", "resnet18", "vgg16_bn"])
def test_unet_with_an_encoder_concatenates_each_stride_skip(encoder):
    from segstudio.models.unet import EncoderUNet

    torch.manual_seed(0)
    model = get_model("unet", 11, encoder=encoder, pretrained=False)
    assert isinstance(model, EncoderUNet) and model.encoder.pretrained is False
    enc = model.encoder.out_channels
    widths = (256, 128, 64, 32, 16)
    for up, conv, width, skip in zip(model.up, model.up_conv, widths, (enc[3], enc[2], enc[1], enc[0], 0)):
        assert up.kernel_size == (2, 2) and up.stride == (2, 2) and up.out_channels == width
        assert conv[0].in_channels == width + skip
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 123, 157))["out"].shape == (1, 11, 123, 157)
        assert model(torch.randn(2, 3, 5, 7))["out"].shape == (2, 11, 5, 7)
    model.train()
    x = torch.randn(2, 3, 64, 80)
    loss = F.cross_entropy(model(x)["out"], torch.randint(0, 11, (2, 64, 80)))
    loss.backward()
    g = _first_conv(model.encoder).weight.grad
    assert g is not None and g.abs().sum() > 0
    assert all("classifier" in n for n, p in model.named_parameters() if p.shape[0] == 11)


def test_unet_encoder_is_optional_and_validated():
    with pytest.raises(ValueError, match="drop depth/base_channels"):
        get_model("unet", 3, encoder="mobilenet_v2", base_channels=16, pretrained=False)
    with pytest.raises(ValueError, match="unknown encoder"):
        get_model("unet", 3, encoder="resnet9000", pretrained=False)
    with pytest.raises(ValueError, match="goes with an encoder"):
        get_model("unet", 3, decoder_channels=(8, 8, 8, 8, 8), pretrained=False)
    with pytest.raises(ValueError, match="five positive widths"):
        get_model("unet", 3, encoder="mobilenet_v2", decoder_channels=(8, 8), pretrained=False)
    assert get_spec("unet").default_encoder is None and "mobilenet_v2" in get_spec("unet").encoders


def test_unet_with_imagenet_mobilenet_v2_loads_the_weights():
    model = get_model("unet", 11, encoder="mobilenet_v2", pretrained=True)
    assert model.encoder.pretrained is True  # conftest seeds $TORCH_HOME from ../shared/weights
    ref = get_encoder("mobilenet_v2", pretrained=True)
    assert torch.equal(_first_conv(model.encoder).weight, _first_conv(ref).weight)


def test_segnet_unpools_with_the_matching_pool_indices():
    model = _model("segnet")
    pools, unpools = model.encoder.pools, model.unpools
    assert all(p.return_indices for p in pools) and len(pools) == len(unpools) == 5
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in model.modules())
    produced, consumed = {}, {}
    hooks = [p.register_forward_hook(lambda m, i, o, j=j: produced.__setitem__(j, o[1])) for j, p in enumerate(pools)]
    hooks += [
        u.register_forward_pre_hook(lambda m, a, j=j: consumed.__setitem__(j, a[1])) for j, u in enumerate(unpools)
    ]
    with torch.no_grad():
        model(torch.randn(1, 3, 70, 99))
    for h in hooks:
        h.remove()
    assert set(produced) == set(consumed) == set(range(5))
    for j in range(5):
        assert consumed[j] is produced[j], f"unpool {j} must use pool {j}'s indices"
        assert consumed[j].dtype == torch.int64
    # decoder inputs are concatenation-free: each decoder block takes exactly the unpooled channels
    for level, block in zip(reversed(range(5)), model.decoder):
        assert block[0][0].in_channels == model.encoder.out_channels[level]


def test_segnet_basic_layers_follow_the_paper():
    """Sec. 4.1: 7×7 convs with 64 maps, no biases, BN after each; ReLU in the encoder only; 2×2 stride-2
    (non-overlapping) max-pools storing indices; a 1×1 classifier."""
    model = _meta("segnet_basic", 11)
    convs = [m for m in [*model.encoder.modules(), *model.decoder.modules()] if isinstance(m, nn.Conv2d)]
    assert len(convs) == 8
    assert all(c.kernel_size == (7, 7) and c.padding == (3, 3) and c.out_channels == 64 and c.bias is None for c in convs)
    assert all(isinstance(block[1], nn.BatchNorm2d) for block in [*model.encoder.blocks, *model.decoder])
    assert sum(isinstance(m, nn.ReLU) for m in model.encoder.modules()) == 4
    assert not any(isinstance(m, nn.ReLU) for m in model.decoder.modules()), "the paper's decoder has no ReLU"
    assert sum(isinstance(m, nn.ReLU) for m in _meta("segnet_basic", 11, decoder_relu=True).decoder.modules()) == 4
    for pool in model.encoder.pools:
        assert pool.kernel_size == 2 and pool.stride == 2 and pool.return_indices
    assert model.classifier.kernel_size == (1, 1) and model.classifier.bias is not None
    assert get_spec("segnet_basic").default_encoder is None and get_spec("segnet_basic").input_multiple == 16


def test_segnet_basic_unpools_with_the_matching_pool_indices():
    """Decoder stage i (deepest first) unpools with the indices of encoder stage 4-i (1-based: decoder 4
    with pool 4, ..., decoder 1 with pool 1), at an odd input size."""
    model = _model("segnet_basic")
    pools, unpools = model.encoder.pools, model.unpools
    assert len(pools) == len(unpools) == len(model.decoder) == 4
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in model.modules())
    produced, consumed, order = {}, {}, []

    def record(j):
        def hook(module, args):  # returns None: the arguments pass unchanged
            consumed[j] = args[1]
            order.append(j)

        return hook

    hooks = [p.register_forward_hook(lambda m, i, o, j=j: produced.__setitem__(j, o[1])) for j, p in enumerate(pools)]
    hooks += [u.register_forward_pre_hook(record(j)) for j, u in enumerate(unpools)]
    with torch.no_grad():
        y = model(torch.randn(1, 3, 45, 61))["out"]
    for h in hooks:
        h.remove()
    assert y.shape == (1, 11, 45, 61)
    assert order == [3, 2, 1, 0], "the decoder runs deepest level first"
    for j in range(4):
        assert consumed[j] is produced[j], f"unpool {j} must use pool {j}'s indices"
        assert consumed[j].dtype == torch.int64
    # 45×61 is padded to 48×64: pool j's indices are at (48, 64) / 2^(j+1)
    assert [tuple(produced[j].shape[-2:]) for j in range(4)] == [(24, 32), (12, 16), (6, 8), (3, 4)]


def test_segnet_basic_spikes_return_to_their_pixels():
    """With identity layers (centre tap 1 on channel 0, BN at mean 0 / var 1) the net is max-pool ×4 then
    unpool ×4: each positive spike (one per 16×16 cell) comes back at exactly its input pixel, wherever it
    sits in its 2×2 windows; bilinear or nearest up-sampling would smear or shift it."""
    torch.manual_seed(0)
    model = get_model("segnet_basic", 3, pretrained=False).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.zero_()
                c = m.kernel_size[0] // 2
                m.weight[0, 0, c, c] = 1.0
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()  # running mean 0, var 1, weight 1, bias 0
    spikes = [(3, 5), (18, 29), (9, 46), (33, 13), (40, 55), (30, 2)]  # odd/even rows and cols, one per cell
    x = torch.zeros(1, 3, 45, 61)
    for value, (r, c) in enumerate(spikes, start=1):
        x[0, 0, r, c] = float(value)
    with torch.no_grad():
        y = model(x)["out"][0, 0]
    scale = (1 + 1e-5) ** -4  # eight BN layers, each x / sqrt(var + eps)
    expected = torch.zeros(45, 61)
    for value, (r, c) in enumerate(spikes, start=1):
        expected[r, c] = value * scale
    assert torch.allclose(y, expected, atol=1e-5), [tuple(p) for p in (y > 0.5).nonzero().tolist()]


def test_pspnet_pyramid_bins_and_aux_on_stage3():
    model = _model("pspnet")
    pools = [m for m in model.ppm.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    assert [p.output_size for p in pools] == [1, 2, 3, 6]
    reductions = [s[1].out_channels if isinstance(s[1], nn.Conv2d) else s[1][0].out_channels for s in model.ppm.stages]
    assert reductions == [2048 // 4] * 4 and model.ppm.out_channels == 4096
    assert model.encoder.output_stride == 8
    assert model.aux.body[0][0].in_channels == model.encoder.out_channels[3] == 1024
    # the aux head really sits on stage 3: hook its input
    seen = []
    h = model.aux.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape))
    model.train()
    try:
        with torch.no_grad():
            model(torch.randn(2, 3, 64, 64))
    finally:
        model.eval()
        h.remove()
    assert seen == [torch.Size([2, 1024, 8, 8])]


def _dilations(module: nn.Module) -> list[int]:
    return [m.dilation[0] for m in module.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]


def test_deeplabv1_large_fov_head():
    model = _model("deeplabv1")
    fc6, fc7 = model.fc[0], model.fc[3]
    assert fc6.kernel_size == (3, 3) and fc6.dilation == (12, 12) and fc6.out_channels == 1024
    assert fc7.kernel_size == (1, 1) and fc7.out_channels == 1024
    assert model.encoder.output_stride == 8
    pools = [m for m in model.encoder.modules() if isinstance(m, nn.MaxPool2d)]
    assert [p.stride for p in pools] == [2, 2, 2, 1, 1]  # pool4/pool5 made stride 1
    assert _dilations(model.encoder.stages[4]) == [2, 2, 2]  # conv5 dilated


def test_deeplabv1_decimates_imagenet_fc():
    head = LargeFOV(512, 256, 12)  # as 1024 of 4096: every 4th filter
    w6, b6, w7, b7 = torch.randn(1024, 512, 7, 7), torch.randn(1024), torch.randn(1024, 1024, 1, 1), torch.randn(1024)
    head.init_from_vgg_fc(w6, b6, w7, b7)
    assert torch.equal(head[0].weight, w6[::4, :, ::3, ::3]) and torch.equal(head[0].bias, b6[::4])
    assert torch.equal(head[3].weight, w7[::4, ::4]) and torch.equal(head[3].bias, b7[::4])


def test_deeplabv2_aspp_rates_and_summed_scores():
    model = _model("deeplabv2")
    assert _dilations(model.classifier) == [6, 12, 18, 24]
    assert all(c.out_channels == 11 for c in model.classifier)
    outs = []
    hooks = [c.register_forward_hook(lambda m, i, o: outs.append(o)) for c in model.classifier]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        y = model(x)["out"]
    for h in hooks:
        h.remove()
    summed = F.interpolate(sum(outs), size=(64, 64), mode="bilinear", align_corners=False)
    assert torch.allclose(y, summed, atol=1e-5)
    vgg = _meta("deeplabv2", 11, encoder="vgg16")  # ASPP-L on VGG: fc6 rates 6..24 then fc7, fc8 per branch
    assert _dilations(vgg.aspp) == [6, 12, 18, 24] and len(vgg.classifier) == 4


@pytest.mark.parametrize(("output_stride", "rates"), [(16, [6, 12, 18]), (8, [12, 24, 36])])
def test_deeplabv3_aspp_rates_pooling_and_bn(output_stride, rates):
    model = _meta("deeplabv3", 11, output_stride=output_stride)
    aspp = model.aspp
    assert isinstance(aspp, ASPP) and _dilations(aspp) == rates
    assert model.encoder.output_stride == output_stride
    assert any(isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size == 1 for m in aspp.modules())
    assert all(isinstance(b[1], nn.BatchNorm2d) for b in aspp.branches)  # dense branches, each with BN
    assert len(aspp.branches) == 4 and aspp.project[0].in_channels == 5 * 256


def test_parsenet_l2norm_output_norm_is_the_scale():
    norm = L2Norm(8, scale=3.0)
    x = torch.randn(2, 8, 5, 6) * 50
    y = norm(x)
    assert torch.allclose(y.norm(dim=1), torch.full((2, 5, 6), 3.0), atol=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(1.0, 9.0))
    y = norm(x)
    assert torch.allclose((y / norm.weight.view(1, -1, 1, 1)).norm(dim=1), torch.ones(2, 5, 6), atol=1e-5)
    assert norm.weight.requires_grad


def test_parsenet_fuses_unpooled_global_context():
    model = _model("parsenet")
    captured = {}
    h1 = model.classifier.register_forward_pre_hook(lambda m, a: captured.__setitem__("in", a[0]))
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 80))
    h1.remove()
    feats = captured["in"]
    local, context = feats[:, :1024], feats[:, 1024:]
    assert torch.allclose(context, context[..., :1, :1].expand_as(context))  # unpooled: spatially constant
    assert torch.allclose(context[..., 0, 0].norm(dim=1), torch.tensor(10.0), atol=1e-4)
    norms = local.norm(dim=1)
    assert torch.allclose(norms[norms > 0], torch.tensor(10.0), atol=1e-4)


def test_gcn_large_kernels_and_boundary_refinement():
    model = _model("gcn")
    blocks = [m for m in model.modules() if isinstance(m, GlobalConv)]
    assert len(blocks) == 4
    for b in blocks:
        assert [c.kernel_size for c in b.left] == [(15, 1), (1, 15)]
        assert [c.kernel_size for c in b.right] == [(1, 15), (15, 1)]
        assert not any(isinstance(m, (nn.BatchNorm2d, nn.ReLU)) for m in b.modules())
    assert len([m for m in model.modules() if isinstance(m, BoundaryRefine)]) == 9
    small = _meta("gcn", 4, kernel_size=7)
    small_blocks = [b for b in small.modules() if isinstance(b, GlobalConv)]
    assert {c.kernel_size for b in small_blocks for c in b.modules() if isinstance(c, nn.Conv2d)} == {(7, 1), (1, 7)}
    br = BoundaryRefine(3)
    nn.init.zeros_(br.residual[2].weight)
    nn.init.zeros_(br.residual[2].bias)
    x = torch.randn(1, 3, 9, 9)
    assert torch.equal(br(x), x)  # residual form


def test_ksac_shares_one_kernel_across_rates(monkeypatch):
    model = _model("ksac")
    ksac = model.aspp
    assert isinstance(ksac, KSAC) and ksac.rates == (6, 12, 18)
    three = [p for p in ksac.parameters() if p.dim() == 4 and p.shape[-2:] == (3, 3)]
    assert len(three) == 1 and three[0] is ksac.weight
    calls = []
    real = F.conv2d

    def spy(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        calls.append((weight, dilation))
        return real(input, weight, bias, stride, padding, dilation, groups)

    monkeypatch.setattr(F, "conv2d", spy)
    with torch.no_grad():
        ksac(torch.randn(1, ksac.weight.shape[1], 9, 11))
    atrous = [(w, d) for w, d in calls if w.shape[-2:] == (3, 3)]
    assert [d for _, d in atrous] == [6, 12, 18]
    assert all(w is ksac.weight for w, _ in atrous)
    assert len({w.data_ptr() for w, _ in atrous}) == 1


def test_ksac_has_fewer_parameters_than_aspp_and_doubles_rates_at_os8():
    cin, cout = 320, 256
    ksac, aspp = KSAC(cin, cout), ASPP(cin, cout, separable=False)
    assert _nparams(ksac) < _nparams(aspp)
    assert _nparams(aspp) - _nparams(ksac) == 2 * cout * cin * 9  # two of the three 3×3 kernels saved
    assert _meta("ksac", 11, output_stride=8).aspp.rates == (12, 24, 36)


def test_lraspp_gate_and_two_classifiers():
    model = _model("lraspp")
    assert set(model.classifier) == {"low", "high"}
    assert model.classifier["low"].in_channels == model.encoder.out_channels[2]
    gate = model.head.scale
    assert isinstance(gate[0], nn.AdaptiveAvgPool2d) and isinstance(gate[-1], nn.Sigmoid)
    x = torch.randn(1, 320, 5, 7)
    with torch.no_grad():
        g = gate(x)
    assert g.shape == (1, 128, 1, 1) and (g > 0).all() and (g < 1).all()
