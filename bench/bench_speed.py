"""Speed and memory on every stack shape: postfocus vs focus-stack, one table (issue 16).

Every row stacks the same frames with both tools, each a separate process under
``/usr/bin/time -v`` (wall time, CPU time = user + system, peak memory = maximum
resident set size), the tools taking turns, ``--repeat`` times; the table shows
medians, postfocus's wall time and peak memory as multiples of focus-stack's,
and whether issue 16's targets are met. The order alternates (``turn_order``:
focus-stack then postfocus, then postfocus then focus-stack, ...), so neither tool
always runs right after the other; the paired column is the median of each
repetition's own ratio (its two runs are back to back), beside the ratio of the
medians. The load average at each row's start and end is printed.

Rows (``--rows`` picks some; all by default):

``beetle`` ``ring`` ``pcb`` ``pcb_depthmap`` ``keyboard`` ``algae``
    the real stacks in shared/data (keyboard: 41 x 1920x1080; algae: 5 x 20 MP PNG)
``sub1mp``
    40 frames of ``keyboard`` scaled to 800x450 (JPEG 95): a sub-megapixel stack
``mp4_4k``
    30 frames of 3840x2160 (``keyboard`` scaled up, back and forth) as an H.264
    MP4 for postfocus and as JPEG frames for focus-stack (which reads no video)
``big``
    ``--big-frames`` (100) JPEG frames of 6000x4000 (24 MP), same source, going through focus once (the
    41 source frames 2-3 times each in a row at 100; back and forth through them, as before the eighteenth
    session, the depth map picks copies 40-80 frames apart and the picture is worse); several counts
    (``--big-frames 30 50 100``) give one row each and a line on how postfocus's peak memory and CPU time grow
    with the count. focus-stack runs only on counts up to ``--peer-max-frames`` (50): it keeps
    every frame, 11 GB at 100 frames in the eighth session, too much for a machine shared with other work
``depth``
    ``postfocus depth`` vs ``focus-stack --depthmap`` on ``pcb_depthmap``
``flat``
    postfocus's peak memory on 60 and on 30 frames of the 4K MP4 (target: within 1.1x)
``latency``
    on the processed 30-frame 4K stack, library calls in one process: the first tap
    after processing (it may make the depth a tap reads), a tap (median of the next
    20), a range merge (a quarter of the frames) and ``aperture()`` (f/2.8,
    focus at the centre; it reads the all-in-focus image and the depth map kept in
    the stack folder), medians of ``--repeat``; the first ``aperture()`` after
    processing (which makes the depth map and keeps it) is shown too

postfocus runs with default settings, which keep the processed stack (``--cache``
in a fresh folder every run, so nothing is reused), and with ``--no-cache`` for
comparison. focus-stack runs with ``--no-opencl`` (no GPU here); it is built
from ../shared/peers when missing.

Python imports: this environment sets PYTHONDONTWRITEBYTECODE, which makes every
run compile postfocus's ~80 modules again (~0.07 s of CPU); an installed package
has its bytecode compiled once. The child processes get a bytecode cache
(``PYTHONPYCACHEPREFIX`` in the work folder, filled before the first run).

Usage::

    python bench/bench_speed.py                               # every row (long: ~1 h with --big-frames 100)
    python bench/bench_speed.py --rows beetle ring sub1mp     # some rows
    python bench/bench_speed.py --rows big --big-frames 30 --repeat 1
    python bench/bench_speed.py --rows big --big-frames 30 50 100 --repeat 1   # focus-stack on 30 and 50 only
    python bench/bench_speed.py --src /tmp/base/src           # another version of postfocus (git archive)
    python bench/bench_speed.py --rows beetle sub1mp --base /tmp/base/src   # and an older one, interleaved

With ``--base SRC`` the small rows (the real stacks, ``sub1mp``, ``depth``) also run that
version of postfocus, in turn with the others in every repetition, and a second table
compares the two versions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
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
REAL = ("beetle", "ring", "pcb", "pcb_depthmap", "keyboard", "algae")
ROWS = (*REAL, "sub1mp", "mp4_4k", "big", "depth", "flat", "latency")
WALL_TARGET = {"mp4_4k": 0.2}  # others 0.5
MEMORY_TARGET = 0.3
FLAT_TARGET = 1.1
LATENCY_TARGET = {"tap": 0.1, "first tap": 0.1, "range merge": 1.0, "aperture": 2.0}
ROW_LOADS: dict[str, tuple[float, float]] = {}  # one-minute load average at the start and the end of a row


@dataclass
class Measured:
    """Medians of one tool's runs: wall s, CPU s, peak MB."""

    runs: list[tuple[float, float, float]] = field(default_factory=list)

    def median(self, k: int) -> float:
        return statistics.median(r[k] for r in self.runs)

    def cell(self) -> str:
        return f"{self.median(0):.2f} / {self.median(1):.2f} / {self.median(2):.0f}"


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


