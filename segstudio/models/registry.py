"""The model registry: architecture names → builders plus a :class:`ModelSpec` of static facts.

Adding an architecture is one file, ``models/<name>/__init__.py``: a subclass of
:class:`segstudio.models.base.EncoderDecoder` (build ``encoder`` and the head in ``__init__``, implement
``decode``), decorated with ``@register_model("<name>", paper=..., encoders=...)``; plus its import line in
``models/__init__.py``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """Static description of an architecture (data, not code).

    Attributes:
        name: registry key, e.g. ``"deeplabv3plus"``.
        paper: citation of the paper the module implements.
        default_encoder: encoder used when none is given (``None`` for self-contained nets).
        encoders: encoders the builder accepts.
        output_stride: ratio of input to deepest feature resolution at default settings.
        input_multiple: H and W are padded inside the model to a multiple of this.
        default_loss: loss the paper trains with.
        defaults: extra default keyword arguments passed to the builder (empty for specs read from a class
            by :func:`register_model`: the class's ``__init__`` signature holds its defaults, written once).
    """

    name: str
    paper: str
    default_encoder: str | None = None
    encoders: tuple[str, ...] = ()
    output_stride: int = 1
    input_multiple: int = 1
    default_loss: str = "ce"
    defaults: dict = field(default_factory=dict)


_REGISTRY: dict[str, tuple[ModelSpec, Callable[..., nn.Module]]] = {}


def _signature_default(obj: Callable, param: str):
    """Default of ``param`` in ``obj``'s signature; for a class whose ``__init__`` passes ``**kwargs`` on, the
    first base class that names it (KSACNet → DeepLabV3Plus)."""
    for fn in [c.__init__ for c in obj.__mro__ if "__init__" in vars(c)] if inspect.isclass(obj) else [obj]:
        params = inspect.signature(fn).parameters
        p = params.get(param)
        if p is not None:
            return None if p.default is inspect.Parameter.empty else p.default
        if not any(q.kind is inspect.Parameter.VAR_KEYWORD for q in params.values()):
            return None
    return None


def register_model(
    spec: ModelSpec | str,
    *,
    paper: str = "",
    encoders: tuple[str, ...] = (),
    output_stride: int | None = None,
    input_multiple: int | None = None,
    default_loss: str = "ce",
    fixed: dict | None = None,
) -> Callable:
    """Decorator registering a model class (or a ``builder(num_classes, **kw) -> nn.Module``).

    Either ``@register_model(ModelSpec(...))``, or ``@register_model("name", paper=..., encoders=...)`` on the
    model class itself: the spec is then read from the class, so each fact is written once, in one file: the
    default encoder and output stride are the defaults of its ``__init__`` (``encoder=``, ``output_stride=``;
    ``output_stride`` here for a fixed stride), ``input_multiple`` its class attribute. ``fixed`` registers a
    variant as data: those keyword arguments are always passed and cannot be overridden (e.g. FCN-8s is
    ``FCN`` with ``fixed={"variant": 8}``). Registering the same class under several names is allowed.

    Raises:
        ValueError: when the name is already registered, or (when building) a ``fixed`` argument is given.
    """

    def deco(obj: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if isinstance(spec, ModelSpec):
            s = spec
        else:
            stride = output_stride if output_stride is not None else _signature_default(obj, "output_stride")
            s = ModelSpec(
                name=spec,
                paper=paper,
                default_encoder=_signature_default(obj, "encoder"),
                encoders=tuple(encoders),
                output_stride=int(stride or 1),
                input_multiple=int(input_multiple or getattr(obj, "input_multiple", 1)),
                default_loss=default_loss,
            )
        if s.name in _REGISTRY:
            raise ValueError(f"model {s.name!r} is registered twice")
        builder = obj
        if fixed:

            def builder(num_classes: int, **kwargs) -> nn.Module:
                clash = sorted(set(kwargs) & set(fixed))
                if clash:
                    raise ValueError(f"{s.name} fixes {', '.join(f'{k}={fixed[k]!r}' for k in clash)}; do not pass {clash}")
                return obj(num_classes, **kwargs, **fixed)

        _REGISTRY[s.name] = (s, builder)
        return obj

    return deco


def list_models() -> list[str]:
    """Registered architecture names, sorted."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``.

    Raises:
        KeyError: for an unknown name; the message lists the known ones.
    """
    try:
        return _REGISTRY[name][0]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; choose one of {', '.join(list_models())}") from None


def get_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Build architecture ``name`` for ``num_classes`` classes.

    Keyword arguments are passed to the builder on top of the spec's defaults (e.g. ``encoder``,
    ``pretrained``, ``output_stride``).

    Raises:
        KeyError: unknown name.
        ValueError: ``num_classes < 1`` or an invalid builder argument.
    """
    spec = get_spec(name)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    builder = _REGISTRY[name][1]
    return builder(num_classes=num_classes, **{**spec.defaults, **kwargs})


def count_parameters(architecture: str, num_classes: int, model_kwargs: dict | None = None) -> int:
    """Parameters of ``get_model(architecture, num_classes, **model_kwargs)``, built on the ``meta`` device.

    No memory is allocated and no weights are read (``pretrained`` is forced off; the count does not depend
    on it): 0.03-0.3 s even for a ResNet-101 net. Call it off the GUI thread all the same.
    """
    kwargs = {**(model_kwargs or {}), "pretrained": False}
    with torch.device("meta"):
        model = get_model(architecture, num_classes, **kwargs)
    return sum(p.numel() for p in model.parameters())
