"""Loss registry, weighted sums (:class:`CombinedLoss`) and the spec strings of ``--loss``.

A spec is one or more terms joined by ``+``; a term is a loss name with an optional positive weight
written ``W*name`` or ``name*W``: ``"ce"``, ``"ce+dice"``, ``"ce+0.5*dice"``, ``"focal+lovasz*2"``.
Whitespace and case are ignored. Names: see :data:`LOSSES` (``iou`` is an alias of ``jaccard``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence

import torch
from torch import nn

from segstudio.core.labels import IGNORE_INDEX
from segstudio.losses.base import SegLoss
from segstudio.losses.lovasz import LovaszSoftmax
from segstudio.losses.pixelwise import CrossEntropy, FocalLoss
from segstudio.losses.region import DiceLoss, JaccardLoss

LOSSES: dict[str, type[SegLoss]] = {
    cls.name: cls for cls in (CrossEntropy, FocalLoss, DiceLoss, JaccardLoss, LovaszSoftmax)
}
"""Loss classes by spec name: ``ce``, ``focal``, ``dice``, ``jaccard``, ``lovasz``."""

ALIASES = {"iou": "jaccard", "lovasz_softmax": "lovasz", "cross_entropy": "ce"}

_COMMON = ("ignore_index", "aux_weight", "weight")


class CombinedLoss(SegLoss):
    """Weighted sum ``L = Σ_j w_j · L_j`` of segmentation losses.

    The model's auxiliary output is handled once, here (``L(out) + aux_weight · L(aux)``); the terms'
    own ``aux_weight`` is not used.

    Args:
        terms: ``(weight, loss)`` pairs, weights positive and finite.
        ignore_index: target value excluded from the loss; must equal every term's.
        aux_weight: weight of the ``"aux"`` output.

    Raises:
        ValueError: no terms, a non-positive weight, or mismatched ``ignore_index``.
    """

    name = "combined"

    def __init__(
        self, terms: Sequence[tuple[float, SegLoss]], ignore_index: int = IGNORE_INDEX, aux_weight: float = 0.4
    ) -> None:
        super().__init__(ignore_index, aux_weight)
        if not terms:
            raise ValueError("CombinedLoss needs at least one term")
        for w, loss in terms:
            if not (math.isfinite(w) and w > 0):
                raise ValueError(f"loss weights must be positive and finite, got {w} for {loss.name!r}")
            if loss.ignore_index != self.ignore_index:
                raise ValueError(f"{loss.name!r} ignores {loss.ignore_index} but the sum ignores {self.ignore_index}")
        self.weights = [float(w) for w, _ in terms]
        self.terms = nn.ModuleList(loss for _, loss in terms)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = None
        for w, loss in zip(self.weights, self.terms):
            value = w * loss.compute(logits, target)
            total = value if total is None else total + value
        return total

    @property
    def spec(self) -> str:
        """Canonical spec string, e.g. ``"ce+0.5*dice"``."""
        return "+".join(m.name if w == 1.0 else f"{w:g}*{m.name}" for w, m in zip(self.weights, self.terms))

    def extra_repr(self) -> str:
        return f"spec={self.spec!r}, aux_weight={self.aux_weight}"


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_loss_spec(spec: str) -> list[tuple[float, str]]:
    """Parse a loss spec into ``(weight, name)`` terms (names canonical, aliases resolved).

    Examples: ``"ce+dice"`` → ``[(1.0, "ce"), (1.0, "dice")]``; ``"ce + 0.5*Dice"`` →
    ``[(1.0, "ce"), (0.5, "dice")]``; ``"iou*2"`` → ``[(2.0, "jaccard")]``.

    Raises:
        ValueError: empty spec or term, a weight that is not a positive finite number, an unknown
            name, or a name used twice; the message quotes the spec and the offending term.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty loss spec {spec!r}; expected e.g. 'ce', 'ce+dice' or 'ce+0.5*dice'")
    text = "".join(spec.split()).lower()
    terms: list[tuple[float, str]] = []
    for raw in text.split("+"):
        if not raw:
            raise ValueError(f"loss spec {spec!r}: empty term (a '+' with nothing on one side)")
        parts = raw.split("*")
        if len(parts) == 1:
            weight, name = 1.0, parts[0]
        elif len(parts) == 2:
            a, b = parts
            if _number(a) is not None:
                weight, name = _number(a), b
            elif _number(b) is not None:
                weight, name = _number(b), a
            else:
                raise ValueError(f"loss spec {spec!r}: term {raw!r} needs a number on one side of '*', e.g. '0.5*dice'")
        else:
            raise ValueError(f"loss spec {spec!r}: term {raw!r} has more than one '*'; write one weight per term")
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"loss spec {spec!r}: weight {weight:g} of term {raw!r} must be a positive finite number")
        name = ALIASES.get(name, name)
        if name not in LOSSES:
            raise ValueError(
                f"loss spec {spec!r}: unknown loss {name!r}; choose from {', '.join(LOSSES)} (or a weighted sum "
                "such as 'ce+0.5*dice')"
            )
        if any(name == n for _, n in terms):
            raise ValueError(f"loss spec {spec!r}: {name!r} appears more than once; give it one weight")
        terms.append((weight, name))
    return terms


def _accepted(cls: type[SegLoss]) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters) - {"self"}


def get_loss(
    spec: str,
    *,
    weight=None,
    ignore_index: int = IGNORE_INDEX,
    aux_weight: float = 0.4,
    **params,
) -> SegLoss:
    """Build a loss from a spec string (see :mod:`segstudio.losses.combined`).

    A single term of weight 1 gives the loss itself (``get_loss("ce")`` is a :class:`CrossEntropy`);
    anything else gives a :class:`CombinedLoss`.

    Args:
        spec: e.g. ``"ce"``, ``"ce+dice"``, ``"ce+0.5*dice"``, ``"focal"``, ``"lovasz"``.
        weight: per-class weights, K floats (e.g. from :func:`segstudio.losses.compute_class_weights`);
            applied to the terms that take class weights (``ce``, ``focal``).
        ignore_index: target value excluded from every term.
        aux_weight: weight of the model's ``"aux"`` output.
        **params: loss-specific options passed to every term that takes them (``gamma``, ``alpha``,
            ``smooth``, ``squared``, ``classes``, ``per_image``).

    Raises:
        ValueError: a bad spec (see :func:`parse_loss_spec`); ``weight`` given but no term takes class
            weights; an option no term takes; invalid option values.
    """
    terms = parse_loss_spec(spec)
    classes = [LOSSES[name] for _, name in terms]
    if weight is not None and not any(c.accepts_class_weights for c in classes):
        takers = ", ".join(n for n, c in LOSSES.items() if c.accepts_class_weights)
        raise ValueError(f"class weights apply to the {takers} losses, and loss {spec!r} has none of them")
    for key in params:
        if key in _COMMON or not any(key in _accepted(c) for c in classes):
            raise ValueError(f"option {key!r} is not taken by any loss in {spec!r}")
    built = []
    for (w, _), cls in zip(terms, classes):
        kwargs = {k: v for k, v in params.items() if k in _accepted(cls)}
        if cls.accepts_class_weights:
            kwargs["weight"] = weight
        built.append((w, cls(ignore_index=ignore_index, aux_weight=aux_weight, **kwargs)))
    if len(built) == 1 and built[0][0] == 1.0:
        return built[0][1]
    return CombinedLoss(built, ignore_index=ignore_index, aux_weight=aux_weight)