def sweep_order(n_source: int, count: int) -> list[int]:
    """Frame indices going back and forth through a source sweep of ``n_source`` frames."""
    order, i, step = [], 0, 1
    while len(order) < count:
        order.append(i)
        if not 0 <= i + step < n_source:
            step = -step
        i += step
    return order


def through_focus_order(n_source: int, count: int) -> list[int]:
    """Frame indices that go through a source sweep of ``n_source`` frames once: its first ``count`` frames, or,
    for more frames than the source has, each source frame ``count / n_source`` times in a row (rounded down)."""
    if count <= n_source:
        return list(range(count))
    return [k * n_source // count for k in range(count)]


def scaled_keyboard(work: Path, count: int, size: tuple[int, int], quality: int = 95, *, once: bool = False
                    ) -> list[Path]:
    """``count`` JPEG frames of the keyboard stack resized to ``size`` (w, h), back and forth through it
    (``once``: through focus once, :func:`through_focus_order`)."""
    src = frames_of(DATA / "keyboard")
    out = work / f"keyboard_{count}_{size[0]}{'_once' if once else ''}"
    if out.exists():
        return frames_of(out)
    out.mkdir()
    up = size[0] > 1920
    paths, cache = [], {}
    for k, i in enumerate((through_focus_order if once else sweep_order)(len(src), count)):
        if i not in cache:
            cache = {i: cv2.resize(cv2.imread(str(src[i])), size, interpolation=cv2.INTER_CUBIC if up else cv2.INTER_AREA)}
        p = out / f"frame_{k:03d}.jpg"
        cv2.imwrite(str(p), cache[i], [cv2.IMWRITE_JPEG_QUALITY, quality])
        paths.append(p)
    return paths


def sweep_mp4(work: Path, count: int) -> tuple[Path, list[Path]]:
    """The 4K sweep as an H.264 MP4 (for postfocus) and as its JPEG frames (for focus-stack)."""
    from postfocus.io.images import read_image
    from postfocus.io.video_write import write_video

    paths = scaled_keyboard(work, count, (3840, 2160))
    mp4 = work / f"sweep_{count}.mp4"
    if not mp4.exists():
        write_video((read_image(p) for p in paths), mp4, fps=30, crf=18)
    return mp4, paths


def child_env(src: Path, work: Path) -> dict[str, str]:
    """Set the environment of the child processes: ``src`` first on the path, a bytecode cache (see the
    module docstring), filled here."""
    env = os.environ
    env["PYTHONPATH"] = str(src) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(src / "postfocus")], check=True,
                   stdout=subprocess.DEVNULL)
    return dict(env)


def run(cmd: list[str], env: dict[str, str], what: str) -> tuple[float, float, float]:
    wall, peak, code, err, cpu = timed_cpu(cmd)
    if code != 0:
        sys.exit(f"{what} failed:\n{err[-2000:]}")
    return wall, cpu, peak


def turn_order(tools: list[str], repeat: int) -> list[list[str]]:
    """The order the tools run in each of ``repeat`` repetitions: as given, then reversed, and so on.

    The first two tools (focus-stack and the postfocus command the row is about) are always next to each
    other, so each repetition holds one pair run back to back, and each of the two runs first in every
    other repetition (A B, B A, A B, ...): neither always runs right after the other's load.
    """
    return [list(tools) if k % 2 == 0 else list(reversed(tools)) for k in range(repeat)]


def paired_ratio(mine: Measured, theirs: Measured, k: int) -> float:
    """The median over the repetitions of ``mine``'s run against ``theirs``'s run of the same repetition
    (column ``k``: 0 wall, 1 CPU, 2 peak)."""
    return statistics.median(a[k] / b[k] for a, b in zip(mine.runs, theirs.runs))


