"""The project file ``<folder>/segstudio.json``: images and their status, effort and provenance, classes,
model versions, and where the user left off. Also relabelling the label files on disk. The provenance files are
:mod:`segstudio.io.provenance_files`; the class mapping by name (pure functions) is :mod:`segstudio.core.class_mapping`.

Layout of an app folder::

    <folder>/*.png|jpg|...                 images
    <folder>/segstudio.json                this project file (schema :data:`SCHEMA_VERSION`)
    <folder>/labels/<stem>.png             label maps (8-bit index PNG, see segstudio.io.labels)
    <folder>/labels/classes.json           their classes
    <folder>/labels/provenance/<stem>.png  per-pixel provenance, uint8 0 none / 1 model / 2 human / 3 CRF
    <folder>/labels/models/vNNN/           model versions (one per fine-tune)

Every write is atomic (temp file + fsync + ``os.replace``); a relabelling of all label files is staged
first and only then moved into place, so a failure leaves the old files untouched.
"""

from __future__ import annotations

import datetime as _dt
import io as _io
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.core.labels import ClassSpec, validate_label_map
from segstudio.core.provenance import PROVENANCE_NAMES
from segstudio.io.atomic import STALE_TEMP_AGE_S, TEMP_SUFFIX, atomic_write_bytes, sweep_stale_temps, temp_prefix
from segstudio.io.images import list_images
from segstudio.io.labels import label_path_for, read_index_png
from segstudio.io.layout import PROJECT_FILENAME, PROVENANCE_DIRNAME, ProjectLayout  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""Version of the ``segstudio.json`` layout written by this code; newer files are refused, not misread."""

STATUS_UNLABELLED = "unlabelled"
STATUS_PREDICTED = "predicted"
STATUS_CORRECTED = "corrected"
STATUS_REVIEWED = "reviewed"
STATUSES: tuple[str, ...] = (STATUS_UNLABELLED, STATUS_PREDICTED, STATUS_CORRECTED, STATUS_REVIEWED)
"""Per-image status, in workflow order: no labels → model labels → a person edited them → a person approved them."""
VERSION_STATUSES: tuple[str, ...] = ("finished", "cancelled")
"""Status of a model version: a finished fine-tune, or one cancelled before its end."""
CANCELLED_MARKER = "cancelled.json"
"""File a cancelled fine-tune leaves in its ``labels/models/vNNN`` folder (see :func:`mark_version_cancelled`)."""


class ProjectError(ValueError):
    """``segstudio.json`` is unreadable or invalid (the message names the file, the field and what to do)."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class ImageRecord:
    """What the project knows about one image.

    Attributes:
        status: one of :data:`STATUSES`.
        seconds: active labelling time, seconds (idle gaps capped, see :class:`ActivityClock`).
        strokes: human edit operations (brush strokes, fills, polygons...).
        provenance: pixels of the last saved label map per origin, ``{"none", "model", "human", "crf"}: int``.
        saved: ISO-8601 UTC time of the last label save, or ``None``.
    """

    status: str = STATUS_UNLABELLED
    seconds: float = 0.0
    strokes: int = 0
    provenance: dict[str, int] = field(default_factory=dict)
    saved: str | None = None


