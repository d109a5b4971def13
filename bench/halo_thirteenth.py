"""Halo experiments of the fifteenth session (docs/quality.md, "Halos on the real stacks, fifteenth session (halo13)").

The far frame's fine detail beside near objects. In a frame focused on the far surface, a near object's blur
adds its own light (a bright one's bloom) or takes light away (a dark one covers part of the aperture):
``(1 - A) B + S`` (Hasinoff and Kutulakos 2007). Both ``A`` and ``S`` are the near object's matte and light
convolved with a disc of radius ``c |f - d|`` (several px beside a real occlusion): low-pass. The far
surface's own fine detail ``(1 - A) B``'s high-pass survives there, attenuated by ``1 - A`` only. The blend by
depth (and the occlusion-safe one) takes a frame focused nearer in the band, whose far surface is blurred; the
variant adds the far frame's fine band where it carries more fine energy than the blend's own (max contrast
per pixel, as the pyramid method does for every pixel; Burt and Adelson 1983), only in the pixels whose far
index lies beyond their own (the library's opt-in far blend, :class:`postfocus.fuse.relight.FarBlend`).

Rows: the default fusion; the library's ``relight=True``; the detail transfer at fine scale ``s`` px
(Gaussian), with a soft max-contrast weight; and the pyramid method. In-process on the halo bench's renders
(``bench/halo_fifth.py``: 480x720, 10 frames, seed 1, JPEG q95 read back, 8-bit). ``--real pcb keyboard``
also fuses the real stacks and writes 100 % PNG crops (``HALO_OUT``, default /tmp/halo13).

``--residual`` prints instead a per-pixel choice between the depth-map and pyramid results by the lower
forward-model residual (the check run with the map's own depth, as on a real stack).

Usage: ``PYTHONPATH=src python bench/halo_thirteenth.py --scenes grass pins steps occluder [--real pcb keyboard]``
(about a minute a scene; the real stacks a minute or two each; ``HALO_OUT`` gets the 100 % crops and the
``halo13-<stack>.png`` strips: default, pyramid, transfer s 2.5, transfer s 2.5 with agreement, focus index,
occlusion-safe index, the last two coloured by jet from frame 0 (blue) to the last frame (red)).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from unittest import mock

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from halo_fifth import scenes_from_args, scored  # noqa: E402

import importlib  # noqa: E402

relight_module = importlib.import_module("postfocus.fuse.relight")
from postfocus.pipeline.merge import fuse  # noqa: E402


def transfer(image, far, allowed, *, scale=1.0, energy=2.0, agree=None, **_):  # noqa: ANN001, ANN201
    """``image`` with ``far``'s fine band (Gaussian ``scale``) where it has more fine energy, in ``allowed``;
    with ``agree`` (0-1 tolerance) only where the two agree at a coarse scale (Gaussian 3 px): the same surface."""
    hi = image - cv2.GaussianBlur(image, (0, 0), scale)
    hf = far - cv2.GaussianBlur(far, (0, 0), scale)
    ei = cv2.GaussianBlur((hi * hi).sum(axis=2), (0, 0), energy)
    ef = cv2.GaussianBlur((hf * hf).sum(axis=2), (0, 0), energy)
    w = np.clip(ef / np.maximum(ei, 1e-9) - 1.0, 0.0, 1.0) * allowed
    if agree is not None:
        g = np.abs(cv2.GaussianBlur(image - far, (0, 0), 3.0)).max(axis=2)
        w *= np.exp(-(g / agree) ** 2)
    image += w[..., None] * (hf - hi)
    return image


def sided_transfer(image, far, allowed, index, far_index, *, scale=2.5, energy=2.0, margin=0.02):  # noqa: ANN001, ANN201
    """:func:`transfer` on the far side only, the side read from the direction of the coarse difference.

    At a far pixel beside a near object the far frame is ``B + A (N - B)``, shifted from the blend's ``B``
    towards the near colour ``N``; at a near pixel it is ``N + (1 - A) (B - N)``, shifted towards the far
    colour. ``N`` and ``B`` are the blend's local colours (normalised Gaussian, sigma 8 px) over the pixels
    at the near index (within half a frame of the pixel's own) and at the far one. The pixel is far when the
    coarse difference projected on ``N - B`` exceeds ``margin`` (0-1), wholly at twice that.
    """
    def coarse(mask):  # noqa: ANN001, ANN202
        m = mask.astype(np.float32)
        num = cv2.GaussianBlur(image * m[..., None], (0, 0), 8.0)
        return num / np.maximum(cv2.GaussianBlur(m, (0, 0), 8.0), 1e-4)[..., None], cv2.GaussianBlur(m, (0, 0), 8.0)
    lo = cv2.erode(index, np.ones((3, 3), np.uint8))
    near_c, nw = coarse(index <= lo + 0.5)
    far_c, fw = coarse(index >= far_index - 0.5)
    axis = near_c - far_c
    norm = np.sqrt((axis * axis).sum(axis=2)) + 1e-6
    diff = cv2.GaussianBlur(far - image, (0, 0), 3.0)
    s = (diff * axis).sum(axis=2) / norm
    side = np.clip(s / margin - 1.0, 0.0, 1.0) * (norm > 2 * margin)
    return transfer(image, far, allowed * side, scale=scale, energy=energy)


def run(name, source, analysis, st=None, truth=None):  # noqa: ANN001, ANN201
    maps = analysis.maps
    out = {}
    variants = [("default", dict(), None), ("relight (library opt-in)", dict(relight=True), None)]
    for s in (1.0, 1.5, 2.5):
        variants.append((f"detail transfer, s {s}", dict(relight=True), (s, None)))
    for s in (1.0, 2.5):
        for a in (0.02, 0.04):
            variants.append((f"detail transfer, s {s}, coarse agreement {a}", dict(relight=True), (s, a)))
    for s in (1.0, 2.5):
        variants.append((f"sided detail transfer, s {s}", dict(relight=True), (s, "sided")))
    variants.append(("pyramid", dict(method="pyramid"), None))
    for label, kw, s in variants:
        t = time.process_time()
        if s is None:
            image = fuse(source, maps, alignment=analysis.alignment, threads=1, **kw)
        elif s[1] == "sided":
            kept = {}
            init = relight_module.FarBlend.__init__

            def remember(self, index_map, far_index, *a, **k):  # noqa: ANN001, ANN202
                kept["index"], kept["far"] = np.asarray(index_map, np.float32), np.asarray(far_index, np.float32)
                init(self, index_map, far_index, *a, **k)

            def patched(i, f, a, s=s, **k):  # noqa: ANN001, ANN202
                t0, l0 = kept["origin"]
                box = (slice(t0, t0 + i.shape[0]), slice(l0, l0 + i.shape[1]))
                return sided_transfer(i, f, a, kept["index"][box], kept["far"][box], scale=s[0])

            apply = relight_module.FarBlend.apply

            def apply_at(self, image, **k):  # noqa: ANN001, ANN202
                if self.blend is not None:  # the origin of relight()'s part (FarBlend.apply's padded box)
                    t, l = self.box[:2]
                    kept["origin"] = (max(0, t - 5), max(0, l - 5))  # (pad = ceil(4 scale) + 1, scale 1)
                apply(self, image, **k)

            with mock.patch.object(relight_module.FarBlend, "__init__", remember), \
                    mock.patch.object(relight_module.FarBlend, "apply", apply_at), \
                    mock.patch.object(relight_module, "relight", patched):
                image = fuse(source, maps, alignment=analysis.alignment, threads=1, **kw)
        else:
            with mock.patch.object(relight_module, "relight", lambda i, f, a, s=s, **k: transfer(i, f, a, scale=s[0], agree=s[1])):
                image = fuse(source, maps, alignment=analysis.alignment, threads=1, **kw)
        cpu = time.process_time() - t
        out[label] = image
        if truth is not None:
            h, n, f, p = scored(st, truth, image)
            print(f"| {name} | {label} | {h:.2f} ({n:.2f} / {f:.2f}) | {p:.2f} | {cpu:.2f} |", flush=True)
    return out


def residual_choice(name, st, truth, source, analysis):  # noqa: ANN001, ANN201
    """The forward-model check (:func:`postfocus.check.forward.check_frames`, the map's own depth, the truly
    aligned frames) of the depth-map and pyramid results, and a per-pixel choice of the one with the lower
    residual (difference smoothed by a Gaussian ``sigma``, the pyramid taken wholly ``margin`` + 0.2 above)."""
    from postfocus.check.forward import check_frames
    maps = analysis.maps
    dm = fuse(source, maps, alignment=analysis.alignment, threads=1)
    py = fuse(source, maps, alignment=analysis.alignment, threads=1, method="pyramid")
    h, w = st.sharp.shape[:2]
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    aligned = [np.clip(cv2.warpPerspective(f, m, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT)
                       / np.asarray(g, np.float32), 0, 1) for f, m, g in zip(st.frames, st.transforms, st.gains)]
    depth = np.interp(maps.focus_index, maps.used, np.arange(len(maps.used))).astype(np.float32)
    res = {}
    for label, im in (("depthmap", dm), ("pyramid", py)):
        r = check_frames(np.clip(im, 0, 1), depth, lambda i: aligned[i], list(range(len(aligned))))
        x = r.residual if r.rendering is None else r.rendering
        res[label] = cv2.resize(x.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        h_, n, f, p = scored(st, truth, im)
        print(f"| {name} | {label}, mean check residual {res[label].mean():.3f} | {h_:.2f} ({n:.2f} / {f:.2f}) | {p:.2f} | |",
              flush=True)
    # clipped light in any frame (encoded >= 0.97), and the disc it blooms over at the largest defocus
    clipped = (np.max([a.max(axis=2) for a in aligned], axis=0) >= 0.97).astype(np.uint8)
    reach = int(np.ceil(12.0))  # (the renders' largest blur radius, px)
    bloom = cv2.dilate(clipped, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2)) > 0
    print(f"({name}: clipped {clipped.mean():.2%} of the picture, within its reach {bloom.mean():.1%})")
    for guard in (False, True):
        for sigma in (2.0, 6.0):
            d = cv2.GaussianBlur(res["depthmap"] - res["pyramid"], (0, 0), sigma)
            for margin in (0.0, 0.2):
                wgt = np.clip((d - margin) / 0.2, 0, 1)
                if guard:
                    wgt = wgt * ~bloom
                wgt = wgt[..., None]
                h_, n, f, p = scored(st, truth, dm + wgt * (py - dm))
                print(f"| {name} | residual choice{', not within the reach of clipped light' if guard else ''}, sigma {sigma}, "
                      f"margin {margin} (pyramid on {float((wgt > 0.5).mean()):.1%}) | {h_:.2f} ({n:.2f} / {f:.2f}) | {p:.2f} | |",
                      flush=True)


def real_check(name, box):  # noqa: ANN001, ANN201
    """The forward-model check of both methods on a real stack (:func:`postfocus.check.stack.forward_check`, the
    stack's own depth map): ``band_ratio`` (5 px), the crop's band (5 px of the depth map's edges) over the
    picture's interior (> 10 px), and on pcb the crop's residual by distance from the pin's gold outline
    (red minus blue above 45 levels in the default's crop, closed 5x5, the largest piece)."""
    import postfocus
    from postfocus.check.stack import band_ratio, depth_edges, forward_check
    from postfocus.products.depth import depth_map
    stack = postfocus.process(f"/work/wt/shared/data/{name}")
    depth = depth_map(stack).depth
    x0, y0, x1, y1 = box
    gold = None
    kept = {}
    for method in ("depthmap", "pyramid"):
        result = forward_check(stack, method=method)
        res = result.residual if result.rendering is None else result.rendering
        h, w = res.shape
        d = cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST)
        dist = cv2.distanceTransform(1 - depth_edges(d, jump=1.0).astype(np.uint8), cv2.DIST_L2, 3)
        sy, sx = h / depth.shape[0], w / depth.shape[1]
        cut = (slice(int(y0 * sy), int(y1 * sy)), slice(int(x0 * sx), int(x1 * sx)))
        band = (dist <= 5)[cut]
        line = (f"{name} {method}: band_ratio {band_ratio(result, depth, 5):.3f}; crop band / interior "
                f"{res[cut][band].mean() / res[dist > 10].mean():.3f}")
        if name == "pcb" and (h, w) == depth.shape:
            if gold is None:
                image = np.asarray(stack_image(stack, "depthmap"))[cut]
                mask = cv2.morphologyEx(((image[..., 0] - image[..., 2]) > 45 / 255).astype(np.uint8),
                                        cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
                n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
                pin = labels == 1 + int(np.argmax(stats[1:, 4]))
                gold = cv2.distanceTransform((~pin).astype(np.uint8), cv2.DIST_L2, 5), pin
            away, pin = gold
            parts = [f"on the pin {res[cut][pin].mean():.2f}"]
            for lo, hi in ((0.5, 4), (4, 8), (8, 16), (16, 24), (24, 40)):
                parts.append(f"{lo}-{hi} px {res[cut][(away > lo) & (away <= hi)].mean():.2f}")
            line += "; by distance from the pin: " + ", ".join(parts)
        print(line, flush=True)
        kept[method] = res
    # the residual-driven choice (sigma 2 px, margin 0; no clipped-light guard) written as a crop beside the others
    images = {m: np.asarray(stack_image(stack, m)) for m in kept}
    if all(r.shape == images["depthmap"].shape[:2] for r in kept.values()):
        wgt = np.clip(cv2.GaussianBlur(kept["depthmap"] - kept["pyramid"], (0, 0), 2.0) / 0.2, 0, 1)[..., None]
        chosen = images["depthmap"] + wgt * (images["pyramid"] - images["depthmap"])
        crops = [cv2.cvtColor(np.round(np.clip(x[y0:y1, x0:x1], 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
                 for x in (images["depthmap"], images["pyramid"], chosen)]
        dest = Path(os.environ.get("HALO_OUT", "/tmp/halo13"))
        cv2.imwrite(str(dest / f"real-{name}-residual_choice.png"), crops[2])
        sep = np.full((crops[0].shape[0], 3, 3), 255, np.uint8)  # docs/img/halo13-pcb-choice.png
        cv2.imwrite(str(dest / f"halo13-{name}-choice.png"), np.hstack([crops[0], sep, crops[1], sep, crops[2]]),
                    [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"{name}: residual choice takes the pyramid on {float((wgt[y0:y1, x0:x1] > 0.5).mean()):.1%} of the crop")


def stack_image(stack, method):  # noqa: ANN001, ANN201
    """The all-in-focus image of a processed stack (output geometry)."""
    from postfocus.store import merge
    return merge(stack, method=method)


def main() -> None:
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenes", nargs="*", default=["grass", "pins"])
    parser.add_argument("--real", nargs="*", default=[])
    parser.add_argument("--residual", action="store_true", help="the residual-driven choice rows instead")
    parser.add_argument("--check", action="store_true", help="the forward-model check of the --real stacks instead")
    args = parser.parse_args()
    sys.argv = [sys.argv[0], "--scenes", *args.scenes] if args.scenes else [sys.argv[0], "--scenes"]
    print("| scene | variant | halo (near / far) | PSNR | CPU s |\n|---|---|---|---|---|")
    if args.scenes:
        for name, st, truth, source, analysis, _ in scenes_from_args(__doc__):
            if args.residual:
                residual_choice(name, st, truth, source, analysis)
            else:
                run(name, source, analysis, st, truth)
    dest = Path(os.environ.get("HALO_OUT", "/tmp/halo13"))
    dest.mkdir(parents=True, exist_ok=True)
    # Crops in the command's output pixels (issue 15's coordinates), and the command's crop of the reference
    # frame (top, left; ``postfocus.stack(...).crop``): the in-process fusion is in the uncropped reference geometry.
    boxes = {"pcb": ((1380, 740, 1560, 900), (25, 18)), "keyboard": ((1580, 620, 1885, 800), (10, 20))}
    from postfocus.fuse.occlusion import occlusion_aware_index
    from postfocus.io.open import open_source
    from postfocus.pipeline.analyse import analyse
    for name in args.real if args.check else ():
        real_check(name, boxes[name][0])
    for name in args.real if not args.check else ():
        source = open_source([f"/work/wt/shared/data/{name}"])
        analysis = analyse(source)
        images = run(name, source, analysis)
        (x0, y0, x1, y1), (top, left) = boxes[name]
        cut = (slice(y0 + top, y1 + top), slice(x0 + left, x1 + left))
        named = {}
        for label, image in images.items():
            crop = cv2.cvtColor(np.round(np.clip(image[cut], 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(dest / f"real-{name}-{label.split(' (')[0].replace(' ', '_').replace(',', '')}.png"), crop)
            named[label] = crop
        strip = [named[k] for k in ("default", "pyramid", "detail transfer, s 2.5",
                                    "detail transfer, s 2.5, coarse agreement 0.04")]
        maps = analysis.maps
        safe = occlusion_aware_index(maps.focus_index, maps.volume, maps.confidence, maps.used)
        h, w = next(iter(images.values())).shape[:2]
        last = float(max(maps.used))
        crops = []
        for index in (maps.focus_index, safe):  # the chosen frame (index) in the crop, jet: blue = frame 0
            full = cv2.resize(np.asarray(index, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)[cut]
            crops.append(full)
            strip.append(cv2.applyColorMap(np.round(np.clip(full / last, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET))
        if name == "pcb":  # how far past the pin's gold outline (the default's crop) the low indices reach
            image = images["default"][cut]
            mask = cv2.morphologyEx(((image[..., 0] - image[..., 2]) > 45 / 255).astype(np.uint8),
                                    cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
            n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
            pin = labels == 1 + int(np.argmax(stats[1:, 4]))
            away = cv2.distanceTransform((~pin).astype(np.uint8), cv2.DIST_L2, 5)
            x, y, pw, ph = (int(v) for v in stats[1 + int(np.argmax(stats[1:, 4])), :4])
            near = np.zeros_like(pin)
            near[:y + ph - 35, max(0, x - 26):x + pw + 38] = True  # beside the pin, above the crop's lower pins
            for label, index, below in (("index", crops[0], 1), ("safe index", crops[1], 1), ("safe index", crops[1], 3)):
                sel = (index < below) & ~pin & near & (away < 40)
                q = np.percentile(away[sel], [50, 90, 100])
                print(f"pcb: pin x {x}-{x + pw} of the crop; {label} below {below} reaches {q[0]:.1f} px (median), "
                      f"{q[1]:.1f} px (p90), {q[2]:.1f} px (max) past its outline")
        cv2.imwrite(str(dest / f"halo13-{name}-all.png"), np.hstack(strip))
        # docs/img/halo13-<stack>.png: pcb default, pyramid, transfer s 2.5, index, safe index; keyboard default,
        # pyramid, index, safe index over its first 180 columns (the groove)
        panels = [strip[i][:, :180] for i in ((0, 1, 2, 4, 5) if name == "pcb" else (0, 1, 4, 5))]
        sep = np.full((panels[0].shape[0], 3, 3), 255, np.uint8)
        cv2.imwrite(str(dest / f"halo13-{name}.png"), np.hstack([x for p in panels for x in (p, sep)][:-1]),
                    [cv2.IMWRITE_PNG_COMPRESSION, 9])

if __name__ == "__main__":
    main()