def compare(name: str, fs_cmd: list[str] | None, pf_cmds: dict[str, list[str]], repeat: int, env: dict[str, str],
            work: Path) -> dict[str, Measured]:
    """The tools in the order of ``turn_order``, ``repeat`` times; postfocus's default runs get a fresh
    ``--cache`` each (focus-stack not at all without ``fs_cmd``). The load average is printed at the start and
    the end of the row."""
    # focus-stack, the row's postfocus command, the base's (next to it, for the paired this/base ratio), the rest
    first = [tool for tool in ("postfocus depth", "postfocus", "base") if tool in pf_cmds]
    cmds = {**({"focus-stack": fs_cmd} if fs_cmd else {}), **{tool: pf_cmds[tool] for tool in first}, **pf_cmds}
    out = {tool: Measured() for tool in cmds}
    load = os.getloadavg()[0]
    for order in turn_order(list(cmds), repeat):
        for tool in order:
            cmd = cmds[tool]
            cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work)) if "{cache}" in cmd else None
            cmd = [c.replace("{cache}", str(cache)) for c in cmd]
            out[tool].runs.append(run(cmd, env, f"{tool} on {name}"))
            if cache is not None:
                shutil.rmtree(cache, ignore_errors=True)
    out_load = os.getloadavg()[0]
    print(f"  {name}: load {load:.2f} at the start, {out_load:.2f} at the end", file=sys.stderr)
    ROW_LOADS[name] = (load, out_load)
    return out


def growth(rows: list[tuple[int, dict[str, Measured]]]) -> list[str]:
    """Lines of the extra table on how postfocus's peak memory and CPU time grow with the 24 MP row's frame
    count (``rows``: frames and the row's medians; nothing for fewer than two counts). Flat memory is issue
    16's third target (:data:`FLAT_TARGET`, the peak of the most frames over the fewest's)."""
    rows = sorted(rows, key=lambda row: row[0])
    if len(rows) < 2:
        return []
    (n0, first), (n1, last) = rows[0], rows[-1]
    lines = []
    for tool in ("postfocus", "postfocus --no-cache"):
        if tool not in first or tool not in last:
            continue
        peaks = ", ".join(f"{n}: {med[tool].median(2):.0f} MB" for n, med in rows if tool in med)
        per_frame = ", ".join(f"{n}: {med[tool].median(1) / n:.2f} s" for n, med in rows if tool in med)
        ratio = last[tool].median(2) / first[tool].median(2)
        lines.append(f"| 24 MP, {tool}: peak {n1} / {n0} frames | {peaks} | CPU a frame {per_frame} | "
                     f"{ratio:.2f}x (target {FLAT_TARGET}x) | {'met' if ratio <= FLAT_TARGET else 'NOT met'} |")
    return lines


def pf(*args: str, src: Path | None = None) -> list[str]:
    """The postfocus command line (from ``src`` instead of the tree on PYTHONPATH if given)."""
    prefix = ["env", f"PYTHONPATH={src}"] if src is not None else []
    return [*prefix, sys.executable, "-m", "postfocus", "-q", *args]