@dataclass
class ModelVersion:
    """One model the project has used: the bundled default or a fine-tuned ``labels/models/vNNN``.

    Attributes:
        name: display name (``"v001"``, or the model's name for a model outside the folder).
        path: weights file, relative to the project folder when inside it, else absolute.
        parent: weights path of the model it was fine-tuned from, or ``None``.
        created: ISO-8601 time from the model card, or ``None``.
        data: the card's ``training_data`` (``path``, ``images``, ``val_images``), ``{}`` if unknown.
        metrics: the card's ``metrics`` (e.g. ``{"val": {"miou": 0.63}}``), ``{}`` if none.
        status: ``"finished"``, or ``"cancelled"`` for a fine-tune stopped before its end (its folder holds
            :data:`CANCELLED_MARKER`; the weights are its last good checkpoint).
    """

    name: str
    path: str
    parent: str | None = None
    created: str | None = None
    data: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    status: str = "finished"

    @classmethod
    def from_card(cls, name: str, weights: str | Path, card: dict, folder: str | Path | None = None) -> "ModelVersion":
        """Build from a model card (``model.json``) and its weights path (made relative to ``folder`` when inside it)."""
        weights = Path(weights)
        rel = str(weights)
        if folder is not None:
            try:
                rel = weights.resolve().relative_to(Path(folder).resolve()).as_posix()
            except ValueError:
                rel = str(weights.resolve())
        return cls(
            name=name,
            path=rel,
            parent=card.get("parent"),
            created=card.get("created"),
            data=dict(card.get("training_data") or {}),
            metrics=dict(card.get("metrics") or {}),
        )

    def resolve(self, folder: str | Path) -> Path:
        """Absolute weights path."""
        p = Path(self.path)
        return p if p.is_absolute() else Path(folder) / p

    @property
    def val_miou(self) -> float | None:
        """Validation mIoU in 0..1 from :attr:`metrics`, or ``None``."""
        v = (self.metrics.get("val") or {}).get("miou") if isinstance(self.metrics.get("val"), dict) else None
        return float(v) if isinstance(v, (int, float)) else None


@dataclass
class ProjectSummary:
    """Totals over a project's images.

    Attributes:
        images: number of images.
        by_status: ``{status: count}`` for every status in :data:`STATUSES`.
        seconds: total active seconds.
        strokes: total human edit operations.
        provenance: total saved pixels per origin (``{"none", "model", "human", "crf"}: int``).
    """

    images: int
    by_status: dict[str, int]
    seconds: float
    strokes: int
    provenance: dict[str, int]

    def provenance_percent(self) -> dict[str, float]:
        """Share of *labelled* saved pixels per origin (model, human, crf), percent 0..100; zeros when none."""
        return provenance_percent(self.provenance)


def provenance_percent(counts: dict[str, int]) -> dict[str, float]:
    """``{"model": %, "human": %, "crf": %}`` of the labelled pixels in ``counts`` (pixels per origin)."""
    labelled = sum(int(counts.get(k, 0)) for k in PROVENANCE_NAMES[1:])
    return {k: (100.0 * int(counts.get(k, 0)) / labelled if labelled else 0.0) for k in PROVENANCE_NAMES[1:]}


def _fail(path: Path, what: str) -> ProjectError:
    return ProjectError(
        f"{path}: {what}. Fix or move the file aside (SegStudio then starts a new project; labels are not affected)."
    )


