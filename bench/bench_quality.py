"""Quality benchmark: postfocus vs align_image_stack + enfuse, on generated stacks with ground truth and on real stacks.

Generated stacks
    Each scene is rendered by postfocus.synth as a handheld sweep (shake,
    rotation, breathing, exposure drift, noise, JPEG), written as JPEG frames,
    then merged by every tool as a separate, timed process. Results are scored
    in the reference frame's geometry (postfocus: ``--no-crop``; enfuse: its
    result is in the first frame's geometry and is brought to the reference
    with that frame's true transform, bicubic) over the area every frame covers:

    * PSNR and SSIM against the true sharp image;
    * halo: mean absolute error (8-bit levels) in a 9-px band around the true
      depth discontinuities (``metrics.halo_score``), and the PSNR there;
    * noise: std of (result - truth), 8-bit levels, where the truth is flat
      (``metrics.flat_mask``, away from depth edges). The "sharpest frame" row
      gives the same for the input frame with the best PSNR, measured in that
      frame's own geometry (no resampling that would smooth its noise);
    * Q^AB/F and NMI against the input frames aligned with the true transforms
      (reference-free; shown to compare with the real stacks).

    Baselines computed in-process with the true transforms: the oracle
    composite (per pixel the frame focused nearest the true depth), a naive
    argmax of |Laplacian|, a plain Laplacian pyramid (per coefficient the
    largest magnitude, averaged low-pass) and the sharpest single frame.

Real stacks (``--real``)
    No ground truth: Q^AB/F and NMI (``metrics.reference_free``) against the
    input frames. Every result is scored untouched in its own geometry; the
    inputs are warped once (bicubic) into that geometry with the transforms and
    gains postfocus reports (``--report``). postfocus's result is in the
    reference frame's geometry (``--no-crop``). enfuse's result is in the
    first frame's geometry; a similarity ECC between it and postfocus's result
    (started from postfocus's transform of the first frame) gives the map
    between the two, and the inputs and the scored area (the area every frame
    covers, 8 px inset) are carried through it. The plain average of the
    aligned inputs is listed as a blurred reference point.

Wall time and peak memory come from ``/usr/bin/time -v``; ``cpu_s`` is user +
system time (meaningful when the machine is busy and wall times are not).

Usage:
    python bench/bench_quality.py                      # all generated scenes, 10 frames
    python bench/bench_quality.py --scenes steps --frames 8
    python bench/bench_quality.py --real               # also the real stacks in ../shared/data
    python bench/bench_quality.py --markdown out.md --json out.json --doc-images docs/img
    python bench/bench_quality.py --figures docs/img   # halo before/after crops: pins, pcb, keyboard

The standard scenes are rendered with a background behind near objects (``render_stack(..., hidden=True)``:
a blurred near object shows the background through its rim, as through a real lens, so halos show as on real
photographs); ``--flat-layers`` renders them as before issue 15 (a blurred near object keeps its sharp outline).

Halo scenes (``pins``, ``grass``; ``postfocus.synth.halo_scenes``) are rendered with the two-layer
renderer (the far background present behind the near objects, specular highlights above white) and a
12 px blur, and also fused in-process by the depth-map method before its occlusion step
(``fuse(..., occlusion=False)``); two rows bound what any selection of the inputs can reach (per pixel the
frame, or the blend of two adjacent frames, closest to the truth: ``selection_bound``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics import flat_mask, flat_noise, halo_band, halo_score, reference_free  # noqa: E402
from peers import ensure_peers, run_enfuse, run_postfocus  # noqa: E402

from postfocus.align import common_area, ecc_match, warp_to_reference  # noqa: E402
from postfocus.colour import to_grey  # noqa: E402
from postfocus.fuse import collapse, laplacian_pyramid  # noqa: E402
from postfocus.io.base import natural_key  # noqa: E402
from postfocus.io.images import read_image  # noqa: E402
from postfocus.io.open import open_source  # noqa: E402
from postfocus.pipeline.analyse import analyse  # noqa: E402
from postfocus.pipeline.merge import fuse  # noqa: E402
from postfocus.synth import oracle_composite, psnr, render_stack, scene, ssim, write_stack  # noqa: E402
from postfocus.synth.halo_scenes import HALO_SCENES, render_layered  # noqa: E402

HANDHELD = dict(shake_px=8.0, rotation_deg=0.5, breathing=0.03, exposure_drift=0.05, noise=0.004, jpeg_quality=95)
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = ["ring", "pcb", "pcb_depthmap", "beetle", "algae", "keyboard"]
HALO_WIDTH = 9
FLAT_LAYERS = False  # --flat-layers: render without a background behind near objects (the benchmark before issue 15)


# --- baselines (true transforms) ------------------------------------------------------------------------------


def aligned_true(stack) -> list[np.ndarray]:  # noqa: ANN001
    """Frames brought to the reference with the TRUE transforms (bicubic) and divided by the true gains."""
    h, w = stack.sharp.shape[:2]
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    return [
        np.clip(cv2.warpPerspective(f, W, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT)
                / np.asarray(g, np.float32), 0, 1).astype(np.float32)
        for f, W, g in zip(stack.frames, stack.transforms, stack.gains)
    ]


def naive_argmax(aligned: list[np.ndarray]) -> np.ndarray:
    """Per pixel, the frame with the largest |Laplacian|."""
    lap = np.stack([np.abs(cv2.Laplacian(to_grey(a), cv2.CV_32F)) for a in aligned])
    best = np.argmax(lap, axis=0)
    return np.take_along_axis(np.stack(aligned), best[None, ..., None], axis=0)[0].astype(np.float32)


def plain_pyramid(aligned: list[np.ndarray]) -> np.ndarray:
    """Textbook Laplacian-pyramid fusion: per coefficient the largest magnitude (no window), averaged low-pass."""
    h, w = aligned[0].shape[:2]
    levels = max(1, int(np.log2(max(1, min(h, w) / 16))))
    best: list[np.ndarray] | None = None
    energy: list[np.ndarray] = []
    for a in aligned:
        pyr = laplacian_pyramid(a, levels)
        if best is None:
            best = [p.copy() for p in pyr]
            energy = [(p * p).sum(axis=2) for p in pyr[:-1]]
            continue
        for k, band in enumerate(pyr[:-1]):
            e = (band * band).sum(axis=2)
            better = e > energy[k]
            best[k][better] = band[better]
            energy[k] = np.maximum(energy[k], e)
        best[-1] += pyr[-1]
    assert best is not None
    best[-1] /= len(aligned)
    return np.clip(collapse(best), 0, 1).astype(np.float32)


def selection_bound(aligned: list[np.ndarray], sharp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What no selection of the inputs can beat: per pixel the frame closest to the truth (mean absolute error
    over the channels), and the blend of two adjacent frames closest to it (least-squares weight in [0, 1]).
    It looks at the truth, so it also picks the noise that happens to help: a bound, not a method."""
    stack = np.stack(aligned)
    err = np.abs(stack - sharp[None]).mean(axis=3)
    best = np.take_along_axis(stack, err.argmin(axis=0)[None, ..., None], axis=0)[0]
    pair, pair_err = best.copy(), err.min(axis=0)
    for a, b in zip(stack[:-1], stack[1:]):
        d = b - a
        t = np.clip(((sharp - a) * d).sum(axis=2) / np.maximum((d * d).sum(axis=2), 1e-9), 0.0, 1.0)
        mix = a + t[..., None] * d
        e = np.abs(mix - sharp).mean(axis=2)
        better = e < pair_err
        pair[better], pair_err = mix[better], np.minimum(pair_err, e)
    return best.astype(np.float32), pair.astype(np.float32)


