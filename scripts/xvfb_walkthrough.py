"""A new user's session in a real X window, driven like a person would drive it (issue 31).

Starts ``Xvfb :99 -screen 0 1920x1080x24`` (unless ``--display`` names a running server), launches SegStudio with
a fresh settings folder, and drives it with ``xdotool`` (keys, mouse strokes and clicks): first start, open a folder
of another domain, edit classes (rename, add, reorder, delete), label three images with brush / click / fill,
fine-tune, switch folders twice, quit and restart. After each step it measures the window (``xdotool
getwindowgeometry``) and the canvas (from a screenshot: the canvas is the only area painted in its background grey
around the fitted image), checks the saved label files (values are class ids of the folder's classes or 255), and
saves a screenshot in ``docs/screenshots/``. The results go to ``docs/xvfb-walkthrough.json``.

Run (needs ``apt-get install xvfb xdotool`` and the Qt xcb libraries)::

    PYTHONPATH=. python scripts/xvfb_walkthrough.py --crack ../shared/datasets/crackforest --xray ../shared/datasets/jsrt_scr

Nothing here reaches into the app: what it knows comes from the screen, the window system and the files on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageGrab

ROOT = Path(__file__).resolve().parents[1]
CANVAS_BG = (40, 40, 40)  # the canvas's background brush (segstudio.gui.canvas.Canvas)
SHOTS = ROOT / "docs" / "screenshots"


class Session:
    """The X display, the app process and the checks so far."""

    def __init__(self, display: str, work: Path, screen: tuple[int, int]) -> None:
        self.display, self.work, self.screen = display, work, screen
        self.env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb", XDG_CONFIG_HOME=str(work / "config"),
                        SEGSTUDIO_HOME=str(work / "home"), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
                        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.env.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
        self.proc: subprocess.Popen | None = None
        self.win: str | None = None
        self.steps: list[dict] = []
        self.log = open(work / "app.log", "a")

    # -- the window system --------------------------------------------------------------------------
    def xdo(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True)
        if check and out.returncode != 0:
            raise RuntimeError(f"xdotool {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout.strip()

    def windows(self, name: str) -> list[str]:
        out = self.xdo("search", "--onlyvisible", "--name", name, check=False)
        return [w for w in out.split() if w]

    def wait_window(self, name: str, timeout: float = 60.0, gone: bool = False) -> str | None:
        t0 = time.time()
        while time.time() - t0 < timeout:
            ws = [w for w in self.windows(name) if w != self.win]
            if gone and not ws:
                return None
            if not gone and ws:
                return ws[-1]
            time.sleep(0.3)
        if gone:
            raise TimeoutError(f"window {name!r} still open after {timeout} s")
        raise TimeoutError(f"no window {name!r} after {timeout} s")

    def geometry(self, wid: str | None = None) -> dict:
        out = self.xdo("getwindowgeometry", "--shell", wid or self.win)
        g = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return {k.lower(): int(v) for k, v in g.items() if k in ("X", "Y", "WIDTH", "HEIGHT")}

    def focus(self, wid: str) -> None:
        self.xdo("windowfocus", "--sync", wid, check=False)
        time.sleep(0.2)

    def key(self, *keys: str, wid: str | None = None, pause: float = 0.25) -> None:
        self.focus(wid or self.win)
        for k in keys:
            self.xdo("key", "--clearmodifiers", k)
            time.sleep(pause)

    def type(self, text: str, wid: str | None = None) -> None:
        self.focus(wid or self.win)
        self.xdo("type", "--delay", "30", text)
        time.sleep(0.3)

    def drag(self, points: list[tuple[int, int]]) -> None:
        self.focus(self.win)
        x, y = points[0]
        self.xdo("mousemove", "--sync", str(x), str(y))
        self.xdo("mousedown", "1")
        for x, y in points[1:]:
            self.xdo("mousemove", "--sync", str(x), str(y))
            time.sleep(0.03)
        self.xdo("mouseup", "1")
        time.sleep(0.4)

    def click(self, x: int, y: int) -> None:
        self.drag([(x, y)])

    def shot(self, name: str, keep: bool = True) -> np.ndarray:
        """The whole screen as an array; the window's part saved as ``docs/screenshots/xvfb-<name>.png`` (``keep``)
        or in the work folder (a shot taken only to find the image on screen)."""
        img = ImageGrab.grab(xdisplay=self.display)
        g = self.geometry()
        crop = img.crop((g["x"], g["y"], g["x"] + g["width"], g["y"] + g["height"]))
        SHOTS.mkdir(parents=True, exist_ok=True)
        crop.save((SHOTS if keep else self.work) / f"xvfb-{name}.png")
        return np.asarray(img.convert("RGB"))

    # -- the app ------------------------------------------------------------------------------------
    def start(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "segstudio", *args], env=self.env, stdout=self.log, stderr=self.log, cwd=self.work)
        t0 = time.time()
        while time.time() - t0 < 120:
            ws = self.windows("^SegStudio")
            if ws:
                self.win = max(ws, key=lambda w: self.geometry(w)["width"] * self.geometry(w)["height"])
                time.sleep(3)
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited with {self.proc.returncode}; see {self.work / 'app.log'}")
            time.sleep(0.5)
        raise TimeoutError("the main window did not appear")

    def quit(self) -> int:
        self.key("ctrl+q")
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            return self.proc.wait(30)

    # -- measurements -------------------------------------------------------------------------------
    def canvas_box(self, screen: np.ndarray) -> tuple[int, int, int, int] | None:
        """``(x0, y0, x1, y1)`` of the canvas inside the window (its grey background plus the image it frames)."""
        g = self.geometry()
        win = screen[g["y"] : g["y"] + g["height"], g["x"] : g["x"] + g["width"]]
        grey = np.all(win == CANVAS_BG, axis=-1)
        rows, cols = np.flatnonzero(grey.sum(1) > 40), np.flatnonzero(grey.sum(0) > 40)
        if not len(rows) or not len(cols):
            return None
        return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1

    def image_box(self, screen: np.ndarray) -> tuple[int, int, int, int] | None:
        """Screen ``(x0, y0, x1, y1)`` of the image inside the canvas (the non-grey part of the canvas box)."""
        box = self.canvas_box(screen)
        if box is None:
            return None
        g = self.geometry()
        x0, y0, x1, y1 = box
        sub = screen[g["y"] + y0 : g["y"] + y1, g["x"] + x0 : g["x"] + x1]
        img = ~np.all(sub == CANVAS_BG, axis=-1)
        rows, cols = np.flatnonzero(img.mean(1) > 0.5), np.flatnonzero(img.mean(0) > 0.5)
        if not len(rows) or not len(cols):
            return None
        return g["x"] + x0 + int(cols[0]), g["y"] + y0 + int(rows[0]), g["x"] + x0 + int(cols[-1]) + 1, g["y"] + y0 + int(rows[-1]) + 1

    def record(self, step: str, folder: Path | None = None, note: str = "", **extra) -> dict:
        time.sleep(1.0)
        screen = self.shot(step)
        g = self.geometry()
        box = self.canvas_box(screen)
        canvas_share = None if box is None else round((box[2] - box[0]) * (box[3] - box[1]) / (g["width"] * g["height"]), 3)
        sw, sh = self.screen
        rec = {
            "step": step,
            "window": g,
            "window_height": g["height"],
            "on_screen": g["x"] >= 0 and g["y"] >= 0 and g["x"] + g["width"] <= sw and g["y"] + g["height"] <= sh,
            "canvas_box": box,
            "canvas_share": canvas_share,
            "screenshot": f"docs/screenshots/xvfb-{step}.png",
            **extra,
        }
        if folder is not None:
            rec["labels"] = check_labels(folder)
        if note:
            rec["note"] = note
        self.steps.append(rec)
        print(json.dumps({k: rec[k] for k in ("step", "window_height", "on_screen", "canvas_share")}), flush=True)
        return rec


def check_labels(folder: Path) -> dict:
    """The folder's saved label files: per file, the values and whether each is a class id or 255."""
    lab = folder / "labels"
    cj = lab / "classes.json"
    names = [c["name"] for c in json.loads(cj.read_text())] if cj.is_file() else None
    files = {}
    for p in sorted(lab.glob("*.png")):
        if p.name.endswith(".prov.png") or p.parent.name != "labels":
            continue
        a = np.asarray(Image.open(p))
        vals = sorted(int(v) for v in np.unique(a))
        k = len(names) if names else 0
        files[p.name] = {
            "values": vals,
            "labelled_px": int((a != 255).sum()),
            "valid": all(v == 255 or v < k for v in vals),
        }
    prov = {}
    for p in sorted((lab / "provenance").glob("*.png")) if (lab / "provenance").is_dir() else []:
        a = np.asarray(Image.open(p))
        prov[p.name] = {"human_px": int((a == 2).sum()), "model_px": int((a == 1).sum())}
    project = folder / "segstudio.json"
    statuses = {}
    if project.is_file():
        statuses = {n: r.get("status") for n, r in json.loads(project.read_text()).get("images", {}).items()}
    return {"classes": names, "files": files, "all_valid": all(f["valid"] for f in files.values()), "provenance": prov, "statuses": statuses}


