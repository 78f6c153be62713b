"""Class mapping by name, following a project's renames: pure functions (numpy only) behind every class edit.

* :func:`resolve_alias`: the class a name is now (itself, else what it was renamed to);
* :func:`class_lut`: a uint8 lookup table from one class list's ids to another's (labels, predictions);
* :func:`head_rows`: which classifier row of a checkpoint each new class inherits in a fine-tune;
* :func:`follow_class_edit`: the rename lineage (``{former name: current name}``) after a class edit;
* :func:`match_classes` / :class:`ClassMatch`: how a model's classes relate to a project's (the UI's notice).

Relabelling the files on disk is :func:`segstudio.io.project.relabel_label_files`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segstudio.core.labels import IGNORE_INDEX, ClassSpec


def resolve_alias(name: str, names, aliases: dict[str, str] | None) -> str | None:
    """The class of ``names`` that class ``name`` is now: itself, else what it was renamed to (``aliases``:
    former name → current name, the project's rename lineage), else ``None``."""
    if name in names:
        return name
    target = (aliases or {}).get(name)
    return target if target is not None and target in names else None


def class_lut(src: ClassSpec, dst: ClassSpec, aliases: dict[str, str] | None = None) -> np.ndarray:
    """Look-up table uint8 (256,) sending each class id of ``src`` to the id of the same-named class in ``dst``.

    With ``aliases`` (former name → current name, see :attr:`segstudio.io.project.Project.class_aliases`) a class of ``src`` that
    ``dst`` renamed maps to its new name's id (a rename keeps the id's lineage). Classes of ``src`` missing from
    ``dst`` map to :data:`IGNORE_INDEX`, and so do ids ``>= K_src`` (including the ignore value itself). Apply
    as ``lut[labels]``.
    """
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    index = {n: i for i, n in enumerate(dst.names)}
    for i, n in enumerate(src.names):
        target = resolve_alias(n, index, aliases)
        if target is not None:
            lut[i] = index[target]
    return lut


def head_rows(old_names, new_names, aliases: dict[str, str] | None = None) -> list[int | None]:
    """Which row of a model's classifier each class of a new class list inherits (a fine-tune's head mapping).

    Class ``i`` of ``new_names`` inherits row ``j`` of the old classifier when ``old_names[j]`` is the same name,
    else when ``old_names[j]`` is a former name of it through the project's renames (``aliases``: former name →
    current name, :attr:`segstudio.io.project.Project.class_aliases`; one step, as :func:`class_lut` follows them). A class that
    answers to its own name is never taken by an alias (as in :func:`resolve_alias`); when several old classes
    were renamed into one new class, it inherits the first of them in the old order. A class the model never had
    gets ``None`` (its row starts fresh); an old class no new class reaches (deleted) is inherited by none.

    Args:
        old_names: sequence of str, the model's class names in classifier-row order.
        new_names: sequence of str, the dataset's class names in the order of the new classifier.
        aliases: ``{former name: current name}`` or ``None`` (no renames).

    Returns:
        ``list[int | None]`` of ``len(new_names)``: the old row of each new class, or ``None``. Every old row
        appears at most once. Identical lists give ``[0, 1, ..., K-1]``.

    Raises:
        ValueError: a name repeated within ``old_names`` or within ``new_names`` (the mapping would be ambiguous).
    """
    old_names, new_names = list(old_names), list(new_names)
    for what, names in (("old", old_names), ("new", new_names)):
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"head_rows: the {what} class names repeat {dup}")
    index = {n: i for i, n in enumerate(new_names)}
    rows: list[int | None] = [None] * len(new_names)
    for j, n in enumerate(old_names):  # the same name first ...
        if n in index:
            rows[index[n]] = j
    for j, n in enumerate(old_names):  # ... then a former name, for a class its own name did not reach
        target = resolve_alias(n, index, aliases)
        if target is not None and target != n and rows[index[target]] is None:
            rows[index[target]] = j
    return rows


def follow_class_edit(aliases: dict[str, str], old: ClassSpec, new: ClassSpec, lut: np.ndarray) -> dict[str, str]:
    """The rename lineage after a class edit (``lut``: uint8 (256,) old id → new id, :data:`IGNORE_INDEX` for
    a deleted class).

    A class whose id now holds another name gets ``{old name: new name}``; earlier aliases follow it (``a → b``
    then ``b → c`` gives ``a → c``); aliases of a deleted class go, and so does an alias whose former name is a
    class of ``new`` again (that class answers to its own name).

    Returns:
        The new ``{former name: current name}`` (a new dict).
    """
    renamed: dict[str, str | None] = {}
    for i, n in enumerate(old.names):
        j = int(lut[i])
        renamed[n] = new.names[j] if j < new.num_classes else None
    out: dict[str, str] = {}
    for k, v in aliases.items():
        t = renamed[v] if v in renamed else (v if v in new.names else None)
        if t is not None:
            out[k] = t
    for n, t in renamed.items():
        if t is not None and t != n:
            out[n] = t
    return {k: v for k, v in out.items() if k not in new.names and k != v}


@dataclass(frozen=True)
class ClassMatch:
    """How a model's classes relate to a project's (by name).

    Attributes:
        same: identical names in the same order (predictions need no mapping).
        matched: names in both.
        model_only: names the model predicts that the project lacks (predicted as ignore).
        project_only: project classes the model cannot predict (a fine-tune gives them fresh classifier rows, see
            :func:`head_rows`).
    """

    same: bool
    matched: tuple[str, ...]
    model_only: tuple[str, ...]
    project_only: tuple[str, ...]

    def notice(self) -> str:
        """One human-readable paragraph for the UI ('' when ``same``)."""
        if self.same:
            return ""
        parts = [f"The model's classes differ from the project's: {len(self.matched)} matched by name"]
        if self.model_only:
            parts.append(f"model-only (shown as unlabelled): {', '.join(self.model_only)}")
        if self.project_only:
            parts.append(f"not known to the model: {', '.join(self.project_only)}")
        if not self.model_only and not self.project_only:
            parts.append("same names in another order (predictions are remapped)")
        return "; ".join(parts) + (
            ". Fine-tuning gives the model the project's classes: each class it knows keeps what it learnt, "
            "the others are learnt from the saved labels."
        )


def match_classes(model: ClassSpec, project: ClassSpec, aliases: dict[str, str] | None = None) -> ClassMatch:
    """Compare a model's classes with a project's by name, following the project's renames (``aliases``:
    former name → current name; see :class:`ClassMatch`)."""
    pset = set(project.names)
    resolved = {n: resolve_alias(n, pset, aliases) for n in model.names}
    reached = {r for r in resolved.values() if r is not None}
    return ClassMatch(
        same=model.names == project.names,
        matched=tuple(n for n in project.names if n in reached),
        model_only=tuple(n for n in model.names if resolved[n] is None),
        project_only=tuple(n for n in project.names if n not in reached),
    )
