"""Nothing the user made is lost: atomic saves under SIGKILL and a full disk, the crash-safe edit journal
(kill -9 of the real app mid-stroke, then recovery), untrusted checkpoints (a malicious pickle runs no
code), and training faults (cancel mid-epoch, killed run, NaN loss) keeping the last good checkpoint;
model work off the GUI thread."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segstudio.core import ClassSpec
from segstudio.core.labels import IGNORE_INDEX
from segstudio.engine import CancelToken, Cancelled, CheckpointError, TrainConfig, load_checkpoint, train_on_folder
from segstudio.engine.checkpoint import new_card, save_checkpoint
from segstudio.io import DiskFullError, label_path_for, read_index_png, save_labels
from segstudio.io import atomic as atomic_mod
from segstudio.io.atomic import atomic_write_bytes
from segstudio.io.project import sweep_project_temps
from segstudio.io.journal import FILE_MAGIC, Journal, journal_path_for, read_journal, replay
from segstudio.models import get_model

REPO = Path(__file__).resolve().parents[1]
CLASSES = ClassSpec(("bg", "cat", "dog"))


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")


def _sha(b: bytes) -> str:
    return hashlib.sha1(b).hexdigest()


def _wait_line(proc: subprocess.Popen, prefix: str, timeout: float = 120) -> list[str]:
    """Read the child's stdout until a line starting with ``prefix``; returns every line read."""
    lines, t0 = [], time.monotonic()
    while time.monotonic() - t0 < timeout:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"child ended early (rc {proc.poll()}): {lines[-5:]}\n{proc.stderr.read()[-3000:]}")
        lines.append(line.strip())
        if line.startswith(prefix):
            return lines
    raise AssertionError(f"no {prefix!r} from the child within {timeout}s")


# --------------------------------------------------------------------------------------------------
# atomic saves


