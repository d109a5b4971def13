"""Generated focus stacks and journal helpers for the ``test_batch_*`` modules.

A stack is the astronaut test image with its halves blurred in opposite
directions, so these tests depend on nothing but the library (and scikit-image
for the picture). Test modules import the helpers::

    from batch_stacks import make_stack
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from postfocus.batch import RESULTS_JSONL, read_results

GOOD = ["beetle", "moth", "shell"]
"""Stacks of :func:`make_collection` that merge."""


def make_stack(folder: Path, frames: int = 4, size: tuple[int, int] = (120, 160), shift: int = 0) -> Path:
    """Frames of the astronaut: left half sharp first, right half sharp last."""
    from skimage import data

    h, w = size
    base = cv2.resize(np.roll(data.astronaut(), shift, axis=1), (w, h), interpolation=cv2.INTER_AREA)
    folder.mkdir(parents=True)
    for i in range(frames):
        t = i / (frames - 1)
        left = cv2.GaussianBlur(base, (0, 0), 0.3 + 3 * t)
        right = cv2.GaussianBlur(base, (0, 0), 0.3 + 3 * (1 - t))
        frame = base.copy()
        frame[:, : w // 2] = left[:, : w // 2]
        frame[:, w // 2 :] = right[:, w // 2 :]
        Image.fromarray(frame).save(folder / f"frame{i:02d}.jpg", quality=92)
    return folder


def make_collection(root: Path) -> Path:
    """The :data:`GOOD` stacks, one with a garbage .jpg among its frames (corrupt), one empty folder."""
    for k, name in enumerate(GOOD):
        make_stack(root / name, shift=40 * k)
    make_stack(root / "corrupt", shift=100)
    (root / "corrupt" / "frame02.jpg").write_bytes(b"\x00garbage, not a JPEG" * 40)
    (root / "empty").mkdir()
    return root


def statuses(out: Path) -> dict[str, str]:
    """Latest status per stack name in ``out``'s journal."""
    return {Path(o).stem: r.status for o, r in read_results(out).items()}


def manifest_lines(out: Path) -> list[dict]:
    """Every line of ``out``'s journal."""
    return [json.loads(line) for line in (out / RESULTS_JSONL).read_text().splitlines()]


def decoded(path: Path) -> np.ndarray:
    """The image at ``path`` as RGB uint8."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))
