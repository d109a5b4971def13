"""Small and medium stacks: postfocus vs focus-stack, side by side (issue 16).

Stacks: the real ``beetle``, ``ring``, ``pcb`` and ``pcb_depthmap`` from
shared/data, and a 40-frame sub-megapixel stack made from ``keyboard`` scaled
to 800x450 (JPEG 95). Each is stacked by

* focus-stack (C++, OpenCV; ``--no-opencl``), built from ../shared/peers when
  missing (see that folder's README);
* postfocus with default settings (the processed stack kept, ``--cache`` in a
  fresh temporary folder for every run, so nothing is reused);
* postfocus ``--no-cache`` (streaming, nothing kept).

postfocus runs from this checkout (``src`` is put first on the child's
PYTHONPATH), or from ``--src DIR`` (e.g. an older version exported with
``git archive``, to compare). Every run is a separate process under ``/usr/bin/time -v``: wall time, CPU
time (user + system) and peak memory (maximum resident set size). The runs
of the three go round in turn, ``--repeat`` times; the table shows medians
and postfocus's wall time as a multiple of focus-stack's. The load average
is printed at the start and the end: on a busy machine compare CPU times.

Usage::

    python bench/bench_small.py [--repeat 3] [--stacks beetle ring ...] [--src DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "src"))
from peers import timed_cpu  # noqa: E402

from postfocus.io.base import natural_key  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
FOCUS_STACK = Path("/tmp/focus-stack/build/focus-stack")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
STACKS = ("beetle", "ring", "pcb", "pcb_depthmap", "keyboard40")


def ensure_focus_stack() -> Path:
    """The focus-stack binary, built from the source in ../shared/peers when it is not there yet."""
    if FOCUS_STACK.exists():
        return FOCUS_STACK
    tarball = sorted((SHARED / "peers").glob("focus-stack-*.tar.gz"))
    if not tarball:
        sys.exit(f"focus-stack is not built and no source is in {SHARED / 'peers'}")
    print("building focus-stack (about a minute) ...", file=sys.stderr)
    if not shutil.which("make") or subprocess.run(["pkg-config", "--exists", "opencv4"]).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "build-essential", "pkg-config", "libopencv-dev"], check=True)
    subprocess.run(["tar", "xzf", str(tarball[-1]), "-C", "/tmp"], check=True)
    subprocess.run(["make", "-C", "/tmp/focus-stack", "-j2"], check=True, capture_output=True)
    return FOCUS_STACK


def frames_of(folder: Path) -> list[Path]:
    """The image files of a stack folder, in focus order."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: natural_key(p.name))


def keyboard40(work: Path, size: tuple[int, int] = (800, 450)) -> list[Path]:
    """40 frames of the keyboard stack scaled to ``size`` (w, h), JPEG 95."""
    out = work / "keyboard40"
    out.mkdir()
    paths = []
    for k, src in enumerate(frames_of(DATA / "keyboard")[:40]):
        p = out / f"frame_{k:02d}.jpg"
        cv2.imwrite(str(p), cv2.resize(cv2.imread(str(src)), size, interpolation=cv2.INTER_AREA),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(p)
    return paths


def run_tools(frames: list[Path], work: Path, binary: Path) -> dict[str, tuple[float, float, float]]:
    """One run of each tool: {tool: (wall s, cpu s, peak MB)}."""
    out = {}
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    pf = [sys.executable, "-m", "postfocus", "-q", "stack", *map(str, frames), "-o", str(work / "pf.jpg")]
    runs = {
        "focus-stack": [str(binary), "--no-opencl", f"--output={work / 'fs.jpg'}", *map(str, frames)],
        "postfocus": [*pf, "--cache", str(cache)],
        "postfocus --no-cache": [*pf, "--no-cache"],
    }
    for tool, cmd in runs.items():
        wall, peak, code, err, cpu = timed_cpu(cmd)
        if code != 0:
            sys.exit(f"{tool} failed on {frames[0].parent.name}:\n{err[-2000:]}")
        out[tool] = (wall, cpu, peak)
    shutil.rmtree(cache, ignore_errors=True)
    return out


def use_source(src: Path) -> None:
    """Child processes import postfocus from ``src``."""
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(src) + (os.pathsep + path if path else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each tool per stack (medians are shown)")
    ap.add_argument("--stacks", nargs="*", default=list(STACKS), choices=STACKS)
    ap.add_argument("--src", type=Path, default=ROOT / "src", help="the postfocus source tree to run")
    args = ap.parse_args()
    binary = ensure_focus_stack()
    use_source(args.src.resolve())
    load_start = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="pf-small-") as tmp:
        work = Path(tmp)
        for name in args.stacks:
            frames = keyboard40(work) if name == "keyboard40" else frames_of(DATA / name)
            h, w = cv2.imread(str(frames[0])).shape[:2]
            results: dict[str, list[tuple[float, float, float]]] = {}
            for _ in range(args.repeat):
                for tool, measured in run_tools(frames, work, binary).items():
                    results.setdefault(tool, []).append(measured)
            med = {tool: tuple(statistics.median(r[j] for r in runs) for j in range(3)) for tool, runs in results.items()}
            rows.append((name, len(frames), f"{w}x{h}", med))
            print(f"{name}: done", file=sys.stderr)
    load_end = os.getloadavg()
    print(f"load average (1, 5, 15 min) at the start {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}, "
          f"at the end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f} ({os.cpu_count()} cores); "
          f"medians of {args.repeat}; postfocus from {args.src.resolve()}")
    print()
    print("| stack | frames | size | focus-stack wall s / CPU s / MB | postfocus (default) wall / CPU / MB | "
          "wall vs focus-stack | postfocus --no-cache wall / CPU / MB | wall vs focus-stack |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n, size, med in rows:
        fs, pf, nc = med["focus-stack"], med["postfocus"], med["postfocus --no-cache"]

        def cell(m: tuple[float, float, float]) -> str:
            return f"{m[0]:.2f} / {m[1]:.2f} / {m[2]:.0f}"

        print(f"| {name} | {n} | {size} | {cell(fs)} | {cell(pf)} | {pf[0] / fs[0]:.2f}x | {cell(nc)} | "
              f"{nc[0] / fs[0]:.2f}x |")


if __name__ == "__main__":
    main()
