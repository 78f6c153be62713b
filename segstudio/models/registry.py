"""The model registry: architecture names → builders plus a :class:`ModelSpec` of static facts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
        defaults: default keyword arguments of the builder.
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


def register_model(spec: ModelSpec) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering ``builder(num_classes, **kw) -> nn.Module`` under ``spec.name``.

    Raises:
        ValueError: when the name is already registered.
    """

    def deco(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if spec.name in _REGISTRY:
            raise ValueError(f"model {spec.name!r} is registered twice")
        _REGISTRY[spec.name] = (spec, builder)
        return builder

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