@dataclass
class Project:
    """A labelling project: the state of an image folder, stored in ``<folder>/segstudio.json``.

    Attributes:
        folder: the image folder.
        images: ``{image file name: ImageRecord}`` (names relative to ``folder``).
        classes: the project's classes, or ``None`` before any are known.
        versions: models used, oldest first.
        current_version: :attr:`ModelVersion.name` of the model in use, or ``None``.
        last_image: file name of the image shown last (reopening goes back to it), or ``None``.
        class_aliases: ``{former class name: current name}``: the renames of the project's classes, so that a
            model trained before a rename still maps its predictions of the old name onto the renamed class.
    """

    folder: Path
    images: dict[str, ImageRecord] = field(default_factory=dict)
    classes: ClassSpec | None = None
    versions: list[ModelVersion] = field(default_factory=list)
    current_version: str | None = None
    last_image: str | None = None
    class_aliases: dict[str, str] = field(default_factory=dict)

    # -- file ------------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """``<folder>/segstudio.json``."""
        return ProjectLayout(self.folder).project_file

    @classmethod
    def load(cls, folder: str | Path) -> "Project":
        """Read ``<folder>/segstudio.json``; a folder without one gives a new, empty project.

        Opening a project first removes the temp files that interrupted saves left in it
        (:func:`sweep_project_temps`).

        Raises:
            ProjectError: unreadable JSON, a newer schema, or an invalid field (the message names it).
        """
        folder = Path(folder)
        sweep_project_temps(folder)
        path = folder / PROJECT_FILENAME
        if not path.is_file():
            return cls(folder)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _fail(path, f"cannot read the project file ({exc})") from exc
        return cls.from_dict(data, folder)

    @classmethod
    def from_dict(cls, data: dict, folder: str | Path) -> "Project":
        """Build from the JSON form (see :meth:`to_dict`), validating every field.

        Raises:
            ProjectError: naming the invalid field.
        """
        folder = Path(folder)
        path = folder / PROJECT_FILENAME
        if not isinstance(data, dict):
            raise _fail(path, f"expected a JSON object, got {type(data).__name__}")
        schema = data.get("schema_version")
        if not isinstance(schema, int) or schema < 1:
            raise _fail(path, f"'schema_version' must be a positive integer, got {schema!r}")
        if schema > SCHEMA_VERSION:
            raise _fail(path, f"schema_version {schema} was written by a newer SegStudio (this one reads up to {SCHEMA_VERSION}); update SegStudio")
        images: dict[str, ImageRecord] = {}
        raw_images = data.get("images", {})
        if not isinstance(raw_images, dict):
            raise _fail(path, "'images' must be an object {file name: record}")
        for name, rec in raw_images.items():
            where = f"images[{name!r}]"
            if not isinstance(rec, dict):
                raise _fail(path, f"{where} must be an object")
            status = rec.get("status", STATUS_UNLABELLED)
            if status not in STATUSES:
                raise _fail(path, f"{where}.status must be one of {', '.join(STATUSES)}, got {status!r}")
            seconds, strokes = rec.get("seconds", 0.0), rec.get("strokes", 0)
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
                raise _fail(path, f"{where}.seconds must be a number >= 0, got {seconds!r}")
            if not isinstance(strokes, int) or isinstance(strokes, bool) or strokes < 0:
                raise _fail(path, f"{where}.strokes must be an integer >= 0, got {strokes!r}")
            prov = rec.get("provenance", {})
            if not isinstance(prov, dict) or any(k not in PROVENANCE_NAMES or not isinstance(v, int) or v < 0 for k, v in prov.items()):
                raise _fail(path, f"{where}.provenance must map {', '.join(PROVENANCE_NAMES)} to pixel counts, got {prov!r}")
            saved = rec.get("saved")
            if saved is not None and not isinstance(saved, str):
                raise _fail(path, f"{where}.saved must be an ISO time string or null, got {saved!r}")
            images[str(name)] = ImageRecord(status, float(seconds), int(strokes), dict(prov), saved)
        classes = None
        if data.get("classes") is not None:
            try:
                classes = ClassSpec.from_json(data["classes"])
            except ValueError as exc:
                raise _fail(path, f"'classes': {exc}") from exc
        versions = []
        raw_versions = data.get("versions", [])
        if not isinstance(raw_versions, list):
            raise _fail(path, "'versions' must be a list")
        for i, v in enumerate(raw_versions):
            if not isinstance(v, dict) or not isinstance(v.get("name"), str) or not isinstance(v.get("path"), str):
                raise _fail(path, f"versions[{i}] must be an object with string 'name' and 'path'")
            for key in ("parent", "created"):
                if v.get(key) is not None and not isinstance(v[key], str):
                    raise _fail(path, f"versions[{i}].{key} must be a string or null, got {v[key]!r}")
            data_v, metrics_v = v.get("data") or {}, v.get("metrics") or {}
            if not isinstance(data_v, dict) or not isinstance(metrics_v, dict):
                raise _fail(path, f"versions[{i}].data and .metrics must be objects")
            status = v.get("status", "finished")
            if status not in VERSION_STATUSES:
                raise _fail(path, f"versions[{i}].status must be one of {', '.join(VERSION_STATUSES)}, got {status!r}")
            versions.append(
                ModelVersion(v["name"], v["path"], v.get("parent"), v.get("created"), dict(data_v), dict(metrics_v), status)
            )
        current, last = data.get("current_version"), data.get("last_image")
        for key, value in (("current_version", current), ("last_image", last)):
            if value is not None and not isinstance(value, str):
                raise _fail(path, f"{key!r} must be a string or null, got {value!r}")
        aliases = data.get("class_aliases") or {}
        if not isinstance(aliases, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()):
            raise _fail(path, f"'class_aliases' must map former class names to current ones, got {aliases!r}")
        return cls(folder, images, classes, versions, current, last, dict(aliases))

    def to_dict(self) -> dict:
        """The JSON form written to ``segstudio.json``."""
        return {
            "schema_version": SCHEMA_VERSION,
            "saved": _now(),
            "last_image": self.last_image,
            "current_version": self.current_version,
            "classes": self.classes.to_json() if self.classes is not None else None,
            "class_aliases": dict(sorted(self.class_aliases.items())),
            "versions": [asdict(v) for v in self.versions],
            "images": {name: asdict(rec) for name, rec in sorted(self.images.items())},
        }

    def save(self) -> Path:
        """Atomically write ``segstudio.json``; returns its path.

        Raises:
            OSError: the folder cannot be written (the previous file stays intact).
        """
        return atomic_write_bytes(self.path, (json.dumps(self.to_dict(), indent=1) + "\n").encode("utf-8"))

    # -- images ----------------------------------------------------------------------------
    def record(self, name: str) -> ImageRecord:
        """The record of image file ``name`` (created, unlabelled, if new)."""
        return self.images.setdefault(str(name), ImageRecord())

    def sync_images(self, image_paths: list[Path]) -> None:
        """Add a record for each image in ``image_paths`` that has none: *corrected* when saved labels exist
        (made outside this project, by a person), else *unlabelled*. Records of missing files are kept."""
        for p in image_paths:
            if p.name not in self.images:
                has = label_path_for(p).is_file()
                self.images[p.name] = ImageRecord(STATUS_CORRECTED if has else STATUS_UNLABELLED)

    def set_status(self, name: str, status: str) -> None:
        """Set the status of image ``name``.

        Raises:
            ValueError: unknown status.
        """
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        self.record(name).status = status

    def add_effort(self, name: str, seconds: float = 0.0, strokes: int = 0) -> None:
        """Add active ``seconds`` (>= 0) and ``strokes`` (>= 0) to image ``name``.

        Raises:
            ValueError: a negative amount.
        """
        if seconds < 0 or strokes < 0:
            raise ValueError(f"effort must be >= 0, got {seconds} s and {strokes} strokes")
        rec = self.record(name)
        rec.seconds += float(seconds)
        rec.strokes += int(strokes)

    def summary(self) -> ProjectSummary:
        """Totals: images per status, seconds, strokes and saved pixels per provenance."""
        by_status = {s: 0 for s in STATUSES}
        prov = {k: 0 for k in PROVENANCE_NAMES}
        seconds, strokes = 0.0, 0
        for rec in self.images.values():
            by_status[rec.status] += 1
            seconds += rec.seconds
            strokes += rec.strokes
            for k, v in rec.provenance.items():
                prov[k] += v
        return ProjectSummary(len(self.images), by_status, seconds, strokes, prov)

    # -- versions --------------------------------------------------------------------------
    def set_versions(self, versions: list[ModelVersion]) -> None:
        """Replace the version list, keeping entries not in ``versions`` (e.g. a model loaded from elsewhere)."""
        names = {v.name for v in versions}
        self.versions = [v for v in self.versions if v.name not in names] + list(versions)

    def add_version(self, version: ModelVersion) -> None:
        """Add or update ``version`` (matched by name)."""
        self.set_versions([version])

    def version(self, name: str | None) -> ModelVersion | None:
        """The version called ``name``, or ``None``."""
        return next((v for v in self.versions if v.name == name), None)