def frame_noise(stack, i: int, flat: np.ndarray) -> float:  # noqa: ANN001
    """Flat-region noise of input frame ``i`` in its own geometry (truth and mask carried there, not the frame)."""
    h, w = stack.sharp.shape[:2]
    W = stack.transforms[i]
    truth = cv2.warpPerspective(stack.sharp, W, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    mask = cv2.warpPerspective(flat.astype(np.uint8), W, (w, h), flags=cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    mask = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return flat_noise(stack.frames[i] / np.asarray(stack.gains[i], np.float32), truth, mask)


# --- generated scenes -----------------------------------------------------------------------------------------


class Truth:
    """Everything a generated result is scored against, cut to the area every frame covers."""

    def __init__(self, stack) -> None:  # noqa: ANN001
        h, w = stack.sharp.shape[:2]
        t, l, b, r = common_area(stack.transforms, (h, w))
        self.box = (slice(t + 4, b - 4), slice(l + 4, r - 4))
        self.sharp = stack.sharp[self.box]
        self.band = halo_band(stack.depth, HALO_WIDTH)[self.box]
        edges = halo_band(stack.depth, 4 * HALO_WIDTH + 1)
        self.flat_full = flat_mask(stack.sharp) & ~edges
        self.flat = self.flat_full[self.box]
        self.inputs = [a[self.box] for a in aligned_true(stack)]

    def score(self, image: np.ndarray, reference_free_too: bool = True) -> dict:
        a = image[self.box]
        row = {
            "psnr": psnr(a, self.sharp),
            "ssim": ssim(a, self.sharp),
            "halo": halo_score(a, self.sharp, self.band),
            "halo_psnr": psnr(a, self.sharp, self.band) if self.band.any() else float("nan"),
            "noise": flat_noise(a, self.sharp, self.flat) if self.flat.sum() > 100 else float("nan"),
        }
        if reference_free_too:
            row["qabf"], row["nmi"] = reference_free(a, self.inputs)
        return row


def render(name: str, frames: int, seed: int):  # noqa: ANN201
    """The scene's stack: the halo scenes with the two-layer renderer and a stronger blur (12 px, like pcb's pins);
    the others with a background behind near objects (``render_stack(..., hidden=True)``) unless ``--flat-layers``."""
    if name in HALO_SCENES:
        return render_layered(name, frames, size=(480, 720), max_blur=12.0, seed=seed, **HANDHELD)
    size = None if name == "motorcycle" else (480, 720)
    sharp, depth01 = scene(name, size, seed=seed)
    return render_stack(sharp, depth01, frames, max_blur=8.0, seed=seed, hidden=not FLAT_LAYERS, **HANDHELD)


def bench_scene(name: str, frames: int, seed: int, work: Path, methods: list[str], doc_images: Path | None) -> list[dict]:
    st = render(name, frames, seed)
    folder = work / name
    paths = write_stack(st, folder, fmt="jpg", quality=95)
    h, w = st.sharp.shape[:2]
    truth = Truth(st)
    rows = []
    results = {}
    for method in methods:
        out = work / f"{name}_postfocus_{method}.png"
        run = run_postfocus(paths, out, method, ["--no-crop"])
        row = {"scene": name, "tool": f"postfocus {method}", "seconds": run.seconds, "cpu_s": run.cpu_seconds,
               "peak_mb": run.peak_mb, "ok": run.ok}
        if run.ok:
            results[method] = read_image(out)
            row.update(truth.score(results[method]))
        else:
            print(run.log, file=sys.stderr)
        rows.append(row)
    out = work / f"{name}_enfuse.tif"
    run = run_enfuse(paths, out, work)
    row = {"scene": name, "tool": "align_image_stack + enfuse", "seconds": run.seconds, "cpu_s": run.cpu_seconds,
           "peak_mb": run.peak_mb, "ok": run.ok}
    if run.ok:
        enf = read_image(out)
        # enfuse's result is in frame 0's geometry: bring it to the reference with frame 0's true transform.
        enf = cv2.warpPerspective(enf, st.transforms[0], (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REFLECT)
        results["enfuse"] = np.clip(enf, 0, 1)
        row.update(truth.score(results["enfuse"]))
    else:
        print(run.log, file=sys.stderr)
    rows.append(row)
    if "depthmap" in methods:  # the depth-map method before the occlusion step, in-process on the same files
        source = open_source([str(p) for p in paths])
        analysis = analyse(source)
        before = fuse(source, analysis.maps, alignment=analysis.alignment, occlusion=False)
        before = np.round(np.clip(before, 0, 1) * 255) / 255  # 8 bits, as the command writes its PNG
        rows.append({"scene": name, "tool": "postfocus depthmap, focus map alone (before issue 15)",
                     **truth.score(before.astype(np.float32))})
    aligned = aligned_true(st)
    oracle = oracle_composite(st)
    rows.append({"scene": name, "tool": "oracle (true depth, true transforms)", **truth.score(oracle)})
    rows.append({"scene": name, "tool": "naive argmax of abs Laplacian (true transforms)",
                 **truth.score(naive_argmax(aligned))})
    rows.append({"scene": name, "tool": "plain Laplacian pyramid (true transforms)",
                 **truth.score(plain_pyramid(aligned))})
    if name in HALO_SCENES:  # how far selection alone can go: per pixel the input closest to the truth
        for label, image in zip(("per pixel the frame closest to the truth", "per pixel the blend of two adjacent "
                                 "frames closest to the truth"), selection_bound(aligned, st.sharp)):
            rows.append({"scene": name, "tool": f"selection bound: {label} (true transforms)",
                         **truth.score(image, reference_free_too=False)})
    best = int(np.argmax([psnr(a[truth.box], truth.sharp) for a in aligned]))
    row = {"scene": name, "tool": f"sharpest single frame ({best}, true transforms)",
           **truth.score(aligned[best], reference_free_too=False)}
    row["noise"] = frame_noise(st, best, truth.flat_full)
    rows.append(row)
    if doc_images is not None and name == "occluder":
        halo_crops(st, paths, results, truth, doc_images)
    return rows


def halo_crops(st, paths: list[Path], results: dict, truth: Truth, out: Path) -> None:  # noqa: ANN001
    """docs/img crop of the occluder scene where halos differ most: truth, enfuse, postfocus before/after.

    Top row: the pictures; bottom row: |error| x 4 (white = 64 levels or more).
    """
    from postfocus.fuse import PyramidFusion
    from postfocus.io.open import open_source
    from postfocus.pipeline.analyse import analyse

    h, w = st.sharp.shape[:2]
    # The pyramid method before its coarse bands were blended by depth (plain mean residual), on the same
    # frames and postfocus's own alignment.
    source = open_source([str(p) for p in paths])
    analysis = analyse(source)
    before = PyramidFusion((h, w))
    for i in analysis.used:
        a = analysis.alignment[i]
        before.add(None, warp_to_reference(source.read(i), a.matrix, (h, w), interpolation=cv2.INTER_CUBIC) * a.gain)
    panels = [("truth", st.sharp), ("enfuse", results.get("enfuse")),
              ("pyramid before", np.clip(before.result(), 0, 1)), ("pyramid now", results.get("pyramid")),
              ("depthmap now", results.get("depthmap"))]
    panels = [(label, img) for label, img in panels if img is not None]
    # where the old pyramid's halo error exceeds the new results' the most, inside the scored area
    band = halo_band(st.depth, HALO_WIDTH)
    err = np.abs(panels[2][1] - st.sharp).mean(axis=2) * band
    t, b = truth.box[0].start + 60, truth.box[0].stop - 60
    l, r = truth.box[1].start + 80, truth.box[1].stop - 80
    score = cv2.boxFilter(err, -1, (61, 61))[t:b, l:r]
    cy, cx = np.unravel_index(int(np.argmax(score)), score.shape)
    y0, x0 = cy + t - 50, cx + l - 70
    tiles = []
    for label, img in panels:
        crop = img[y0:y0 + 100, x0:x0 + 140]
        diff = np.clip(np.abs(crop - st.sharp[y0:y0 + 100, x0:x0 + 140]).mean(axis=2) * 4, 0, 1)
        col = np.concatenate([crop, np.repeat(diff[..., None], 3, axis=2)], axis=0)
        tile = cv2.resize(col, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        tile = (np.clip(tile, 0, 1) * 255 + 0.5).astype(np.uint8)
        tile = cv2.copyMakeBorder(tile, 22, 0, 0, 4, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        cv2.putText(tile, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "quality-halo-occluder.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(tiles, axis=1), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)", file=sys.stderr)


# --- real stacks ----------------------------------------------------------------------------------------------


def _aligned_inputs(paths: list[Path], frames: list[dict], to_frame, size: tuple[int, int]):  # noqa: ANN001
    """Used input frames resampled into a result's geometry: ``to_frame(M_i)`` maps result pixels to frame i."""
    for p, f in zip(paths, frames):
        if not f["used"]:
            continue
        m = to_frame(np.asarray(f["matrix"], np.float64))
        img = warp_to_reference(read_image(p), m, size, interpolation=cv2.INTER_CUBIC)
        yield np.clip(img * np.asarray(f["gain"], np.float32), 0, 1)


def bench_real(name: str, work: Path, methods: list[str], doc_images: Path | None = None) -> list[dict]:
    folder = DATA / name
    paths = sorted((p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif")),
                   key=lambda p: natural_key(p.name))
    rows = []
    report = None
    pf_image = None
    for method in methods:
        out = work / f"{name}_postfocus_{method}.png"
        rep = work / f"{name}_{method}.json"
        run = run_postfocus(paths, out, method, ["--no-crop", "--report", str(rep)])
        row = {"scene": name, "tool": f"postfocus {method}", "seconds": run.seconds, "cpu_s": run.cpu_seconds,
               "peak_mb": run.peak_mb, "ok": run.ok}
        if run.ok:
            report = json.loads(rep.read_text())
            row["_image"] = out
        else:
            print(run.log, file=sys.stderr)
        rows.append(row)
    out = work / f"{name}_enfuse.tif"
    run = run_enfuse(paths, out, work, keep_aligned=True)
    enf_aligned = run.aligned
    rows.append({"scene": name, "tool": "align_image_stack + enfuse", "seconds": run.seconds, "cpu_s": run.cpu_seconds,
                 "peak_mb": run.peak_mb, "ok": run.ok, "_image": out if run.ok else None})
    if not run.ok:
        print(run.log, file=sys.stderr)
    if report is None:
        return rows
    frames = report["frames"]
    used = [np.asarray(f["matrix"], np.float64) for f in frames if f["used"]]
    pf_images: dict[str, np.ndarray] = {}
    t0 = time.time()
    for row in rows:
        if not row["tool"].startswith("postfocus") or row.get("_image") is None:
            continue
        image = read_image(row.pop("_image"))
        h, w = image.shape[:2]
        t, l, b, r = common_area(used, (h, w))
        mask = np.zeros((h, w), bool)
        mask[t + 8:b - 8, l + 8:r - 8] = True
        row["qabf"], row["nmi"] = reference_free(image, _aligned_inputs(paths, frames, lambda m: m, (h, w)), mask)
        row["qabf_own"], row["nmi_own"] = row["qabf"], row["nmi"]  # postfocus's own alignment is the reference
        pf_image = image
        pf_images[row["tool"].split()[-1]] = image
    assert pf_image is not None
    h, w = pf_image.shape[:2]
    # the plain average of the aligned inputs: a blurred reference point
    total = np.zeros((h, w, 3), np.float32)
    count = 0
    for a in _aligned_inputs(paths, frames, lambda m: m, (h, w)):
        total += a
        count += 1
    average = total / max(count, 1)
    del total
    avg = {"scene": name, "tool": "average of aligned inputs (reference point)"}
    avg["qabf"], avg["nmi"] = reference_free(average, _aligned_inputs(paths, frames, lambda m: m, (h, w)), mask)
    del average
    enf_row = rows[len(methods)]
    enf_path = enf_row.pop("_image", None)
    if enf_path is not None:
        enf = read_image(enf_path)
        eh, ew = enf.shape[:2]
        first = np.asarray(frames[0]["matrix"], np.float64)  # reference -> frame 0 (enfuse's geometry)
        template, moving = to_grey(pf_image), to_grey(enf)
        if moving.shape != template.shape:
            moving = cv2.copyMakeBorder(moving, 0, max(0, h - eh), 0, max(0, w - ew), cv2.BORDER_REPLICATE)[:h, :w]
        try:
            E, rho = ecc_match(template, moving, "similarity", init=first)  # reference -> enfuse result coords
        except cv2.error:
            E, rho = first, float("nan")
        enf_row["ecc_rho"] = rho
        inv = np.linalg.inv(E)
        enf_mask = warp_to_reference(mask.astype(np.uint8), inv, (eh, ew), border=cv2.BORDER_CONSTANT,
                                     interpolation=cv2.INTER_NEAREST).astype(bool)
        inputs = _aligned_inputs(paths, frames, lambda m: m @ inv, (eh, ew))
        enf_row["qabf"], enf_row["nmi"] = reference_free(enf, inputs, enf_mask)
        if enf_aligned:  # against align_image_stack's own aligned frames (the frames enfuse fused)
            own = (np.clip(read_image(a), 0, 1) for a in enf_aligned)
            enf_row["qabf_own"], enf_row["nmi_own"] = reference_free(enf, own, enf_mask)
        if doc_images is not None and name == "pcb":
            shown = dict(pf_images)
            shown["enfuse"] = np.clip(warp_to_reference(enf, E, (h, w), interpolation=cv2.INTER_CUBIC), 0, 1)
            real_halo_crop(name, paths, shown, doc_images)
    if enf_aligned:
        shutil.rmtree(enf_aligned[0].parent, ignore_errors=True)
    rows.append(avg)
    print(f"  scored {name} in {time.time() - t0:.0f} s", file=sys.stderr)
    return rows


def real_halo_crop(name: str, paths: list[Path], images: dict, out: Path) -> None:
    """docs/img crop of a real stack where the pyramid method changed most (bright highlights bloom there)."""
    from postfocus.fuse import PyramidFusion
    from postfocus.io.open import open_source
    from postfocus.pipeline.analyse import analyse

    source = open_source([str(p) for p in paths])
    analysis = analyse(source)
    h, w = analysis.size
    before = PyramidFusion((h, w))  # plain mean residual, as before depth-blended coarse bands
    for i in analysis.used:
        a = analysis.alignment[i]
        before.add(None, warp_to_reference(source.read(i), a.matrix, (h, w), interpolation=cv2.INTER_CUBIC) * a.gain)
    images = {"enfuse": images.get("enfuse"), "pyramid before": np.clip(before.result(), 0, 1),
              "pyramid now": images.get("pyramid"), "depthmap now": images.get("depthmap")}
    change = cv2.boxFilter(np.abs(images["pyramid before"] - images["pyramid now"]).mean(axis=2), -1, (101, 101))
    m = 150
    inner = change[m:-m, m:-m]
    cy, cx = np.unravel_index(int(np.argmax(inner)), inner.shape)
    cy, cx = cy + m, cx + m
    tiles = []
    for label, img in images.items():
        if img is None:
            continue
        crop = img[cy - 90:cy + 90, cx - 130:cx + 130]
        tile = cv2.resize(crop, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
        tile = (np.clip(tile, 0, 1) * 255 + 0.5).astype(np.uint8)
        tile = cv2.copyMakeBorder(tile, 22, 0, 0, 4, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        cv2.putText(tile, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"quality-halo-{name}.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(tiles, axis=1), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {path} ({path.stat().st_size // 1024} KB; crop centre {cx},{cy})", file=sys.stderr)


# --- output ---------------------------------------------------------------------------------------------------


def fmt(v) -> str:  # noqa: ANN001
    if isinstance(v, float):
        if v != v:
            return "–"
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def table(rows: list[dict], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def summary(rows: list[dict], scenes: list[str]) -> list[dict]:
    """Mean of every metric over the generated scenes, per tool (halo and noise: scenes that have them)."""
    tools = []
    for r in rows:
        t = r["tool"].split(" (")[0] if r["tool"].startswith("sharpest") else r["tool"]
        if t not in tools:
            tools.append(t)
    out = []
    for t in tools:
        sel = [r for r in rows if (r["tool"].split(" (")[0] if r["tool"].startswith("sharpest") else r["tool"]) == t
               and r["scene"] in scenes]
        row = {"tool": t}
        for c in ("psnr", "ssim", "halo", "halo_psnr", "noise", "qabf", "nmi", "seconds", "cpu_s"):
            vals = [r[c] for r in sel if isinstance(r.get(c), float) and r[c] == r[c]]
            row[c] = float(np.mean(vals)) if vals else float("nan")
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="*", default=["motorcycle", "steps", "occluder", "ramp", "flat", *HALO_SCENES])
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--flat-layers", action="store_true",
                    help="render the standard scenes without a background behind near objects (as before issue 15)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--methods", nargs="*", default=["depthmap", "pyramid"])
    ap.add_argument("--real", nargs="*", default=None, help="real stacks to score and time (bare flag: all)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the tables as Markdown")
    ap.add_argument("--doc-images", type=Path, default=None, help="write the halo crops (occluder scene) here")
    ap.add_argument("--figures", type=Path, default=None,
                    help="only write the halo before/after crops (pins, pcb, keyboard) here, e.g. docs/img")
    args = ap.parse_args()
    global FLAT_LAYERS
    FLAT_LAYERS = args.flat_layers
    if args.figures is not None:
        from halo_figures import figures

        figures(args.figures)
        return
    ensure_peers()
    rows: list[dict] = []
    load = os.getloadavg()
    text = [f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"]
    with tempfile.TemporaryDirectory(prefix="pf-bench-") as tmp:
        work = Path(tmp)
        for name in args.scenes:
            rows += bench_scene(name, args.frames, args.seed, work, args.methods, args.doc_images)
            print(f"done {name}", file=sys.stderr)
        if args.scenes:
            cols = ["scene", "tool", "psnr", "ssim", "halo", "halo_psnr", "noise", "qabf", "nmi", "seconds", "cpu_s",
                    "peak_mb"]
            text += ["", f"## Generated stacks ({args.frames} frames, seed {args.seed})", "", table(rows, cols)]
            groups = [("the generated scenes", [s for s in args.scenes if s not in HALO_SCENES]),
                      ("the halo scenes", [s for s in args.scenes if s in HALO_SCENES])]
            for title, names in groups:
                if names:
                    text += ["", f"## Means over {title} ({', '.join(names)})", "",
                             table(summary(rows, names), ["tool", "psnr", "ssim", "halo", "halo_psnr", "noise", "qabf",
                                                          "nmi", "seconds", "cpu_s"])]
        if args.real is not None:
            real = []
            for name in args.real or REAL:
                real += bench_real(name, work, args.methods, args.doc_images)
                print(f"done {name}", file=sys.stderr)
            text += ["", "## Real stacks (no ground truth)", "",
                     table(real, ["scene", "tool", "qabf", "nmi", "qabf_own", "nmi_own", "seconds", "cpu_s",
                                  "peak_mb", "ok", "ecc_rho"])]
            rows += real
    load = os.getloadavg()
    text.append(f"\nload average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("\n".join(text))
    if args.markdown:
        args.markdown.write_text("\n".join(text) + "\n")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
