"""What the app does with a finished job: tap, range merge, colour pop, aperture, downloads.

These run in the server process (in Starlette's thread pool): they read the
job's processed stack, which makes each of them quick. Results are kept in the
job's ``out/`` folder under names built from validated numbers, so asking again
costs nothing; previews that pile up are pruned. Every result is written
atomically (:func:`postfocus.io.write.atomic_write`), so a failure never leaves
half a file that later looks finished, and recorded (:mod:`postfocus.web.outputs`):
a file of ``out/`` cut short or replaced since is made again, not served.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from postfocus.errors import PostfocusError, frame_runs
from postfocus.store import DamagedStackError, ProcessedStack
from postfocus.web.lens import SceneLens, scene_lens
from postfocus.web.outputs import OutRecords
from postfocus.web.store import JobFolder
from postfocus.web.taps import TapAhead

__all__ = ["F_NUMBERS", "HEAVY_AT_ONCE", "KEEP_PREVIEWS", "PREVIEW_EDGE", "PREVIEW_LAYERS", "Results", "f_number_used"]

PREVIEW_EDGE = 640  # long edge of aperture previews (about 1 s to render)
PREVIEW_LAYERS = 32
KEEP_PREVIEWS = 40
HEAVY_AT_ONCE = 2
F_NUMBERS = (1.0, 64.0)
log = logging.getLogger("postfocus.web")


def _made(folder: Path) -> tuple[int, int] | None:
    """Identity of a stack folder (inode and change time): changes when the folder is made again (or
    written into, which only opens it once more)."""
    try:
        st = Path(folder).stat()
    except OSError:
        return None
    return st.st_ino, st.st_ctime_ns


def _finite(value: float, what: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise PostfocusError(f"{what} must be a number")
    return value


def f_number_used(f_number: float) -> float:
    """The f-number a request for ``f_number`` is rendered at: within :data:`F_NUMBERS`, to 0.1.

    Parameters
    ----------
    f_number : float
        The requested f-number (finite; PostfocusError otherwise).

    Returns
    -------
    float
        e.g. 1.0 for 0 or -3, 64.0 for 1e300, 2.8 for 2.8.
    """
    return round(min(max(_finite(f_number, "f-number"), F_NUMBERS[0]), F_NUMBERS[1]), 1)


class Results:
    """Per-job operations with a small cache of open stacks and one lock per output.

    ``threads`` is the thread budget of each render (:func:`postfocus.web.taps.app_threads`; None: the machine's
    cores). A plain tap's depth is made ahead when a stack is first opened (:meth:`tap_ahead`, ``self.ahead``).
    """

    def __init__(self, max_open: int = 8, *, threads: int | None = None):
        self._stacks: OrderedDict[str, ProcessedStack] = OrderedDict()
        self._made: dict[str, tuple[int, int] | None] = {}  # job id -> _made() of its open stack's folder
        self._max_open = max_open
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._lenses: OrderedDict[tuple, SceneLens] = OrderedDict()  # aperture_lens's answers, newest last
        # Renders are heavy (full-size images in memory): only a few at a time, the rest wait.
        self._heavy = threading.BoundedSemaphore(HEAVY_AT_ONCE)
        self.threads = threads
        self.ahead = TapAhead(self._heavy, threads=threads)  # a plain tap's depth, made ahead and bounded
        self.records = OutRecords()  # of every job's out/ files: a damaged one is made again

    # Helpers --------------------------------------------------------------
    def stack(self, job: JobFolder) -> ProcessedStack:
        """The job's processed stack (kept open for the next request; opened again when its folder was
        made again). DamagedStackError when a file is missing, cut short or overwritten (the app then
        rebuilds it)."""
        with self._lock:
            ps = self._stacks.get(job.id)
            if ps is not None and _made(ps.folder) == self._made.get(job.id):
                self._stacks.move_to_end(job.id)
            else:
                ps = None
        if ps is not None:  # a file overwritten in place leaves the folder as it was: each request checks
            ps.verify(checksums="changed")  # (a stat per file; a CRC-32 read once per changed file)
            return ps
        ps = ProcessedStack.open(job.stack_dir)
        ps.verify(checksums="changed")  # a stat per file; a CRC-32 of one changed since written
        made = _made(ps.folder)
        with self._lock:
            self._stacks[job.id], self._made[job.id] = ps, made
            while len(self._stacks) > self._max_open:
                self._made.pop(self._stacks.popitem(last=False)[0], None)
        self.ahead.soon(job.id, lambda: ps)  # (opened: a tap may come; made already, it costs a read)
        return ps

    def tap_ahead(self, job: JobFolder | None) -> None:
        """Make the job's plain tap depth in the background (a job just finished): its first tap finds it made."""
        if job is not None:
            self.ahead.soon(job.id, lambda: self.stack(job))

    def forget(self, job_id: str) -> None:
        """Drop the open stack of a job (deleted or processed again)."""
        with self._lock:
            self._stacks.pop(job_id, None)
            self._made.pop(job_id, None)
        self.ahead.forget(job_id)  # (its stack waiting to be made ahead is gone or replaced)

    def _output_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def _cached(self, job: JobFolder, name: str, make, prune: str | None = None) -> Path:  # noqa: ANN001
        """Path of ``out/name``, made by ``make(path)`` if it does not exist yet or is not as recorded (cut
        short, replaced, not recorded: :class:`~postfocus.web.outputs.OutRecords`).

        ``make`` writes ``path`` atomically (every writer it calls goes through
        :func:`postfocus.io.write.atomic_write`).
        """
        path = job.out(name)
        if self.records.intact(job, path):
            return path
        with self._output_lock(f"{job.id}/{name}"):
            if not self.records.intact(job, path):
                if path.exists():
                    log.warning("job %s: out/%s is not as it was made; making it again", job.id, name)
                with self._heavy:
                    make(path)
                self.records.record(job, [path])
                if prune:
                    self._prune(job, prune, keep=path)
        return path

    def thumb(self, job: JobFolder) -> Path:
        """The gallery's thumbnail (made by the worker; made again when it is damaged)."""
        from postfocus.options import DEFAULT_METHOD
        from postfocus.web.jobs import thumbnail

        def make(path: Path) -> None:
            ps = self.stack(job)
            self._save(path, thumbnail(ps.all_in_focus(DEFAULT_METHOD, threads=self.threads)), ps, quality=85)

        return self._cached(job, "thumb.jpg", make)

    def viewer_file(self, job: JobFolder, name: str, title: str | None, files: list[dict]) -> Path | None:
        """The viewer's ``data.json`` or picture ``name`` (a checked name): all of them made again when ``name``
        or ``data.json`` is missing, damaged or not recorded; None when the viewer has no such picture."""
        from postfocus.web.jobs import write_viewer_data

        path, data = job.out_dir / "viewer" / name, job.out_dir / "viewer" / "data.json"
        if self.records.intact(job, path):
            return path
        with self._output_lock(f"{job.id}/viewer"):
            if self.records.intact(job, path):
                return path
            if not path.exists() and not self.records.known(job, path) and self.records.intact(job, data):
                return None  # a name the viewer never had (its pictures are as made)
            if data.exists():
                log.warning("job %s: out/viewer/%s is not as it was made; making the viewer again", job.id, name)
            old = [p for p in data.parent.iterdir() if p.is_file()] if data.parent.is_dir() else []
            with self._heavy:
                write_viewer_data(job, self.stack(job), title, files, threads=self.threads)
            self.records.record(job, sorted(data.parent.iterdir()), drop=old)
        return path if path.is_file() else None

    def _save(self, path: Path, image: np.ndarray, ps: ProcessedStack, quality: int = 92) -> None:
        from postfocus.result import save_image

        save_image(path, image, ps.info, quality=quality)

    def _prune(self, job: JobFolder, prefix: str, keep: Path) -> None:
        """Remove the oldest ``prefix*`` outputs beyond :data:`KEEP_PREVIEWS`."""
        dated = []
        for p in job.out_dir.glob(prefix + "*"):
            try:
                dated.append((p.stat().st_mtime, p))
            except OSError:
                continue
        removed = [p for _, p in sorted(dated)[:-KEEP_PREVIEWS] if p != keep]
        for p in removed:
            p.unlink(missing_ok=True)
        if removed:
            self.records.record(job, [], drop=removed)

    def _point(self, ps: ProcessedStack, x: float, y: float) -> tuple[float, float]:
        h, w = ps.size
        x, y = _finite(x, "x"), _finite(y, "y")
        if not (0 <= x < w and 0 <= y < h):
            raise PostfocusError(f"point {x:.6g},{y:.6g} is outside the image ({w}x{h})")
        return x, y

    # Operations -----------------------------------------------------------
    def tap(self, job: JobFolder, x: float, y: float) -> dict:
        """The sharpest frame at x, y, as the JSON answer of the tap request."""
        from postfocus.products.refocus import tap

        ps = self.stack(job)
        x, y = self._point(ps, x, y)
        make = self.ahead.before_tap(ps, x, y, job.id)  # a depth to make first: made once, in the heavy budget
        answer = tap(ps, x, y, threads=self.threads, make=make)
        return {
            "frame": answer.frame,
            "position": round(answer.position, 3),
            "confidence": round(answer.confidence, 3),
            "x": answer.x,
            "y": answer.y,
            "source_x": round(answer.source_x, 1),
            "source_y": round(answer.source_y, 1),
            "fallback": answer.fallback,
            "filled_from": answer.filled_from,
            "message": answer.describe(lambda i: f"frame {i + 1}"),  # (counted from 1 as the page's "Frame 26")
        }

    def frame_path(self, job: JobFolder, index: int) -> Path:
        """The cached aligned frame ``index`` (a frame kept as TIFF: a PNG of it, made once; a frame kept
        unwarped: a JPEG of it aligned, made once); KeyError for a frame left out."""
        ps = self.stack(job)
        if index not in ps.used:
            raise KeyError(index)
        kept = ps.frame_path(index)  # cut short or overwritten since the stack was opened? (made again)
        if ps.changed_since_written(kept.relative_to(ps.folder).as_posix()):
            raise DamagedStackError(f"{kept}: does not match the stack's manifest")
        if ps.frames_unwarped:
            return self._cached(job, f"frame_{index:04d}.jpg", lambda out: ps.save_frame(index, out, quality=95))
        if kept.suffix.lower() != ".tif":  # served as kept
            return kept
        return self._cached(job, f"frame_{index:04d}.png", lambda out: ps.save_frame(index, out))

    def image(self, job: JobFolder) -> Path:
        """The all-in-focus JPEG."""
        from postfocus.options import DEFAULT_METHOD

        def make(path: Path) -> None:
            ps = self.stack(job)
            self._save(path, ps.all_in_focus(DEFAULT_METHOD, threads=self.threads), ps, quality=95)

        return self._cached(job, "all_in_focus.jpg", make)

    def merge(self, job: JobFolder, start: int, end: int) -> tuple[Path, int, int]:
        """Range merge of the used frames from ``start`` to ``end`` (inclusive): (path, first, last)."""
        from postfocus.store import merge

        ps = self.stack(job)
        lo, hi = sorted((int(start), int(end)))
        frames = [i for i in ps.used if lo <= i <= hi]
        if not frames:
            # (as numbers are said elsewhere: start=1e300 was said back in 301 digits)
            raise PostfocusError(f"no aligned frames between {float(lo):g} and {float(hi):g} "
                                 f"(frames kept: {frame_runs(ps.used)})")
        lo, hi = frames[0], frames[-1]

        def make(path: Path) -> None:
            if len(frames) == 1:
                image = ps.read_frame(frames[0])
            else:
                image = merge(ps, frames=frames, threads=self.threads)
            self._save(path, image, ps, quality=95)

        return self._cached(job, f"merge_{lo:04d}_{hi:04d}.jpg", make, prune="merge_"), lo, hi

    def pop(self, job: JobFolder, position: float, tolerance: float = 1.0) -> Path:
        """Colour pop: what lies at focus ``position`` (frames) keeps its colour."""
        from postfocus.colour import to_grey
        from postfocus.options import DEFAULT_METHOD
        from postfocus.products.pop import colour_pop, pop_mask

        ps = self.stack(job)
        position = round(min(max(_finite(position, "position"), 0.0), len(ps.names) - 1.0), 2)
        tolerance = round(min(max(_finite(tolerance, "tolerance"), 0.0), 50.0), 2)

        def make(path: Path) -> None:
            image = ps.all_in_focus(DEFAULT_METHOD, threads=self.threads)
            depth, _, frames = self._depth(job)  # full-resolution, edge-aware: no fringe around the subject
            at = position if ps.near_to_far else frames - 1 - position  # the depth counts from the nearest frame
            mask = pop_mask(depth, at, to_grey(image), tolerance=tolerance)
            self._save(path, colour_pop(image, mask), ps, quality=95)

        # "popd_": masked by the full-resolution depth (older "pop_" pictures were not; never served again)
        return self._cached(job, f"popd_{position:08.2f}_{tolerance:05.2f}.jpg", make, prune="popd_")

    def position_at(self, job: JobFolder, x: float, y: float) -> float:
        """Focus position (frames) that a tap at x, y finds."""
        from postfocus.products.refocus import tap

        ps = self.stack(job)
        x, y = self._point(ps, x, y)
        make = self.ahead.before_tap(ps, x, y, job.id)
        return float(tap(ps, x, y, threads=self.threads, make=make).position)

    def _depth(self, job: JobFolder) -> tuple[np.ndarray, np.ndarray | None, int]:
        """(depth in frames at output size, confidence, frames), from the job's files or made now."""
        from postfocus.products.depth import write_depth_npy
        from postfocus.products.depth_cache import stack_depth

        ps = self.stack(job)
        path, conf_path = job.out_dir / "depth.npy", job.out_dir / "depth_confidence.npy"
        kept = _kept_depth(path, conf_path, ps.size)
        if kept is not None:
            return (*kept, len(ps.names))
        with self._output_lock(f"{job.id}/depth.npy"):
            kept = _kept_depth(path, conf_path, ps.size)  # made by the request this one waited for?
            if kept is not None:
                return (*kept, len(ps.names))
            result = stack_depth(ps, threads=self.threads)
            job.out_dir.mkdir(exist_ok=True)
            np.save(job.out("depth_confidence.npy"), result.confidence.astype(np.float16))
            write_depth_npy(path, result)  # last: its presence says both files are complete
        return result.depth, result.confidence, result.frames

    def depth(self, job: JobFolder) -> Path:
        """16-bit depth PNG (0 = nearest frame; the scale is in its text chunks)."""
        from postfocus.products.depth import DepthResult, write_depth_png

        def make(path: Path) -> None:
            depth, conf, frames = self._depth(job)
            write_depth_png(path, DepthResult(depth=depth, confidence=conf if conf is not None
                                              else np.ones_like(depth), frames=frames))

        return self._cached(job, "depth.png", make)

    def aperture_lens(self, job: JobFolder, x: float, y: float, f_number: float, preview: bool = True) -> SceneLens:
        """The lens of the aperture render at x, y, f/``f_number``: its blur set over the scene's depths
        (:mod:`postfocus.web.lens`), for the picture's size (the preview's or the full size)."""
        from postfocus.products.aperture import focus_at

        ps = self.stack(job)
        x, y = self._point(ps, x, y)
        try:  # (a render asked again is served as kept: its lens too, without reading the depth map)
            made = job.out("depth.npy").stat().st_mtime_ns
        except OSError:
            made = None
        key = (job.id, made, x, y, f_number_used(f_number), bool(preview))
        with self._lock:
            if key in self._lenses:
                return self._lenses[key]
        depth, conf, frames = self._depth(job)
        h, w = depth.shape[:2]
        s = PREVIEW_EDGE / max(h, w) if preview and max(h, w) > PREVIEW_EDGE else 1.0
        size = (max(1, round(h * s)), max(1, round(w * s)))
        lens = scene_lens(depth, frames, focus_at(depth, x, y, conf), f_number_used(f_number), size)
        with self._lock:
            self._lenses[key] = lens
            while len(self._lenses) > KEEP_PREVIEWS:
                self._lenses.popitem(last=False)
        return lens

    def aperture(self, job: JobFolder, x: float, y: float, f_number: float, preview: bool = True) -> Path:
        """Shallow depth of field focused at the subject at x, y, at aperture f/``f_number`` (its blur set over the
        scene's depths: :meth:`aperture_lens`)."""
        from postfocus.products.aperture import render_aperture

        ps = self.stack(job)
        x, y = self._point(ps, x, y)
        f_number = f_number_used(f_number)
        # "aperture_s": the blur is set over the scene's depths (older "aperture_p/f" ones: over the sweep's)
        name = f"aperture_s{'p' if preview else 'f'}_{x:06.0f}_{y:06.0f}_{f_number:05.1f}.jpg"

        def make(path: Path) -> None:
            import cv2

            from postfocus.options import DEFAULT_METHOD

            image = ps.all_in_focus(DEFAULT_METHOD, threads=self.threads)
            depth, _, _ = self._depth(job)
            lens = self.aperture_lens(job, x, y, f_number, preview)
            h, w = image.shape[:2]
            if preview and max(h, w) > PREVIEW_EDGE:
                s = PREVIEW_EDGE / max(h, w)
                size = (max(1, round(w * s)), max(1, round(h * s)))
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                depth = cv2.resize(depth, size, interpolation=cv2.INTER_AREA)
            layers = {"max_layers": PREVIEW_LAYERS} if preview else {}
            out = render_aperture(image, depth, lens.focus, blur_px=lens.blur_px, **layers)
            self._save(path, np.asarray(out, np.float32), ps, quality=88 if preview else 95)

        return self._cached(job, name, make, prune="aperture_")

    def page(self, job: JobFolder, title: str | None, files: list[dict]) -> Path:
        """The self-contained page (``postfocus.viewer.export``), with the uploaded names."""
        from postfocus.io.write import atomic_write_text
        from postfocus.viewer.export import render_page
        from postfocus.web.jobs import viewer_payload

        def make(path: Path) -> None:
            payload = viewer_payload(job, self.stack(job), title, files, src=_data_url, threads=self.threads)
            atomic_write_text(path, render_page(payload))

        from postfocus.products.edits import edits_version, load_edits

        version = edits_version(load_edits(self.stack(job)))  # the page shows the retouched picture
        return self._cached(job, f"page_{version}.html" if version else "page.html", make,
                            prune="page_" if version else None)


def _kept_depth(path: Path, conf_path: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The job's kept depth map and confidence (float32), or None when there is none or it is damaged (cut short,
    not a NumPy file, of another size: made again; a cut file was a ValueError on every later request)."""
    try:
        depth = np.load(path, mmap_mode="r")
        conf = np.load(conf_path, mmap_mode="r") if conf_path.is_file() else None
        if depth.shape != tuple(size) or (conf is not None and conf.shape != tuple(size)):
            return None
        return np.asarray(depth, np.float32), None if conf is None else np.asarray(conf, np.float32)
    except (OSError, ValueError, EOFError):  # (FileNotFoundError: none kept yet)
        return None


def _data_url(name: str, payload: bytes, mime: str) -> str:
    from postfocus.viewer.export import data_url

    return data_url(name, payload, mime)