# -- version status ------------------------------------------------------------------------------
def mark_version_cancelled(version_dir: str | Path, info: dict | None = None) -> Path | None:
    """Record that the fine-tune writing ``version_dir`` was cancelled: writes ``<version_dir>/cancelled.json``.

    Args:
        version_dir: the ``labels/models/vNNN`` folder of the run.
        info: extra JSON fields (e.g. ``{"epochs_done": 2}``).

    Returns:
        The marker path, or ``None`` when the run left no folder (cancelled before its first checkpoint).

    Raises:
        OSError: the folder exists but cannot be written.
    """
    version_dir = Path(version_dir)
    if not version_dir.is_dir():
        return None
    body = {"status": "cancelled", "cancelled": _now(), **(info or {})}
    return atomic_write_bytes(version_dir / CANCELLED_MARKER, (json.dumps(body, indent=1) + "\n").encode("utf-8"))


def version_status(version_dir: str | Path) -> str:
    """``"cancelled"`` when ``version_dir`` holds :data:`CANCELLED_MARKER`, else ``"finished"``."""
    return "cancelled" if (Path(version_dir) / CANCELLED_MARKER).is_file() else "finished"


# -- folders: writability and a separate labels folder ------------------------------------------
def folder_writable(folder: str | Path) -> bool:
    """True when labels can be saved in ``folder`` (its ``labels/``, or the folder itself before that exists).

    Checked by creating (and removing) a temp file, which also catches read-only mounts that
    ``os.access`` reports as writable. Creates nothing that stays. Never raises.
    """
    target = ProjectLayout(folder).labels_dir
    if target.exists() and not target.is_dir():
        return False  # a file named labels: nothing can be saved under it
    target = target if target.is_dir() else Path(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".segstudio-write-test-", dir=target)
        os.close(fd)
        os.unlink(tmp)
        return True
    except OSError:
        return False