def test_sigkill_during_saves_leaves_the_previous_or_the_new_file(tmp_path):
    """A child rewrites a 24 MB file and a label PNG in a loop; SIGKILL at random moments, five times:
    each file is always exactly one complete version, never torn or missing."""
    target, labels_img = tmp_path / "data.bin", tmp_path / "img.png"
    versions = [bytes([i]) * (24 << 20) for i in range(3)]
    atomic_write_bytes(target, versions[0])
    maps = [np.full((300, 400), i, np.uint8) for i in range(3)]
    save_labels(labels_img, maps[0], CLASSES)
    child = textwrap.dedent(f"""
        import sys, numpy as np
        from segstudio.core import ClassSpec
        from segstudio.io import save_labels
        from segstudio.io.atomic import atomic_write_bytes
        classes = ClassSpec(("bg", "cat", "dog"))
        print("ready", flush=True)
        i = 0
        while True:
            i += 1
            atomic_write_bytes({str(target)!r}, bytes([i % 3]) * (24 << 20))
            save_labels({str(labels_img)!r}, np.full((300, 400), i % 3, np.uint8), classes)
    """)
    rng = np.random.default_rng(0)
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", child], cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_line(proc, "ready")
        time.sleep(float(rng.uniform(0.05, 0.6)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _sha(target.read_bytes()) in {_sha(v) for v in versions}
        got = read_index_png(label_path_for(labels_img))
        assert any(np.array_equal(got, m) for m in maps)
    # One more kill, certain to land mid-save: the child stops just before the os.replace of its first save.
    stuck = "import os, time\ndef replace(*a, **k):\n    print('mid-save', flush=True)\n    time.sleep(600)\n" \
            "os.replace = replace\n" + child
    proc = subprocess.Popen([sys.executable, "-c", stuck], cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_line(proc, "mid-save")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    label_dir = label_path_for(labels_img).parent
    temps = {p for d in (tmp_path, label_dir) for p in d.iterdir() if atomic_mod.is_temp_name(p.name)}
    assert temps, "a kill mid-save leaves its temp file"
    kept = {p: p.read_bytes() for d in (tmp_path, label_dir) for p in d.iterdir() if p not in temps and p.is_file()}
    assert set(kept) == {target, label_path_for(labels_img), label_dir / "classes.json"}
    assert atomic_mod.sweep_stale_temps(tmp_path) == [] and atomic_mod.sweep_stale_temps(label_dir) == []  # too recent
    for p in temps:  # an hour later (the default age), opening the folder sweeps them
        os.utime(p, (time.time() - 3700, time.time() - 3700))
    assert set(sweep_project_temps(tmp_path)) == temps
    assert not any(p.exists() for p in temps)
    assert {p: p.read_bytes() for p in kept} == kept  # the previous versions, byte for byte
    assert any(np.array_equal(read_index_png(label_path_for(labels_img)), m) for m in maps)


def test_sweep_removes_only_our_stale_temp_names(tmp_path):
    """Only regular files named exactly ``.<name>.<8 random chars>.tmp`` and older than the threshold go; user
    files that look alike, symlinks (even to an old temp), folders and recent temps stay."""
    old = time.time() - 2 * atomic_mod.STALE_TEMP_AGE_S
    ours = []
    for name in ("a.png", "classes.json", "x" * 200 + ".png"):
        fd, tmp = tempfile.mkstemp(prefix=atomic_mod.temp_prefix(name), suffix=atomic_mod.TEMP_SUFFIX, dir=tmp_path)
        os.close(fd)
        ours.append(Path(tmp))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    target = outside / ".a.png.abcd1234.tmp"  # a temp-named file outside the folder, reached through a link
    target.write_bytes(b"keep")
    keep_names = [".foo.tmp", "foo.tmp", ".a.png.tmp", ".a.png.abc.tmp", ".a.png.ABCDEFGH.tmp", ".a.png.abcd1234.tmp.bak",
                  ".a.png.abcd-234.tmp", "a.png.abcd1234.tmp", ".a.png.abcd1234.TMP", "..abcd1234.tmp", ".a.png.abcd12345.tmp"]
    keep = [tmp_path / n for n in keep_names]
    for p in keep:
        p.write_bytes(b"user data")
    link = tmp_path / ".b.png.zzzz9999.tmp"
    link.symlink_to(target)
    dangling = tmp_path / ".c.png.qqqq1111.tmp"
    dangling.symlink_to(tmp_path / "missing")
    folder_like = tmp_path / ".d.png.dddd0000.tmp"
    folder_like.mkdir()
    fd, recent = tempfile.mkstemp(prefix=".e.png.", suffix=".tmp", dir=tmp_path)
    os.close(fd)
    for p in ours + keep + [target, folder_like]:
        os.utime(p, (old, old))
    os.utime(link, (old, old), follow_symlinks=False)
    assert sorted(atomic_mod.sweep_stale_temps(tmp_path)) == sorted(ours)
    assert all(p.read_bytes() == b"user data" for p in keep)
    assert link.is_symlink() and dangling.is_symlink() and folder_like.is_dir() and Path(recent).exists()
    assert target.read_bytes() == b"keep"
    assert atomic_mod.sweep_stale_temps(tmp_path) == []
    assert atomic_mod.sweep_stale_temps(tmp_path / "no-such-folder") == []
    assert atomic_mod.sweep_stale_temps(tmp_path, older_than_s=0) == [Path(recent)]


def test_opening_a_project_sweeps_stale_temps_of_labels_provenance_and_versions(tmp_path):
    from segstudio.io.project import Project

    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / "a.png")
    save_labels(tmp_path / "a.png", np.zeros((4, 5), np.uint8), CLASSES)
    dirs = [tmp_path, tmp_path / "labels", tmp_path / "labels" / "provenance", tmp_path / "labels" / "models" / "v001"]
    old = time.time() - 2 * atomic_mod.STALE_TEMP_AGE_S
    stale, fresh = [], []
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        for bucket in (stale, fresh):
            fd, tmp = tempfile.mkstemp(prefix=atomic_mod.temp_prefix("x.png"), suffix=".tmp", dir=d)
            os.close(fd)
            bucket.append(Path(tmp))
    for p in stale:
        os.utime(p, (old, old))
    deep = tmp_path / "sub"  # only the project's own folders are swept
    deep.mkdir()
    fd, deep_tmp = tempfile.mkstemp(prefix=".y.png.", suffix=".tmp", dir=deep)
    os.close(fd)
    os.utime(deep_tmp, (old, old))
    Project.load(tmp_path)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in fresh) and Path(deep_tmp).exists()
    assert read_index_png(label_path_for(tmp_path / "a.png")).shape == (4, 5)


def _full_disk_mkstemp(monkeypatch):
    """Make atomic saves write into /dev/full: the kernel answers ENOSPC, as on a full disk."""
    real = tempfile.mkstemp

    def mkstemp(*a, **k):
        fd, name = real(*a, **k)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), name

    monkeypatch.setattr(atomic_mod.tempfile, "mkstemp", mkstemp)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux /dev/full to simulate a full disk")
