"""Shared fixtures: the real stacks, a tiny generated focus stack, a CLI runner.

The tiny stack is built here by hand (not with the project's synthetic
generator) so that the core tests do not depend on it: a textured photo whose
left half is sharp in frame 0 and blurred in frame 2, the right half the
opposite, frame 1 half-blurred everywhere, each frame shifted by a few pixels.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from browser import browser  # noqa: F401  (one definition of the Chromium fixture for all modules)

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_STACKS = ("ring", "pcb", "pcb_depthmap", "beetle", "algae", "keyboard")

# Tiny stack geometry: frames are TINY_H x TINY_W windows of a slightly larger scene.
TINY_H, TINY_W = 200, 300
TINY_MARGIN = 12
# Frame k is the scene shifted by (k - 1) * TINY_STEP (dx, dy) pixels; frame 1 is the reference.
TINY_STEP = (2, -1)
# Gaussian sigma of (left half, right half) per frame.
TINY_BLUR = ((0.0, 2.5), (1.2, 1.2), (2.5, 0.0))


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of the real focus stacks (``shared/data`` next to the repository); skips if absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real focus stacks not found at {REAL_DATA}")
    return REAL_DATA


def textured_scene(height: int, width: int) -> np.ndarray:
    """A photo with detail everywhere (astronaut), float32 RGB in [0, 1], quantised to 8 bit."""
    from skimage.data import astronaut

    img = cv2.resize(astronaut(), (width, height), interpolation=cv2.INTER_AREA)
    return (img.astype(np.float32) / 255.0).astype(np.float32)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return image if sigma <= 0 else cv2.GaussianBlur(image, (0, 0), sigma)


def save_rgb(path: Path, image: np.ndarray) -> Path:
    """Write a float RGB image in [0, 1] as an 8-bit file (format from the suffix)."""
    pixels = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    if not cv2.imwrite(str(path), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path


@dataclass
class TinyStack:
    """A three-frame focus stack on disk with its ground truth."""

    folder: Path
    paths: list[Path]
    sharp: np.ndarray  # float32 (H, W, 3) all-in-focus truth in reference (frame 1) geometry
    shifts: list[tuple[int, int]]  # (dx, dy) of each frame relative to the reference
    seam: int  # column where the left and right halves meet

    @property
    def left(self) -> tuple[slice, slice]:
        """Left half, away from the seam and the borders."""
        return slice(8, TINY_H - 8), slice(8, self.seam - 10)

    @property
    def right(self) -> tuple[slice, slice]:
        return slice(8, TINY_H - 8), slice(self.seam + 10, TINY_W - 8)


def make_tiny_stack(folder: Path, suffix: str = ".png") -> TinyStack:
    """Render the two-halves stack into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    m = TINY_MARGIN
    scene = textured_scene(TINY_H + 2 * m, TINY_W + 2 * m)
    seam = TINY_W // 2
    paths, shifts = [], []
    for k, (s_left, s_right) in enumerate(TINY_BLUR):
        left, right = _blur(scene, s_left), _blur(scene, s_right)
        composed = np.where(np.arange(scene.shape[1])[None, :, None] < m + seam, left, right)
        dx, dy = (k - 1) * TINY_STEP[0], (k - 1) * TINY_STEP[1]
        # frame(y, x) = composed(y + m + dy, x + m + dx): the scene moved by (-dx, -dy) in the frame.
        frame = composed[m + dy : m + dy + TINY_H, m + dx : m + dx + TINY_W]
        paths.append(save_rgb(folder / f"frame{k}{suffix}", frame))
        shifts.append((dx, dy))
    sharp = scene[m : m + TINY_H, m : m + TINY_W]
    sharp = (np.clip(sharp, 0, 1) * 255 + 0.5).astype(np.uint8).astype(np.float32) / 255
    return TinyStack(folder, paths, sharp.astype(np.float32), shifts, seam)


@pytest.fixture(scope="session")
def tiny_stack(tmp_path_factory) -> TinyStack:
    """Three PNG frames (200x300) of a two-halves focus stack; read-only for tests."""
    return make_tiny_stack(tmp_path_factory.mktemp("tiny_stack"))


@pytest.fixture
def tiny_copy(tmp_path) -> TinyStack:
    """A fresh copy of the tiny stack that a test may change."""
    return make_tiny_stack(tmp_path / "frames")


