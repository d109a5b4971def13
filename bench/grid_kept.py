"""Readers of a kept stack's (cut) maps against the uncut maps' grid (docs/quality.md, "Kept maps on the
stack's grid, fifteenth session (grid10)").

Renders the merge9 test stack (``steps``, 600x1000, 6 frames, seed 5, 6 px shake, JPEG) unless a stack folder is
given, processes it (one thread) and reports, for the kept folder's maps:

* taps: the share of output pixels whose tap window centre differs from the uncut maps' (``round((x + ox) * pw / PW)
  - mx``), and over a band of points along the depth edges, the share of taps whose answer (frame, position) differs
  from a tap on the uncut maps' grid (the cut maps padded back into the uncut shape at their map origin), for the
  maps' own grid (main) and :meth:`StackMaps.map_grid` (this branch);
* ``StackMaps.upscale`` of the focus index: largest difference 8 px inside from a resize of the padded uncut maps.

Usage: ``PYTHONPATH=src python bench/grid_kept.py [STACK]``
"""
from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np


def uncut(a: np.ndarray, place) -> np.ndarray:
    """The cut maps ``a`` (..., h, w) back in the uncut maps' shape at their map origin, edges replicated."""
    (ph, pw), (my, mx) = place.shape, place.map_origin
    h, w = a.shape[-2:]
    pad = [(0, 0)] * (a.ndim - 2) + [(my, ph - my - h), (mx, pw - mx - w)]
    return np.pad(np.asarray(a, np.float32), pad, mode="edge")


def main() -> None:
    import postfocus
    from postfocus.products import refocus

    os.environ.setdefault("POSTFOCUS_CACHE", tempfile.mkdtemp(prefix="grid_kept-"))
    if len(sys.argv) > 1:
        path = Path(sys.argv[1])
    else:
        from postfocus.synth import render_stack, scene, write_stack

        path = Path(tempfile.mkdtemp(prefix="grid_kept-stack-"))
        sharp, depth01 = scene("steps", (600, 1000), seed=5)
        write_stack(render_stack(sharp, depth01, 6, max_blur=5.0, seed=5, shake_px=6.0, noise=0.003), path, fmt="jpg")
    kept = postfocus.process(path, threads=1)
    maps, place = kept.maps, kept.maps.grid_place
    print(f"{path.name}: output {kept.size}, maps {maps.shape}, place {place}")
    H, W = maps.size
    (ph, pw), (PH, PW), (oy, ox), (my, mx) = place.shape, place.size, place.origin, place.map_origin
    xs, ys = np.arange(W), np.arange(H)
    own_x, own_y = np.round(xs * (maps.shape[1] / W)), np.round(ys * (maps.shape[0] / H))
    ref_x, ref_y = np.round((xs + ox) * (pw / PW)) - mx, np.round((ys + oy) * (ph / PH)) - my
    (sx, sy), (gx, gy), (hx, hy) = maps.map_grid()
    new_x, new_y = np.round((xs + gx) * sx) - hx, np.round((ys + gy) * sy) - hy
    off = lambda a, b, c, d: 1 - np.outer(c == d, a == b).mean()  # noqa: E731
    print(f"tap window centre off the uncut grid: own grid {off(own_x, ref_x, own_y, ref_y):.1%} of the pixels, "
          f"map_grid {off(new_x, ref_x, new_y, ref_y):.1%}")
    # Taps along the depth edges (where the focus index changes by more than a frame within two map pixels).
    fi = maps.focus_index
    edge = cv2.dilate((cv2.morphologyEx(fi, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 1).astype(np.uint8),
                      np.ones((3, 3), np.uint8))
    band = cv2.resize(edge, (W, H), interpolation=cv2.INTER_NEAREST)[12:-12, 12:-12]
    cy, cx = np.nonzero(band)  # (output pixels, 12 px inside)
    pick = np.random.default_rng(0).choice(len(cx), min(400, len(cx)), replace=False)
    vol, floor = uncut(maps.volume, place), refocus.stack_floor(kept)
    own = replace(maps, place=None)
    n_own = n_new = f_own = f_new = 0
    for k in pick:
        x, y = float(cx[k] + 12), float(cy[k] + 12)
        ref = refocus.sharpest_frame(vol, list(maps.used), x + ox, y + oy, map_scale=(pw / PW, ph / PH), floor=floor)
        new = refocus.tap(kept, x, y)
        kept.maps = own
        old = refocus.tap(kept, x, y)
        kept.maps = maps
        if not ref.fallback:
            n_new += (new.frame, round(new.position, 4)) != (ref.frame, round(ref.position, 4))
            n_own += (old.frame, round(old.position, 4)) != (ref.frame, round(ref.position, 4))
            f_own, f_new = f_own + (old.frame != ref.frame), f_new + (new.frame != ref.frame)
    print(f"taps along the depth edges ({len(pick)}): answer differs from the uncut grid's: own grid {n_own} "
          f"(frame {f_own}), map_grid {n_new} (frame {f_new})")
    ref_up = cv2.resize(uncut(fi, place), (PW, PH), interpolation=cv2.INTER_LINEAR)[oy:oy + H, ox:ox + W]
    inner = (slice(8, -8), slice(8, -8))
    plain = cv2.resize(np.asarray(fi, np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
    print(f"upscale of the focus index, 8 px inside: own grid max {np.abs(plain - ref_up)[inner].max():.3f} frames "
          f"(> 0.5 frame: {(np.abs(plain - ref_up)[inner] > 0.5).mean():.2%}), "
          f"StackMaps.upscale max {np.abs(maps.upscale(fi) - ref_up)[inner].max():.3f}")


if __name__ == "__main__":
    main()