def make_work_folder(images: list[Path], dst: str | Path) -> list[Path]:
    """A writable stand-in for a read-only image folder: ``dst`` gets a link to each image (a copy where links
    are not possible), so labels, the project file and model versions go to ``dst`` while the images stay put.

    Args:
        images: image files (of one folder).
        dst: a writable folder (created if needed); existing links/files of the same name are kept.

    Returns:
        The images' paths inside ``dst``, in the order of ``images``.

    Raises:
        OSError: ``dst`` cannot be created or written.
        ValueError: two images share a file name.
    """
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    names = [p.name for p in images]
    if len(set(names)) != len(names):
        raise ValueError("images with the same file name cannot share one labels folder")
    out = []
    for p in images:
        q = dst / p.name
        if not q.exists():
            try:
                q.symlink_to(Path(p).resolve())
            except OSError:
                q.write_bytes(Path(p).read_bytes())
        out.append(q)
    return out


# -- stale temp files ---------------------------------------------------------------------------
def sweep_project_temps(folder: str | Path, older_than_s: float = STALE_TEMP_AGE_S) -> list[Path]:
    """Remove the temp files that saves killed mid-way left in a project: in ``folder`` (``segstudio.json``),
    ``labels/`` (labels, ``classes.json``), ``labels/provenance/``, ``labels/models/`` and each model version
    folder in it (checkpoints). See :func:`segstudio.io.atomic.sweep_stale_temps` for what is removed (only our
    temp names, regular files, older than ``older_than_s``); returns the removed paths. Never raises.
    """
    folder = Path(folder)
    layout = ProjectLayout(folder)
    labels = layout.labels_dir
    dirs = [folder, labels, layout.provenance_dir, layout.models_dir]
    try:
        dirs += sorted(e.path for e in os.scandir(layout.models_dir) if e.is_dir(follow_symlinks=False))
    except OSError:
        pass
    removed: list[Path] = []
    for d in dirs:
        removed += sweep_stale_temps(d, older_than_s)
    return removed