@pytest.fixture(scope="session")
def tiny_stack_factory():
    """``make(folder, suffix=".png")`` renders the tiny stack into ``folder`` (e.g. as JPEG frames)."""
    return make_tiny_stack


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tree_digest(folder: Path) -> dict[str, str]:
    """Name -> sha256 of every file under ``folder`` (hidden ones too)."""
    return {str(p.relative_to(folder)): file_digest(p) for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def meeting_twice(call, calls: list):
    """``call`` wrapped so that its first two calls must be under way at once (they meet at a barrier one thread
    alone would break, after 20 s); every call is counted in ``calls``."""
    import threading

    meet, lock = threading.Barrier(2, timeout=20), threading.Lock()

    def met(*args, **kwargs):
        with lock:
            calls.append(None)
            first_two = len(calls) <= 2
        if first_two:
            meet.wait()
        return call(*args, **kwargs)

    return met


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


NO_CONFIG = Path(tempfile.gettempdir()) / "postfocus-tests-without-config"
"""``$XDG_CONFIG_HOME`` of CLI runs: no config file of the user's changes what the tests see."""


def run_postfocus(
    *args: str | os.PathLike,
    cwd: Path | None = None,
    script: bool = False,
    cache: Path | None = None,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> CliRun:
    """Run the real command line in a subprocess (``python -m postfocus`` or the installed script).

    ``cache`` becomes ``$POSTFOCUS_CACHE`` so that runs never write to the user's cache; ``env``
    adds to (or, with None values, removes from) the environment. The config file is looked
    for under :data:`NO_CONFIG` unless ``env`` sets ``XDG_CONFIG_HOME``.
    """
    cmd = ["postfocus"] if script else [sys.executable, "-m", "postfocus"]
    env_in = env or {}
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", TERM="dumb", XDG_CONFIG_HOME=str(NO_CONFIG))
    if cache is not None:
        env["POSTFOCUS_CACHE"] = str(cache)
    if env.get("PYTHONPATH"):  # PYTHONPATH=src must name the same code from any cwd
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    for key, value in env_in.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    proc = subprocess.run(
        [*cmd, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    return CliRun(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def cli_cache(tmp_path_factory) -> Path:
    """Cache folder for processed stacks made by CLI runs in the tests."""
    return tmp_path_factory.mktemp("postfocus_cache")


@pytest.fixture
def cli(cli_cache):
    """``cli(*args, cwd=None, script=False)`` runs postfocus; returns a CliRun (returncode, stdout, stderr, err_lines)."""

    def run(*args, **kwargs) -> CliRun:
        kwargs.setdefault("cache", cli_cache)
        return run_postfocus(*args, **kwargs)

    return run


@dataclass(frozen=True)
class LayeredGrass:
    """Rendered grass analysed once: the render (truth known), its frames as a source, the analysis, the common
    area's box (4 px inside) and the 9 px halo band of the true depth within it."""

    st: object
    source: object
    analysis: object
    box: tuple[slice, slice]
    band: np.ndarray


@pytest.fixture(scope="session")
def layered_grass() -> LayeredGrass:
    """Dark blades before a bright wall (the two-layer renderer, 8 frames, 300x450, seed 1, shaken by hand as
    tests/test_halo.py's CAMERA): shared by the halo and the near-outline tests, which read it and never change it."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from metrics import halo_band

    from postfocus.align import common_area
    from postfocus.io.arrays import ArraySource
    from postfocus.pipeline.analyse import analyse
    from postfocus.synth.halo_scenes import render_layered

    st = render_layered("grass", 8, size=(300, 450), max_blur=8.0, seed=1, shake_px=3.0, rotation_deg=0.3,
                        noise=0.004, jpeg_quality=95)
    source = ArraySource(st.frames)
    t, l, b, r = common_area(st.transforms, st.sharp.shape[:2])
    box = (slice(t + 4, b - 4), slice(l + 4, r - 4))
    return LayeredGrass(st, source, analyse(source), box, halo_band(st.depth, 9)[box])


def bench_module(filename: str, also: tuple[str, ...] = ()):
    """A script of ``bench/`` loaded as a module for a module-scoped fixture (a generator: yield from it).

    The scripts put ``bench/`` on the path to import their sibling benches (``also``); the path and those modules
    are put back afterwards so another test module loads its own copy.
    """
    import importlib.util

    path, modules = list(sys.path), set(sys.modules)
    name = f"{Path(filename).stem}_under_test"
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "bench" / filename)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path[:] = path
        for loaded in set(sys.modules) - modules:
            if loaded in (*also, name):
                del sys.modules[loaded]