def make_folder(src: Path, dst: Path, n: int) -> Path:
    """``n`` images of a dataset's val split copied into ``dst`` (images only: a user's new folder)."""
    dst.mkdir(parents=True, exist_ok=True)
    stems = (src / "val.txt").read_text().split()[:n]
    for s in stems:
        img = next((src / "images").glob(f"{s}.*"))
        shutil.copy2(img, dst / img.name)
    return dst


def between(box, fx: float, fy: float) -> tuple[int, int]:
    x0, y0, x1, y1 = box
    return int(x0 + fx * (x1 - x0)), int(y0 + fy * (y1 - y0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--xray", type=Path, default=ROOT.parent / "shared" / "datasets" / "jsrt_scr")
    ap.add_argument("--crack", type=Path, default=ROOT.parent / "shared" / "datasets" / "crackforest")
    ap.add_argument("--work", type=Path, default=Path("/tmp/segstudio-walkthrough"))
    ap.add_argument("--display", default=":99")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "xvfb-walkthrough.json")
    ap.add_argument("--finetune-timeout", type=float, default=900.0)
    args = ap.parse_args(argv)

    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    xray = make_folder(args.xray, args.work / "xray", 4)
    crack = make_folder(args.crack, args.work / "crack", 4)
    xvfb = None
    if subprocess.run(["xdpyinfo", "-display", args.display], capture_output=True).returncode != 0:
        xvfb = subprocess.Popen(["Xvfb", args.display, "-screen", "0", "1920x1080x24", "-nolisten", "tcp"])
        time.sleep(2)
    s = Session(args.display, args.work, (1920, 1080))
    result = {"display": args.display, "screen": [1920, 1080], "started": time.strftime("%Y-%m-%d %H:%M:%S"), "steps": s.steps}
    try:
        # 1. first start: the bundled samples with the default model
        s.start()
        time.sleep(8)  # the first prediction
        s.record("1-first-start")

        # 2. open a folder of another domain (chest X-rays): Ctrl+O, type the path; no model knows it: the question
        s.key("ctrl+o")
        dlg = s.wait_window("Open image folder")
        s.key("ctrl+a", wid=dlg)
        s.type(str(xray), wid=dlg)
        s.key("Return", wid=dlg)
        if s.windows("Open image folder"):
            s.key("Return", wid=dlg)
        ask = s.wait_window("model for this folder", timeout=20)
        s.key("Return", wid=ask)  # the first model offered (the one in use)
        time.sleep(8)
        s.record("2-open-xray", xray)

        # 3. edit classes: rename, add, reorder, delete (keyboard, in the class editor)
        s.key("ctrl+shift+k")
        ed = s.wait_window("Edit classes")
        s.focus(ed)
        s.key("Home", "F2", "ctrl+a", wid=ed)
        s.type("lung", wid=ed)
        s.key("Return", wid=ed)  # rename Sky -> lung
        s.key("Down", "F2", "ctrl+a", wid=ed)
        s.type("heart", wid=ed)
        s.key("Return", wid=ed)  # rename Building -> heart
        s.key("Tab", "space", wid=ed)  # Add (the list's next widget): a new class, selected
        s.key("shift+Tab", "F2", "ctrl+a", wid=ed)
        s.type("clavicle", wid=ed)
        s.key("Return", wid=ed)
        s.key("Tab", "Tab", "Tab", "Tab", "space", "space", wid=ed)  # Up twice: clavicle moves up
        s.key("shift+Tab", "shift+Tab", "shift+Tab", "shift+Tab", wid=ed)  # back to the list
        s.key("End", "Delete", wid=ed)  # delete the last class
        s.shot("3a-class-editor")  # the editor over the window: renamed, added, moved up, last class deleted
        s.key("Tab", "Tab", "Tab", "Tab", "Tab", "Tab", "Tab", "Tab", wid=ed)
        for _ in range(4):
            if not s.windows("Edit classes"):
                break
            s.key("Return", wid=ed)
            time.sleep(0.5)
        q = s.windows("relabel")
        if q:
            s.key("y", wid=q[-1])
        time.sleep(3)
        s.record("3-classes-edited", xray)

        # 4. label three images: brush (class 1), click tool (class 2), fill (class 3)
        screen = s.shot("4-before-labelling", keep=False)
        box = s.image_box(screen)
        s.key("b", "1")
        s.drag([between(box, 0.3, 0.35), between(box, 0.35, 0.5), between(box, 0.3, 0.65)])
        s.key("Right")
        time.sleep(6)
        s.record("4a-brushed", xray)
        screen = s.shot("4b-before-click", keep=False)
        box = s.image_box(screen) or box
        s.key("c", "2")
        time.sleep(12)  # the click model encodes the image
        s.click(*between(box, 0.55, 0.6))
        time.sleep(6)
        s.key("Return")
        time.sleep(1)
        s.key("Right")
        time.sleep(6)
        s.record("4b-clicked", xray)
        screen = s.shot("4c-before-fill", keep=False)
        box = s.image_box(screen) or box
        s.key("f", "3")
        s.click(*between(box, 0.5, 0.05))
        s.key("ctrl+s")
        time.sleep(2)
        s.record("4c-filled", xray)

        # 5. fine-tune (Ctrl+T, the one-click recipe within its CPU budget)
        s.key("ctrl+t")
        t0 = time.time()
        mid = None
        while time.time() - t0 < args.finetune_timeout:
            time.sleep(5)
            if mid is None and time.time() - t0 > 40:
                mid = s.record("5a-finetune-running", note="the Training dock open during the run")
            if (xray / "labels" / "models" / "v001" / "model.safetensors").is_file() and time.time() - t0 > 30:
                project = json.loads((xray / "segstudio.json").read_text()) if (xray / "segstudio.json").is_file() else {}
                if str(project.get("current_version", "")).startswith("v001") or "v001" in str(project.get("current_version")):
                    break
        time.sleep(15)
        s.record("5b-finetuned", xray, seconds=round(time.time() - t0, 1))

        # 6. switch folders twice: the crack folder (a question: which model), then back to the X-rays
        for step, folder in (("6a-open-crack", crack), ("6b-back-to-xray", xray)):
            s.key("ctrl+o")
            dlg = s.wait_window("Open image folder")
            s.key("ctrl+a", wid=dlg)
            s.type(str(folder), wid=dlg)
            s.key("Return", wid=dlg)
            if s.windows("Open image folder"):
                s.key("Return", wid=dlg)
            time.sleep(3)
            ask = s.windows("model for this folder")
            if ask:
                s.key("Return", wid=ask[-1])
            time.sleep(8)
            s.record(step, folder)

        # 7. quit and restart (the last geometry is restored, clamped to the screen)
        rc = s.quit()
        s.steps.append({"step": "7a-quit", "exit_code": rc})
        s.start(str(xray))
        time.sleep(8)
        s.record("7b-restarted", xray)
        s.quit()
    except Exception as exc:  # the record says how far it got
        result["error"] = f"{type(exc).__name__}: {exc}"
        try:
            s.shot("error", keep=False)
        except Exception:
            pass
        if s.proc is not None and s.proc.poll() is None:
            s.proc.terminate()
    finally:
        if xvfb is not None:
            xvfb.terminate()
    measured = [r for r in s.steps if "window_height" in r]
    at_defaults = [r for r in measured if r["step"] not in ("5a-finetune-running",)]
    result["checks"] = {
        "window_never_exceeds_screen": bool(measured) and all(r["on_screen"] for r in measured),
        "max_window_height": max((r["window_height"] for r in measured), default=None),
        "canvas_share_min_at_default_docks": min((r["canvas_share"] or 0 for r in at_defaults), default=None),
        "canvas_at_least_60pct_at_default_docks": bool(at_defaults) and all((r["canvas_share"] or 0) >= 0.6 for r in at_defaults),
        "saved_labels_valid": all(r.get("labels", {}).get("all_valid", True) for r in measured),
    }
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    result["commit"] = commit
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["checks"], indent=1))
    return 0 if "error" not in result and all(v for k, v in result["checks"].items() if isinstance(v, bool)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