def test_disk_full_is_reported_and_keeps_the_previous_labels(tmp_path, monkeypatch):
    img = tmp_path / "a.png"
    old = np.zeros((40, 50), np.uint8)
    save_labels(img, old, CLASSES)
    before = label_path_for(img).read_bytes()
    _full_disk_mkstemp(monkeypatch)
    with pytest.raises(DiskFullError, match="disk is full") as err:
        save_labels(img, np.ones((40, 50), np.uint8), CLASSES)
    assert str(label_path_for(img)) in str(err.value) and "previous file is unchanged" in str(err.value)
    assert isinstance(err.value, OSError)
    assert label_path_for(img).read_bytes() == before
    assert sorted(p.name for p in label_path_for(img).parent.iterdir()) == ["a.png", "classes.json"]  # temp removed


def test_atomic_save_of_a_255_byte_name(tmp_path):
    """The temp file name is shortened, so labels of an image with a maximal file name can be saved."""
    img = tmp_path / ("x" * 251 + ".png")
    save_labels(img, np.zeros((3, 3), np.uint8), CLASSES)
    assert read_index_png(label_path_for(img)).shape == (3, 3)


# --------------------------------------------------------------------------------------------------
# journal


def _strokes(shape, n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        y, x = rng.integers(0, shape[0] - 6), rng.integers(0, shape[1] - 6)
        h, w = rng.integers(1, 6), rng.integers(1, 6)
        out.append((int(y), int(x), rng.integers(0, 3, (h, w)).astype(np.uint8)))
    return out


def test_journal_provenance_patches_replay_and_a_torn_pair(tmp_path):
    """Each patch can carry who decided its pixels (issue 31: a confirming stroke changes no value); replay of the
    provenance applies them in order; a patch whose provenance record was torn off keeps its labels only."""
    from segstudio.io.journal import replay_provenance

    base = np.zeros((10, 12), np.uint8)
    base_prov = np.full((10, 12), 1, np.uint8)  # the model's
    j = Journal(tmp_path / "a.png")
    j.start(base)
    j.append_patch(2, 3, np.zeros((2, 4), np.uint8), np.full((2, 4), 2, np.uint8))  # same values, now a person's
    j.append_patch(6, 0, np.ones((1, 5), np.uint8), np.full((1, 5), 2, np.uint8))
    j.close()
    c = read_journal(j.path)
    assert len(c.patches) == 2 and len(c.prov_patches) == 2 and c.num_edits == 3
    prov = replay_provenance(c, base_prov)
    assert (prov[2:4, 3:7] == 2).all() and (prov[6, :5] == 2).all() and prov.sum() == 120 + 8 + 5
    full = j.path.read_bytes()
    j.path.write_bytes(full[:-5])  # the last provenance record torn off
    c = read_journal(j.path)
    assert c.torn and len(c.patches) == 2 and len(c.prov_patches) == 1
    j3 = Journal(tmp_path / "c.png")
    j3.start(base)
    with pytest.raises(ValueError, match="shape"):
        j3.append_patch(0, 0, np.zeros((2, 2), np.uint8), np.zeros((3, 2), np.uint8))
    j3.close()


def test_journal_replay_and_torn_tail_at_every_byte(tmp_path):
    img = tmp_path / "a.png"
    base = np.full((20, 30), IGNORE_INDEX, np.uint8)
    j = Journal(img)
    j.start(base)
    expected = [base.copy()]
    labels = base.copy()
    for y, x, patch in _strokes(base.shape, 6):
        labels[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
        j.append_patch(y, x, patch)
        expected.append(labels.copy())
    j.close()
    assert j.path == journal_path_for(img) and j.path.parent.name == ".journal"
    full = j.path.read_bytes()
    contents = read_journal(j.path)
    assert not contents.torn and contents.name == b"a.png" and len(contents.patches) == 6
    np.testing.assert_array_equal(replay(contents, base.shape), expected[-1])
    # Cut the file anywhere inside the last record: the other five survive, the torn one is dropped.
    last_start = len(full) - (len(full) - read_journal_offsets(full)[-1])
    for cut in range(last_start, len(full)):
        j.path.write_bytes(full[:cut])
        c = read_journal(j.path)
        assert c.torn == (cut != last_start) and len(c.patches) == 5
        np.testing.assert_array_equal(replay(c), expected[-2])
    # A flipped bit inside a record: that record and everything after it are dropped, nothing else.
    offs = read_journal_offsets(full)
    bad = bytearray(full)
    bad[offs[3] + 20] ^= 0x10
    j.path.write_bytes(bytes(bad))
    c = read_journal(j.path)
    assert c.torn and len(c.patches) == 2
    np.testing.assert_array_equal(replay(c), expected[2])
    # Resuming after a torn tail truncates it, then appends cleanly.
    j.path.write_bytes(full[:-3])
    c = read_journal(j.path)
    j2 = Journal(img)
    j2.resume(c)
    y, x, patch = _strokes(base.shape, 1, seed=9)[0]
    j2.append_patch(y, x, patch)
    j2.close()
    c2 = read_journal(j2.path)
    assert not c2.torn and len(c2.patches) == 6
    want = expected[-2].copy()
    want[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
    np.testing.assert_array_equal(replay(c2), want)
    j2.clear()
    assert not j2.path.exists()


def read_journal_offsets(data: bytes) -> list[int]:
    """Start offsets of each record (header walk, for the torn-tail test)."""
    import struct

    offs, off = [], len(FILE_MAGIC)
    while off < len(data):
        offs.append(off)
        _, n, _ = struct.unpack_from("<4sII", data, off)
        off += 12 + n
    return offs


CHILD_APP = """
import hashlib, sys, time
from PySide6.QtWidgets import QApplication
app = QApplication([])
import segstudio.gui.main_window as mw
mw.ask_recover = lambda *a: False
win = mw.MainWindow(None)
win.show()
win.open_folder(sys.argv[1])
c = win.canvas
doc = win.current_doc()
steps = [(1, 10, 10, 40, 60), (2, 50, 20, 90, 200), ("undo",), (1, 100, 100, 120, 300), ("undo",), ("redo",),
         (2, 200, 50, 250, 400), ("fill", 0, 5, 470), (1, 300, 10, 310, 470)]
for i, s in enumerate(steps):
    if s[0] == "undo":
        c.undo()
    elif s[0] == "redo":
        c.redo()
    elif s[0] == "fill":
        c.current_class = s[1]
        c.fill_at(s[2], s[3])
    else:
        c.current_class = s[0]
        c.begin_stroke(s[1], s[2]); c.continue_stroke((s[1] + s[3]) / 2, s[4] - 10); c.continue_stroke(s[3], s[4]); c.end_stroke()
    print("ACK", i, hashlib.sha1(doc.labels.tobytes()).hexdigest(), flush=True)
c.current_class = 0
c.begin_stroke(5, 5); c.continue_stroke(300, 400)  # the stroke in progress when the app dies
print("MIDSTROKE", hashlib.sha1(doc.labels.tobytes()).hexdigest(), flush=True)
time.sleep(600)
"""


def test_kill_9_mid_stroke_then_relaunch_recovers_every_finished_edit(tmp_path, samples_dir, qtbot, monkeypatch):
    """The real app in a subprocess: strokes, undo, redo and a fill, then kill -9 in the middle of a stroke.
    Relaunched, the window offers recovery; accepting restores exactly the state after the last finished
    edit (the stroke in progress is the only thing lost), on top of the saved labels; saving clears the journal."""
    img = tmp_path / "frame.png"
    shutil.copy(sorted(samples_dir.glob("*.png"))[0], img)
    h, w = np.asarray(Image.open(img)).shape[:2]
    saved = np.zeros((h, w), np.uint8)
    saved[: h // 2] = 1
    save_labels(img, saved, CLASSES)
    saved_bytes = label_path_for(img).read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", CHILD_APP, str(tmp_path)], cwd=REPO, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = _wait_line(proc, "MIDSTROKE", timeout=180)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    acks = [ln.split() for ln in lines if ln.startswith("ACK")]
    assert len(acks) == 9
    last_ack, mid = acks[-1][2], lines[-1].split()[1]
    assert mid != last_ack  # the unfinished stroke had changed the map in memory
    assert label_path_for(img).read_bytes() == saved_bytes  # never saved by the dead app
    assert journal_path_for(img).is_file()

    import segstudio.gui.main_window as mw

    asked = []
    monkeypatch.setattr(mw, "ask_recover", lambda parent, name, edits, torn: asked.append((name, edits, torn)) or True)
    win = mw.MainWindow(None)
    qtbot.addWidget(win)
    win.open_folder(tmp_path)
    doc = win.current_doc()
    assert asked and asked[0][0] == "frame.png"
    assert _sha(doc.labels.tobytes()) == last_ack
    assert doc.dirty and "restored" in win.status_text.text()
    # Editing goes on into the same journal; a save writes the labels and removes the journal.
    win.canvas.current_class = 2
    win.canvas.begin_stroke(20, 20)
    win.canvas.end_stroke()
    after = doc.labels.copy()
    np.testing.assert_array_equal(replay(read_journal(journal_path_for(img))), after)
    win.save_current()
    np.testing.assert_array_equal(read_index_png(label_path_for(img)), after)
    assert not journal_path_for(img).exists()
    win.close()


def test_declined_recovery_keeps_the_journal_aside(tmp_path, qtbot, monkeypatch):
    import segstudio.gui.main_window as mw

    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(img)
    save_labels(img, np.zeros((30, 40), np.uint8), CLASSES)
    j = Journal(img)
    j.start(np.ones((30, 40), np.uint8))
    j.close()
    monkeypatch.setattr(mw, "ask_recover", lambda *a: False)
    win = mw.MainWindow(None)
    qtbot.addWidget(win)
    win.open_folder(tmp_path)
    assert (win.current_doc().labels == 0).all() and not win.current_doc().dirty
    kept = list(j.path.parent.glob("*.discarded-1.ssj"))
    assert len(kept) == 1 and (replay(read_journal(kept[0])) == 1).all()
    # A journal for a different-size image is not applied either, and kept.
    j.start(np.ones((3, 4), np.uint8))
    j.close()
    win2 = mw.MainWindow(None)
    qtbot.addWidget(win2)
    monkeypatch.setattr(mw, "ask_recover", lambda *a: pytest.fail("an unusable journal must not be offered"))
    win2.open_folder(tmp_path)
    assert "not usable" in win2.status_text.text() and len(list(j.path.parent.glob("*.discarded-*.ssj"))) == 2


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux /dev/full to simulate a full disk")
def test_gui_save_on_full_disk_reports_and_keeps_edits_and_journal(tmp_path, qtbot, monkeypatch):
    import segstudio.gui.main_window as mw

    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(img)
    save_labels(img, np.zeros((30, 40), np.uint8), CLASSES)
    before = label_path_for(img).read_bytes()
    shown = []
    monkeypatch.setattr(mw.QMessageBox, "critical", staticmethod(lambda *a, **k: shown.append(a[2])))
    win = mw.MainWindow(None)
    qtbot.addWidget(win)
    win.open_folder(tmp_path)
    win.canvas.current_class = 1
    win.canvas.begin_stroke(10, 10)
    win.canvas.end_stroke()
    assert journal_path_for(img).is_file()
    _full_disk_mkstemp(monkeypatch)
    win.save_current()
    assert shown and "disk is full" in shown[0] and "still open" in shown[0]
    assert win.current_doc().dirty and journal_path_for(img).is_file()
    assert label_path_for(img).read_bytes() == before
    monkeypatch.undo()
    win.close()  # autosave on close succeeds now that the disk has room; the journal goes away
    assert (read_index_png(label_path_for(img))[10, 10]) == 1 and not journal_path_for(img).exists()


# --------------------------------------------------------------------------------------------------
# untrusted checkpoints


class _Evil:
    """Unpickling this object would create a folder (stands in for any code an attacker wants to run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _tiny(num_classes=3):
    torch.manual_seed(0)
    return get_model("simple_cnn", num_classes, depth=1, width=4).eval()


def test_malicious_pickle_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    card = new_card("simple_cnn", CLASSES, {"depth": 1, "width": 4})
    (tmp_path / "evil.json").write_text(json.dumps(card))
    shutil.copy(tmp_path / "evil.json", tmp_path / "legacy.json")
    torch.save({"state_dict": _tiny().state_dict(), "payload": _Evil(marker)}, tmp_path / "evil.pt")
    with open(tmp_path / "legacy.pth", "wb") as fh:  # a bare pickle (pre-zip torch format)
        pickle.dump(_Evil(marker), fh)
    # Control: the payload really is live; plain pickle.load would run it.
    with open(tmp_path / "legacy.pth", "rb") as fh:
        pickle.load(fh)
    assert marker.is_dir()
    marker.rmdir()
    for name in ("evil.pt", "legacy.pth"):
        with pytest.raises(CheckpointError, match="refused to load") as err:
            load_checkpoint(tmp_path / name)
        assert "weights_only" in str(err.value) and "nothing was run" in str(err.value)
        assert not marker.exists(), f"{name}: unpickling ran code"


def test_pt_and_pth_weights_load_like_safetensors(tmp_path):
    model = _tiny()
    card = new_card("simple_cnn", CLASSES, {"depth": 1, "width": 4})
    ref = load_checkpoint(save_checkpoint(tmp_path / "st", model, card))
    torch.save(model.state_dict(), tmp_path / "plain.pth")
    (tmp_path / "plain.json").write_text(json.dumps(card))
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "card": json.dumps(card)}, tmp_path / "ddp.pt")
    x = torch.rand(1, 3, 9, 11)
    for p in (tmp_path / "plain.pth", tmp_path / "ddp.pt"):
        loaded = load_checkpoint(p)
        assert loaded.classes == CLASSES
        torch.testing.assert_close(loaded.model(x)["out"], ref.model(x)["out"])
    (tmp_path / "nocard.pth").write_bytes((tmp_path / "plain.pth").read_bytes())
    with pytest.raises(CheckpointError, match="needs a model card"):
        load_checkpoint(tmp_path / "nocard.pth")
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "nostate.pt")
    with pytest.raises(CheckpointError, match="no state dict"):
        load_checkpoint(tmp_path / "nostate.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="refused to load|not a readable PyTorch weights file"):
        load_checkpoint(tmp_path / "junk.pt")


def test_checkpoint_mismatch_errors_name_the_mismatch(tmp_path):
    model = _tiny(3)
    card = new_card("simple_cnn", CLASSES, {"depth": 1, "width": 4})
    torch.save(model.state_dict(), tmp_path / "m.pth")
    cases = {
        "classes": ({**card, "classes": ClassSpec(("a", "b", "c", "d", "e")).to_json()},
                    r"different number of classes: the checkpoint's classifier has 3 outputs, the model card / project has 5"),
        "architecture": ({**card, "architecture": "unet", "model_kwargs": {"depth": 2, "base_channels": 4}}, r"different architecture"),
        "shapes": ({**card, "model_kwargs": {"depth": 1, "width": 8}}, r"checkpoint \(4, 3, 3, 3\) vs model \(8, 3, 3, 3\)"),
        "kwargs": ({**card, "model_kwargs": {"depth": 0}}, r"model_kwargs do not build a simple_cnn"),
    }
    for name, (c, pattern) in cases.items():
        (tmp_path / "m.json").write_text(json.dumps(c))
        with pytest.raises(CheckpointError, match=pattern):
            load_checkpoint(tmp_path / "m.pth")


def test_every_torch_load_in_the_package_is_weights_only():
    import re

    calls = []
    for p in (REPO / "segstudio").rglob("*.py"):
        for m in re.finditer(r"torch\.load\((.*?)\)\s*$", p.read_text(encoding="utf-8"), flags=re.M):
            calls.append((p.name, m.group(1)))
    assert calls, "expected at least the checkpoint and resume loaders"
    assert all("weights_only=True" in args for _, args in calls), calls


# --------------------------------------------------------------------------------------------------
# training faults


def _synthetic_dataset(root: Path, n: int = 4, size: int = 24) -> Path:
    """A dataset folder of ``n`` random images whose masks are thresholds of the red channel (learnable)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.json").write_text(json.dumps(CLASSES.to_json()))
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / "images" / f"s{i}.png")
        Image.fromarray((img[..., 0] // 86).astype(np.uint8)).save(root / "masks" / f"s{i}.png")
    (root / "train.txt").write_text("".join(f"s{i}\n" for i in range(n)))
    return root


def _cfg(**kw) -> TrainConfig:
    base = dict(epochs=3, batch_size=2, crop_size=(24, 24), scale_range=(1.0, 1.0), device="cpu", lr=1e-2, color_jitter=0.0)
    base.update(kw)
    return TrainConfig(**base)


def _files(run: Path) -> dict[str, str]:
    return {p.name: _sha(p.read_bytes()) for p in sorted(run.iterdir()) if p.is_file()}


@pytest.mark.parametrize("fault", ["cancel", "nan"])
def test_cancel_or_nan_mid_epoch_keeps_the_last_good_checkpoint(tmp_path, fault):
    data = _synthetic_dataset(tmp_path / "data")
    run = tmp_path / "run"
    token = CancelToken()
    snapshot = {}

    def cb(event, info):
        if event == "epoch" and info["epoch"] == 1:
            snapshot.update(_files(run))
        if event == "step" and info["epoch"] == 1 and info["step"] == 1:  # mid-way through the 2nd epoch
            if fault == "cancel":
                token.cancel()
            else:
                with torch.no_grad():
                    next(trainer_model[0].parameters()).fill_(float("nan"))

    trainer_model = []
    import segstudio.engine.trainer as tr

    real_init = tr.Trainer.__init__

    def spy_init(self, model, *a, **k):
        trainer_model.append(model)
        real_init(self, model, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tr.Trainer, "__init__", spy_init)
        expected = Cancelled if fault == "cancel" else FloatingPointError
        with pytest.raises(expected) as err:
            train_on_folder(data, run, model_name="simple_cnn", model_kwargs={"depth": 1, "width": 4}, config=_cfg(), callbacks=[cb], cancel=token)
    if fault == "nan":
        assert "loss became nan" in str(err.value) and "last good checkpoint is kept" in str(err.value)
    assert snapshot and _files(run) == snapshot  # nothing written after epoch 1
    for stem in ("model", "last"):
        loaded = load_checkpoint(run / f"{stem}.safetensors")
        assert loaded.card["training"]["epochs_done"] == 1
        assert all(torch.isfinite(v).all() for v in loaded.model.state_dict().values() if v.is_floating_point())


def test_killed_training_leaves_a_loadable_checkpoint_and_resumes(tmp_path):
    data = _synthetic_dataset(tmp_path / "data", n=6)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "segstudio", "train", "--data", str(data), "--model", "simple_cnn", "--model-arg", "depth=1",
           "--model-arg", "width=4", "--epochs", "100000", "--batch-size", "2", "--crop-size", "24", "--scale-range", "1,1",
           "--device", "cpu", "--jitter", "0", "-o", str(run)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120:  # wait for a few finished epochs, then kill wherever it is
            hist = run / "history.json"
            if hist.is_file() and len(json.loads(hist.read_text() or "[]")) >= 3:
                break
            time.sleep(0.05)
        else:
            pytest.fail("training never finished 3 epochs")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    model = load_checkpoint(run / "model.safetensors")
    last = load_checkpoint(run / "last.safetensors")
    done = last.card["training"]["epochs_done"]
    assert done >= 3 and model.card["training"]["epochs_done"] >= 3
    path = train_on_folder(data, run, model_name="simple_cnn", model_kwargs={"depth": 1, "width": 4},
                           config=_cfg(epochs=done + 1), resume=True)
    assert load_checkpoint(path).card["training"]["epochs_done"] == done + 1


# --------------------------------------------------------------------------------------------------
# model work off the GUI thread


def test_predict_and_finetune_run_on_worker_threads(tmp_path, qtbot, monkeypatch):
    import segstudio.engine.predictor as pred_mod
    import segstudio.gui.main_window as mw

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / f"i{i}.png")
    ckpt = save_checkpoint(tmp_path / "ck", _tiny(), new_card("simple_cnn", CLASSES, {"depth": 1, "width": 4}))
    threads = {"predict": [], "train": []}
    real_predict, real_train = pred_mod.Predictor.predict, mw.train_on_folder
    monkeypatch.setattr(pred_mod.Predictor, "predict", lambda self, im: threads["predict"].append(threading.get_ident()) or real_predict(self, im))
    real_many = pred_mod.Predictor.predict_many

    def many(self, *a, **k):  # the engine's folder pipeline, which the window's predictions go through
        for res in real_many(self, *a, **k):
            threads["predict"].append(threading.get_ident())
            yield res

    monkeypatch.setattr(pred_mod.Predictor, "predict_many", many)
    monkeypatch.setattr(mw, "train_on_folder", lambda *a, **k: threads["train"].append(threading.get_ident()) or real_train(*a, **k))
    win = mw.MainWindow(load_checkpoint(ckpt))
    qtbot.addWidget(win)
    win.finetune_config = _cfg(epochs=1, max_steps=1, holdout_fraction=0.0) if "holdout_fraction" in TrainConfig.__dataclass_fields__ else _cfg(epochs=1, max_steps=1)
    win.open_folder(folder)
    qtbot.waitUntil(lambda: win.job is None and win.current_doc() is not None and win.current_doc().source == "predicted", timeout=60_000)
    win.canvas.begin_stroke(5, 5)
    win.canvas.end_stroke()
    win.save_current()
    assert win.finetune()
    qtbot.waitUntil(lambda: win.job is None and bool(threads["train"]), timeout=120_000)
    main = threading.get_ident()
    assert threads["predict"] and threads["train"]
    assert main not in threads["predict"] and main not in threads["train"]
    win.close()


def test_out_of_memory_during_gui_predict_falls_back_with_a_notice(tmp_path, qtbot, monkeypatch):
    """An out-of-memory error injected at the Predictor's model boundary (``_run_model``) for the whole image:
    the prediction still completes (the Predictor's fallback: tiles / CPU) and the user sees the notice."""
    import segstudio.engine.predictor as pred_mod
    import segstudio.gui.main_window as mw

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (300, 260, 3), dtype=np.uint8)).save(folder / "big.png")
    ckpt = save_checkpoint(tmp_path / "ck", _tiny(), new_card("simple_cnn", CLASSES, {"depth": 1, "width": 4}))
    real = pred_mod.Predictor._run_model
    calls = []

    def run_model(self, x, device):
        calls.append((tuple(x.shape), threading.get_ident()))
        if x.shape[-2:] == (300, 260):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return real(self, x, device)

    monkeypatch.setattr(pred_mod.Predictor, "_run_model", run_model)
    win = mw.MainWindow(load_checkpoint(ckpt))
    qtbot.addWidget(win)
    shown = []  # what reached the GUI thread (the status bar shows the same text)
    win.predictorNotice.connect(lambda text: shown.append((text, threading.get_ident())))
    win.open_folder(folder)
    qtbot.waitUntil(lambda: win.job is None and win.current_doc() is not None and win.current_doc().source == "predicted", timeout=60_000)
    assert len(calls) > 1 and all(t != threading.get_ident() for _, t in calls)  # retried in tiles, on the worker
    qtbot.waitUntil(lambda: bool(shown), timeout=5_000)
    assert any("out of memory" in t and "tiles" in t for t, _ in shown)
    assert all(tid == threading.get_ident() for _, tid in shown)  # delivered on the GUI thread
    labels = win.current_doc().labels
    assert labels.shape == (300, 260) and labels.max() < 3
    win.close()


def test_holdout_split_accepts_non_utf8_file_names(tmp_path):
    """A fine-tune folder with a file name that is not UTF-8 (possible on Linux) must not crash the split."""
    from segstudio.engine.finetune import holdout_split
    from segstudio.io import DatasetSample

    names = [os.fsdecode(b"\xff\xfe_a.png"), "b.png", "c.png", "d.png", "e.png", "f.png"]
    samples = [DatasetSample(tmp_path / n, tmp_path / "labels" / n) for n in names]
    train, held = holdout_split(samples, 0.2)
    assert held and len(train) + len(held) == 6 and not set(map(id, train)) & set(map(id, held))
    assert holdout_split(samples[1:], 0.2) == holdout_split(samples[1:], 0.2)  # stable