# -- classes: relabelling on disk ---------------------------------------------------------------
def relabel_label_files(folder: str | Path, lut: np.ndarray, classes: ClassSpec) -> list[Path]:
    """Map every saved label file of the image folder through ``lut`` and write the new ``classes.json``.

    All new files are computed and written to temporary files first (fsynced); only when every one
    succeeded are they moved over the old files (``os.replace``), ``classes.json`` last. An error
    before that point leaves every old file untouched.

    Args:
        folder: image folder with ``labels/``.
        lut: uint8 (256,) old class id → new class id (:data:`~segstudio.core.labels.IGNORE_INDEX` for deleted classes).
        classes: the new class list.

    Returns:
        The label files rewritten.

    Raises:
        ValueError: ``lut`` is not uint8 (256,), or maps some label outside ``classes`` (file named).
        OSError: a file cannot be read or written (nothing replaced).
    """
    if lut.shape != (256,) or lut.dtype != np.uint8:
        raise ValueError(f"relabel needs a uint8 (256,) look-up table, got {lut.dtype} {lut.shape}")
    folder = Path(folder)
    files = [label_path_for(p) for p in list_images(folder) if label_path_for(p).is_file()]
    staged: list[tuple[str, Path]] = []
    try:
        for f in files:
            new = lut[read_index_png(f)]
            try:
                validate_label_map(new, classes.num_classes)
            except ValueError as exc:
                raise ValueError(f"{f}: {exc}") from exc
            buf = _io.BytesIO()
            Image.fromarray(new, mode="L").save(buf, format="PNG")
            staged.append((_stage(f, buf.getvalue()), f))
        classes_file = ProjectLayout(folder).classes_file
        staged.append((_stage(classes_file, (json.dumps(classes.to_json(), indent=1) + "\n").encode("utf-8")), classes_file))
    except BaseException:
        for tmp, _ in staged:
            _unlink(tmp)
        raise
    for tmp, dst in staged:
        os.replace(tmp, dst)
    log.info("relabelled %d label file(s) in %s", len(files), folder)
    return files


def _stage(dst: Path, data: bytes) -> str:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(dst.name), suffix=TEMP_SUFFIX, dir=dst.parent)
    try:
        if dst.exists():
            os.chmod(tmp, dst.stat().st_mode & 0o777)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        _unlink(tmp)
        raise
    return tmp


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# -- effort -------------------------------------------------------------------------------------
class ActivityClock:
    """Active time from activity events: the sum of gaps between consecutive events, each capped at ``idle_s``.

    A gap longer than ``idle_s`` (the user left) counts as ``idle_s``, the usual idle cut-off of time
    trackers. :meth:`start` begins timing (e.g. an image is shown), :meth:`tick` is called on every
    user action and returns the seconds to credit, :meth:`stop` ends timing and credits the rest.

    Args:
        idle_s: cap per gap, seconds (> 0).
        now: clock returning seconds (default :func:`time.monotonic`; tests pass a fake one).
    """

    def __init__(self, idle_s: float = 30.0, now=time.monotonic) -> None:
        if idle_s <= 0:
            raise ValueError(f"idle_s must be > 0, got {idle_s}")
        self.idle_s = float(idle_s)
        self._now = now
        self._last: float | None = None

    @property
    def running(self) -> bool:
        return self._last is not None

    def start(self) -> None:
        """Begin timing now (nothing credited)."""
        self._last = self._now()

    def tick(self) -> float:
        """Seconds (0..idle_s) since the previous event, or 0 when not running; the clock keeps running."""
        if self._last is None:
            self._last = self._now()
            return 0.0
        t = self._now()
        gap = min(max(t - self._last, 0.0), self.idle_s)
        self._last = t
        return gap

    def stop(self) -> float:
        """Credit the time since the last event (capped) and stop."""
        gap = self.tick() if self._last is not None else 0.0
        self._last = None
        return gap