LATENCY = r"""
import json, statistics, sys, time
import numpy as np
from postfocus import process, tap
from postfocus.products.aperture import aperture
ps = process(sys.argv[1], cache_dir=sys.argv[2])
h, w = ps.size
rng = np.random.default_rng(0)


def timed(call):
    t, c = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - t, time.process_time() - c


first_tap = timed(lambda: tap(ps, rng.uniform(0, w - 1), rng.uniform(0, h - 1)))  # may make the tap's depth
taps = [timed(lambda: tap(ps, rng.uniform(0, w - 1), rng.uniform(0, h - 1))) for _ in range(20)]
n = len(ps.used)
render = lambda: aperture(ps, focus_at_point=(w / 2, h / 2), f_number=2.8)
first = timed(render)
ranges, apertures = [], []
for _ in range(int(sys.argv[3])):
    ranges.append(timed(lambda: ps.merge(frames=ps.used[n // 4 : n // 2])))
    apertures.append(timed(render))
med = lambda runs: [statistics.median(r[k] for r in runs) for k in range(2)]
print(json.dumps({"tap": med(taps), "first tap": list(first_tap), "range merge": med(ranges), "aperture": med(apertures),
                  "first aperture (makes and keeps the depth map)": list(first)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="*", default=list(ROWS), choices=ROWS)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each tool per row (medians are shown)")
    ap.add_argument("--big-frames", type=int, nargs="+", default=[100],
                    help="frames of the 24 MP row (several: one row each, and how the peak grows)")
    ap.add_argument("--peer-max-frames", type=int, default=50,
                    help="focus-stack runs on the 24 MP row only up to this many frames (its memory grows with them)")
    ap.add_argument("--no-streaming", action="store_true", help="leave out the postfocus --no-cache runs")
    ap.add_argument("--src", type=Path, default=ROOT / "src", help="the postfocus source tree to run")
    ap.add_argument("--base", type=Path, default=None,
                    help="another postfocus source tree, run in turn with --src on the small rows")
    ap.add_argument("--workdir", type=Path, default=None, help="where to build the test stacks (big: ~1 GB)")
    args = ap.parse_args()
    binary = str(ensure_focus_stack())
    load_start = os.getloadavg()
    table, extra = [], []
    with tempfile.TemporaryDirectory(prefix="pf-speed-", dir=args.workdir) as tmp:
        work = Path(tmp)
        env = child_env(args.src.resolve(), work)
        base = args.base.resolve() if args.base else None
        if base is not None:
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(base / "postfocus")], check=True,
                           stdout=subprocess.DEVNULL)
        big_counts = sorted(set(args.big_frames))
        for name, count in [(name, count) for name in args.rows for count in (big_counts if name == "big" else [0])]:
            out_fs, out_pf = str(work / "fs.jpg"), str(work / "pf.jpg")
            if name in REAL or name in ("sub1mp", "big"):
                frames = (frames_of(DATA / name) if name in REAL else scaled_keyboard(work, 40, (800, 450))
                          if name == "sub1mp" else scaled_keyboard(work, count, (6000, 4000), once=True))
                inputs = [str(p) for p in frames]
            elif name in ("mp4_4k", "flat", "latency"):
                mp4, frames = sweep_mp4(work, 30)
                inputs = [str(mp4)]
            else:  # depth
                frames = frames_of(DATA / "pcb_depthmap")
                inputs = [str(p) for p in frames]
            size = "x".join(map(str, _image_size(frames[0])))
            if name == "flat":
                mp4_60, _ = sweep_mp4(work, 60)
                runs = {count: Measured() for count in (30, 60)}
                for _ in range(args.repeat):
                    for count, video in ((30, mp4), (60, mp4_60)):
                        cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
                        runs[count].runs.append(run(pf("stack", str(video), "-o", out_pf, "--cache", str(cache)),
                                                    env, f"postfocus on {count} frames"))
                        shutil.rmtree(cache, ignore_errors=True)
                ratio = runs[60].median(2) / runs[30].median(2)
                print(f"  30 frames {runs[30].cell()}, 60 frames {runs[60].cell()}", file=sys.stderr)
                extra.append(f"| flat memory, 4K MP4, default settings | 30 frames: {runs[30].cell()} | 60 frames: "
                             f"{runs[60].cell()} | peak 60/30 = {ratio:.2f}x (target {FLAT_TARGET}x) | "
                             f"{'met' if ratio <= FLAT_TARGET else 'NOT met'} |")
            elif name == "latency":
                cache = work / "latency-cache"
                proc = subprocess.run([sys.executable, "-c", LATENCY, str(mp4), str(cache), str(args.repeat)],
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    sys.exit(f"latency run failed:\n{proc.stderr[-2000:]}")
                for what, (seconds, cpu) in json.loads(proc.stdout.strip().splitlines()[-1]).items():
                    target = LATENCY_TARGET.get(what)
                    verdict = "" if target is None else ("met" if seconds <= target else "NOT met")
                    extra.append(f"| {what} on the processed 30-frame 4K stack | {seconds * 1000:.1f} ms wall | "
                                 f"{cpu * 1000:.1f} ms CPU | "
                                 f"{'' if target is None else f'target {target * 1000:.0f} ms'} | {verdict} |")
                shutil.rmtree(cache, ignore_errors=True)
            else:
                if name == "depth":
                    fs_cmd = [binary, "--no-opencl", f"--output={out_fs}", f"--depthmap={work / 'fs-depth.png'}",
                              *map(str, frames)]
                    pf_cmds = {"postfocus depth": pf("depth", *inputs, "-o", str(work / "pf-depth.png"),
                                                     "--cache", "{cache}")}
                    if base is not None:
                        pf_cmds["base"] = pf("depth", *inputs, "-o", str(work / "pf-depth.png"), "--cache", "{cache}",
                                             src=base)
                elif name == "big" and count > args.peer_max_frames:
                    fs_cmd = None  # (focus-stack left out: see --peer-max-frames)
                else:
                    fs_cmd = [binary, "--no-opencl", f"--output={out_fs}", *map(str, frames)]
                    pf_cmds = {"postfocus": pf("stack", *inputs, "-o", out_pf, "--cache", "{cache}")}
                    if not args.no_streaming:
                        pf_cmds["postfocus --no-cache"] = pf("stack", *inputs, "-o", out_pf, "--no-cache")
                    if base is not None:
                        pf_cmds["base"] = pf("stack", *inputs, "-o", out_pf, "--cache", "{cache}", src=base)
                        if not args.no_streaming:
                            pf_cmds["base --no-cache"] = pf("stack", *inputs, "-o", out_pf, "--no-cache", src=base)
                label = f"big {count}" if name == "big" and len(big_counts) > 1 else name
                med = compare(label, fs_cmd, pf_cmds, args.repeat, env, work)
                table.append((label, len(frames), size, med))
                print("  " + "; ".join(f"{tool}: {m.cell()}" for tool, m in med.items()), file=sys.stderr)
            print(f"{name}{f' ({count} frames)' if count else ''}: done", file=sys.stderr)
            if name == "big":
                shutil.rmtree(frames[0].parent, ignore_errors=True)
        extra.extend(growth([(n, med) for label, n, _, med in table if label.startswith("big")]))
    load_end = os.getloadavg()
    report(table, extra, args, load_start, load_end)


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header."""
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def report(table: list, extra: list[str], args: argparse.Namespace, load_start: tuple, load_end: tuple) -> None:
    """The table in Markdown, with the ratios and targets."""
    print(f"load average (1, 5, 15 min) at the start {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}, "
          f"at the end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f} ({os.cpu_count()} cores); "
          f"medians of {args.repeat}; postfocus from {args.src.resolve()}")
    print()
    if table:
        print("| row | frames | size | focus-stack wall s / CPU s / MB | postfocus wall s / CPU s / MB | wall ratio "
              "(target) | CPU ratio | paired wall / CPU ratio | memory ratio (target 0.3) | targets | postfocus --no-cache wall / CPU / MB | "
              "wall ratio |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, n, size, med in table:
        fs = med.get("focus-stack")
        tool = "postfocus depth" if name == "depth" else "postfocus"
        mine = med[tool]
        if fs is None:  # (the 24 MP row above --peer-max-frames)
            streaming = med.get("postfocus --no-cache")
            print(f"| {name} | {n} | {size} | not run (--peer-max-frames {args.peer_max_frames}) | {mine.cell()} | "
                  f"| | | | | {streaming.cell() if streaming else ''} | |")
            continue
        wall, memory = mine.median(0) / fs.median(0), mine.median(2) / fs.median(2)
        target = WALL_TARGET.get(name, 0.5)
        verdict = (f"time {'met' if wall <= target else 'NOT met'}, "
                   f"memory {'met' if memory <= MEMORY_TARGET else 'NOT met'}")
        streaming = med.get("postfocus --no-cache")
        tail = f"{streaming.cell()} | {streaming.median(0) / fs.median(0):.2f}x" if streaming else " | "
        label = "depth (pcb_depthmap; --depthmap)" if name == "depth" else name
        print(f"| {label} | {n} | {size} | {fs.cell()} | {mine.cell()} | {wall:.2f}x ({target}) | "
              f"{mine.median(1) / fs.median(1):.2f}x | "
              f"{paired_ratio(mine, fs, 0):.2f}x / {paired_ratio(mine, fs, 1):.2f}x | {memory:.2f}x | "
              f"{verdict} | {tail} |")
    if table:
        print()
        print("Ratios: of the medians, and (paired) the median of each repetition's two runs, run back to back, "
              "the tools taking turns to go first; one-minute load at each row's start and end: "
              + ", ".join(f"{name} {ROW_LOADS[name][0]:.2f}-{ROW_LOADS[name][1]:.2f}" for name, *_ in table
                          if name in ROW_LOADS))
    if args.base is not None and any("base" in med for _, _, _, med in table):
        print()
        print(f"postfocus {args.src.resolve()} against {args.base.resolve()} (base), same runs:")
        print()
        print("| row | base wall s / CPU s / MB | this wall s / CPU s / MB | CPU this/base | paired CPU this/base | "
              "peak this/base | base --no-cache | this --no-cache |")
        print("|---|---|---|---|---|---|---|---|")
        for name, _, _, med in table:
            if "base" not in med:
                continue
            this, old = med["postfocus depth" if name == "depth" else "postfocus"], med["base"]
            nc_old, nc_this = med.get("base --no-cache"), med.get("postfocus --no-cache")
            print(f"| {name} | {old.cell()} | {this.cell()} | {this.median(1) / old.median(1):.2f}x | "
                  f"{paired_ratio(this, old, 1):.2f}x | {this.median(2) / old.median(2):.2f}x | {nc_old.cell() if nc_old else ''} | "
                  f"{nc_this.cell() if nc_this else ''} |")
    if extra:
        print()
        print("| measure | value | | target | verdict |")
        print("|---|---|---|---|---|")
        for line in extra:
            print(line)


if __name__ == "__main__":
    main()
