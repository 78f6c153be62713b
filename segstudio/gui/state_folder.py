"""Which classes and which model a folder opens with (:meth:`ProjectState.open_folder
<segstudio.gui.state.ProjectState.open_folder>`): the folder's own project file, versions and classes first,
a fitting model next, else the user picks. Functions of the state's public members; no signal of their own."""

from __future__ import annotations

from pathlib import Path

from segstudio.core import ClassSpec
from segstudio.engine import LoadedModel
from segstudio.io import load_classes
from segstudio.io.layout import ProjectLayout
from segstudio.io.project import PROJECT_FILENAME, Project, ProjectError


def fits(model_classes: ClassSpec | None, classes: ClassSpec | None) -> bool:
    """Whether a model with ``model_classes`` can serve a folder with ``classes`` (every class name known to it)."""
    if model_classes is None or classes is None:
        return classes is None
    return set(classes.names) <= set(model_classes.names)

def folder_classes(folder: Path, project: Project | None, prompts) -> ClassSpec | None:
    """The folder's own classes: its saved ``classes.json``, its project file's, a dataset's beside it; else ``None``."""
    saved = ProjectLayout(folder).classes_file
    if saved.is_file():
        try:
            return load_classes(saved)
        except ValueError as exc:
            prompts.warning(f"{exc}\nUsing the model's classes instead.")
            return None
    if project is not None and project.classes is not None:
        return project.classes
    for cand in (folder / "classes.json", folder.parent / "classes.json"):  # a dataset's images/ folder
        if cand.is_file():
            try:
                return load_classes(cand)
            except ValueError:
                continue
    return None


def choose_classes_and_model(st, folder: Path, opened_before: bool) -> tuple[ClassSpec | None, int | None]:
    """The classes of ``folder`` and the picker row of its model (``None`` = keep / no model), for the project state
    ``st`` opening it: the project's own model, the folder's newest version, a model whose classes fit (the one in
    use for the first folder), else the user picks. Sets ``st.class_aliases`` from the project file."""
    try:
        project = Project.load(folder) if (folder / PROJECT_FILENAME).is_file() else None
    except ProjectError:
        project = None  # the bookkeeper reported it and set the file aside
    st.class_aliases = dict(project.class_aliases) if project is not None else {}
    classes = folder_classes(folder, project, st.prompts)
    # 1. the project's own model
    if project is not None and project.current_version is not None:
        idx = project_model_index(st, folder, project)
        if idx is not None:
            return classes, idx
        st.say(f"model version {project.current_version} of the project is missing; using the newest model")
    # 2. the folder's newest finished version
    for i in reversed(range(len(st.models))):
        e = st.models[i]
        if e.folder == folder and not e.label.endswith("(cancelled)"):
            return classes, i
    # 3. a model whose classes fit the folder's classes: the one in use, else a bundled one
    if classes is not None:
        if st.model is not None and fits(st.model.classes, classes) and not opened_before:
            return classes, None
        exact = [i for i, e in enumerate(st.models) if e.classes is not None and e.classes.names == classes.names]
        fit = [i for i, e in enumerate(st.models) if fits(e.classes, classes)]
        if exact or fit:
            return classes, (exact or fit)[0]
    # 4. nothing says: the start model for the first folder, else ask
    if not opened_before or not st.models:
        return classes, None
    why = f"{folder.name} has no project file, model versions or classes that pick a model."
    idx = st.prompts.choose_model(folder, [e.label for e in st.models], why)
    if idx is None:
        st.clear_model()
        return classes, None
    if classes is None:
        e = st.models[idx]
        classes = e.classes
    return classes, idx


def project_model_index(st, folder: Path, project: Project) -> int | None:
    """The picker row of the project file's current model version (added to the picker when only on disk), or ``None``."""
    name = project.current_version
    v = project.version(name)
    for label in (name, f"{folder.name}/{name}"):
        idx = st.find_model(label)
        if idx is not None:
            return idx
    if v is not None:
        path = v.resolve(folder)
        if path.is_file():
            for i, e in enumerate(st.models):
                p = e.entry.path if isinstance(e.entry, LoadedModel) else e.entry
                if p is not None and Path(p).resolve() == path.resolve():
                    return i
            return st.add_model_entry(name, path)
    return None


__all__ = ["choose_classes_and_model", "fits", "folder_classes", "project_model_index"]
