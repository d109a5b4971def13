"""Export a processed stack as ONE self-contained HTML page.

The page holds the viewer (``viewer.js``, ``viewer.css``), the frames scaled to
a long edge as JPEG or WebP, the all-in-focus picture, a depth picture, the
focus map (8-bit PNG) and the tap map (the answer of
:func:`postfocus.products.refocus.tap` for every focus-map pixel, an RGB PNG), all as
``data:`` URLs. It needs no server and makes no network request; a strict
Content-Security-Policy forbids any.

:func:`viewer_data` builds the data object that ``PostfocusViewer.mount``
takes; the local web app calls it with its own ``src`` function (one that
returns URLs instead of data: URLs) so that both use the same module.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import os
from importlib import resources
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from PIL import Image

from postfocus._version import __version__
from postfocus.errors import OutputError, PostfocusError
from postfocus.io.write import atomic_write, to_uint
from postfocus.labels import frame_time, is_named
from postfocus.options import check_threads
from postfocus.products.order import depth_order
from postfocus.products.retouch import retouched
from postfocus.store import ProcessedStack
from postfocus.viewer.scene import scene_frames
from postfocus.viewer.tapmap import TapMap, stack_tap_map

__all__ = [
    "DATA_VERSION",
    "FORMATS",
    "data_url",
    "depth_preview",
    "encode_picture",
    "encode_png",
    "export_page",
    "focus_map_pixels",
    "cleaned_focus_map",
    "render_page",
    "tap_map_pixels",
    "viewer_data",
    "viewer_script",
    "viewer_style",
    "volume_grid",
]

DATA_VERSION = 1
FORMATS = {"jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}

# src(name, payload, mime) -> the string the viewer puts in an <img src> (a data: URL by default).
SrcMaker = Callable[[str, bytes, str], str]
Progress = Callable[[str, int, int], None]


def data_url(name: str, payload: bytes, mime: str) -> str:  # noqa: ARG001 (name: for other SrcMakers)
    """``data:`` URL of ``payload``."""
    return f"data:{mime};base64," + base64.b64encode(payload).decode("ascii")


def _asset(name: str) -> str:
    return resources.files("postfocus.viewer").joinpath(name).read_text(encoding="utf-8")


def viewer_script() -> str:
    """The viewer module (``viewer.js``) and the living picture (``living.js``) as text."""
    return _asset("viewer.js") + "\n" + _asset("living.js")


def viewer_style() -> str:
    return _asset("viewer.css")


def _fit(image: np.ndarray, long_edge: int | None) -> np.ndarray:
    h, w = image.shape[:2]
    if not long_edge or max(h, w) <= long_edge:
        return image
    s = long_edge / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def encode_picture(image: np.ndarray, fmt: str = "jpeg", quality: int = 82) -> bytes:
    """float32 RGB in [0, 1] (or uint8) -> JPEG/WebP bytes."""
    if fmt not in FORMATS:
        raise PostfocusError(f"picture format {fmt!r}: use one of {', '.join(FORMATS)}")
    pixels = image if image.dtype == np.uint8 else to_uint(image, 8)
    if pixels.ndim == 2:
        pixels = np.dstack([pixels] * 3)
    buf = io.BytesIO()
    im = Image.fromarray(np.ascontiguousarray(pixels[:, :, :3]))
    if fmt == "jpeg":
        im.save(buf, format="JPEG", quality=int(quality), optimize=True, subsampling=0 if quality >= 90 else 2)
    else:
        im.save(buf, format="WEBP", quality=int(quality), method=4)
    return buf.getvalue()


def encode_png(pixels: np.ndarray) -> bytes:
    """8-bit grey or RGB PNG with no colour chunks, so a canvas reads back the exact values."""
    if pixels.dtype != np.uint8:
        raise ValueError("encode_png takes uint8")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _raster(src: SrcMaker, name: str, pixels: np.ndarray) -> dict:
    """A Raster of the data contract: PNG when 8-bit, base64 little-endian samples when 16-bit."""
    h, w = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    out: dict = {"width": int(w), "height": int(h), "channels": int(channels), "sum": int(pixels.sum(dtype=np.int64))}
    if pixels.dtype == np.uint8:
        out["src"] = src(name + ".png", encode_png(pixels), "image/png")
    else:
        out["data"] = base64.b64encode(pixels.astype("<u2").tobytes()).decode("ascii")
        out["dtype"] = "uint16"
    return out


def focus_map_pixels(focus_index: np.ndarray, lo: float, hi: float, bits: int = 8) -> np.ndarray:
    """Focus index (frame numbers) scaled to 0..255 (or 0..65535) over [lo, hi]."""
    top = 255 if bits == 8 else 65535
    span = max(hi - lo, 1e-6)
    v = np.clip((np.asarray(focus_index, np.float32) - lo) / span, 0, 1) * top
    return np.round(v).astype(np.uint8 if bits == 8 else np.uint16)


def tap_map_pixels(tm: TapMap) -> tuple[np.ndarray, float, float]:
    """Pack a tap map into 3 channels: slot, position (scaled), confidence | fallback << top bit."""
    n = len(tm.frames)
    bits = 8 if n <= 256 else 16
    top = 255 if bits == 8 else 65535
    half = (top + 1) // 2
    dtype = np.uint8 if bits == 8 else np.uint16
    lo, hi = float(min(tm.frames)), float(max(tm.frames))
    pos = np.round(np.clip((tm.position - lo) / max(hi - lo, 1e-6), 0, 1) * top)
    conf = np.round(np.clip(tm.confidence, 0, 1) * (half - 1)) + tm.fallback * half
    return np.dstack([tm.slot, pos, conf]).astype(dtype), lo, hi


def depth_preview(stack: ProcessedStack, picture: np.ndarray, result=None, *,  # noqa: ANN001
                  threads: int | None = None) -> np.ndarray:
    """Colour depth picture (the map and colours of ``postfocus depth --preview``, warm is near) at the size of ``picture``.

    ``result``: the stack's :class:`~postfocus.products.depth.DepthResult` when the caller holds it; else the
    stack's, made with the thread budget ``threads`` when not kept (None: the machine's cores).
    """
    from postfocus.products.depth import colourise, depth_range
    from postfocus.products.depth_cache import stack_depth

    threads = check_threads(threads)  # (refused with a ``result`` too)
    result = result if result is not None else stack_depth(stack, threads=threads)
    h, w = picture.shape[:2]
    depth = cv2.resize(result.depth, (w, h), interpolation=cv2.INTER_AREA)
    # Spread the colours over the depths this scene has (a macro subject may span a few frames of many).
    lo, hi = depth_range(depth, result.frames)
    return colourise(depth, result.frames, lo=lo, hi=hi)


def cleaned_focus_map(stack: ProcessedStack, result) -> np.ndarray:  # noqa: ANN001
    """The depth map's outlier-free depth as a focus index: frame numbers in recording order, at the stored map's size.

    The page's colour pop and depth view read it, so they agree with ``postfocus depth``, ``aperture``,
    ``mesh`` and ``pop`` (a confident-looking outlier of the raw focus index would show there).
    """
    mh, mw = np.asarray(stack.focus_index).shape[:2]
    frame = result.depth if stack.near_to_far else (result.frames - 1) - result.depth
    return cv2.resize(np.asarray(frame, np.float32), (mw, mh), interpolation=cv2.INTER_AREA)


def volume_grid(stack: ProcessedStack, long_edge: int = 96, radius: int = 6) -> tuple[np.ndarray, int]:
    """Coarse focus volume (N*gh, gw) uint8, slices stacked vertically, and the window radius in its pixels."""
    vol = np.asarray(stack.volume, np.float32)
    n, h, w = vol.shape
    s = min(1.0, long_edge / max(h, w))
    gw, gh = max(1, round(w * s)), max(1, round(h * s))
    grid = np.stack([cv2.resize(v, (gw, gh), interpolation=cv2.INTER_AREA) for v in vol])
    grid = np.round(np.clip(grid / max(float(grid.max()), 1e-12), 0, 1) * 255).astype(np.uint8)
    return grid.reshape(n * gh, gw), max(1, round(radius * s))


def viewer_data(
    stack: ProcessedStack,
    *,
    long_edge: int | None = 1600,
    quality: int = 82,
    fmt: str = "jpeg",
    src: SrcMaker = data_url,
    title: str | None = None,
    tap_map: bool = True,
    volume: bool = False,
    check: bool = False,
    pull_on_load: bool = True,
    order_stated: bool = False,
    progress: Progress | None = None,
    threads: int | None = None,
) -> dict:
    """The data object of ``PostfocusViewer.mount`` for a processed stack.

    Parameters
    ----------
    stack : ProcessedStack.
    long_edge : frames and all-in-focus are scaled down to this long edge (None: full size).
    quality : JPEG/WebP quality.
    fmt : "jpeg" or "webp".
    src : makes each picture's src from (name, bytes, mime); data: URLs by default.
    title : page title (default: the input folder or file name).
    tap_map : include the exact per-pixel tap answers (taps are then lookups).
    volume : include a coarse focus grid (taps computed in the browser when there is no tap map).
    check : include the forward-model check's residual heat map (:mod:`postfocus.viewer.residual`; a few seconds).
    pull_on_load : the page plays a short focus pull when it opens (``living.pull.onLoad``).
    order_stated : the depth order was given by the user (``--order``), not left at its default; ``order`` says
        which frame was taken as the nearest (:func:`postfocus.products.order.depth_order`), and the page says it
        when the order was assumed.
    progress : ``progress(stage, done, total)``: "page: frames" as the page is built, "depth map" when it makes the
        stack's map.
    threads : thread budget of the stack's depth map when it is made (None: the machine's cores; 1: the calling
        thread only).

    Returns
    -------
    dict, JSON-serialisable; see the header of ``viewer.js`` for the fields.
    """
    if fmt not in FORMATS:
        raise PostfocusError(f"picture format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not 1 <= int(quality) <= 100:
        raise PostfocusError(f"quality {quality}: use 1 to 100")
    threads = check_threads(threads)
    _, mime = FORMATS[fmt]
    ext = "jpg" if fmt == "jpeg" else "webp"
    h, w = stack.size
    used = [int(i) for i in stack.used]
    # People read 'Frame 3 of 7 (pcb_003.jpg)'; a video's or an array's frames have no file name (the generated
    # 0-based 'frame 0002' would contradict the 1-based count): a video's are said with their time, as
    # postfocus.labels.frame_label says them ('Frame 3 of 7 (0.08 s)'), an array's by number alone.
    video = stack.manifest.get("kind") == "video"
    names = [stack.names[i] if not video and is_named(stack.names[i], i) else "" for i in used]
    total = len(used) + 2
    frames = []
    for k, i in enumerate(used):
        picture = encode_picture(_fit(stack.read_frame(i), long_edge), fmt, quality)
        frames.append({"index": i, "src": src(f"frame{i:04d}.{ext}", picture, mime), "name": names[k]})
        if video and stack.info.fps:  # said by its time, as the command line says it ('frame 3 (0.08 s)')
            frames[-1]["time"] = frame_time(i, stack.info.fps)
        if progress:
            progress("page: frames", k + 1, total)
    aif = retouched(stack)  # with the stack's retouching edits, if any (postfocus.products.edits)
    aif_small = _fit(aif, long_edge)
    lo, hi = float(min(used)), float(max(used))
    from postfocus.products.depth_cache import stack_depth

    depth = stack_depth(stack, progress=progress, threads=threads)  # guided by the untouched all-in-focus image, the one its key holds
    fi = cleaned_focus_map(stack, depth)
    data: dict = {
        "format": "postfocus-viewer",
        "version": DATA_VERSION,
        "generator": f"postfocus {__version__}",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "title": title or _default_title(stack),
        "width": int(w),
        "height": int(h),
        "nearToFar": bool(stack.near_to_far),
        "order": depth_order(stack, stack.names, stated=order_stated, command="view"),
        "frames": frames,
        "frameCount": len(stack.names),
        "names": names,
        "allInFocus": src(f"all_in_focus.{ext}", encode_picture(aif_small, fmt, quality), mime),
        "focusMap": {**_raster(src, "focus_map", focus_map_pixels(fi, lo, hi)), "min": lo, "max": hi},
        "pop": {"tolerance": 1.0, "softness": 0.75},
        # the slider spans the frames the scene lies in (a macro subject may fill a few of a long sweep)
        "scene": scene_frames(depth.depth, depth.frames, used, near_to_far=stack.near_to_far),
    }
    data["depthPreview"] = src(f"depth.{ext}", encode_picture(depth_preview(stack, aif_small, depth), fmt, quality), mime)
    data["living"] = _living(stack, aif_small, depth.depth, src, fmt, quality, pull_on_load, data["scene"])
    if progress:
        progress("page: frames", len(used) + 1, total)
    if tap_map:
        answers = stack_tap_map(stack, threads=threads)
        packed, plo, phi = tap_map_pixels(answers)
        data["tapMap"] = {**_raster(src, "tap_map", packed), "positionMin": plo, "positionMax": phi,
                          "filledFrom": answers.filled_from}
        if stack.maps.grid_place is not None:  # (a kept stack's cut maps: taps on the uncut maps' grid, grid10)
            (sx, sy), origin, map_origin = stack.maps.map_grid()
            data["tapMap"]["grid"] = {"scale": [sx, sy], "origin": list(origin), "mapOrigin": list(map_origin)}
    if check:
        from postfocus.viewer.residual import residual_data

        pixels, info = residual_data(stack, aif_small.shape[:2], image=aif, depth=depth)  # the picture shown
        data["residual"] = {"src": src("residual.png", encode_png(pixels), "image/png"), **info}
    if volume:
        grid, radius = volume_grid(stack)
        data["volume"] = {**_raster(src, "volume", grid), "slices": len(used), "radius": radius}
    if progress:
        progress("page: frames", total, total)
    return data


def _living(stack: ProcessedStack, picture: np.ndarray, depth: np.ndarray, src: SrcMaker, fmt: str, quality: int,
            pull_on_load: bool, scene: dict) -> dict:
    """Parallax depth, background layer and focus-pull order (:mod:`postfocus.viewer.living`); the pull passes
    through the scene's frames (``scene``: :func:`~postfocus.viewer.scene.scene_frames`)."""
    from postfocus.viewer.living import living_data

    h, w = picture.shape[:2]
    small_depth = cv2.resize(depth, (w, h), interpolation=cv2.INTER_AREA)
    slots = [k for k, i in enumerate(stack.used) if scene["first"] <= i <= scene["last"]]
    ext, mime = ("jpg" if fmt == "jpeg" else "webp"), FORMATS[fmt][1]
    return living_data(slots if stack.near_to_far else slots[::-1], picture, small_depth,
                       lambda name, pixels: _raster(src, name, pixels),
                       lambda name, image: src(f"{name}.{ext}", encode_picture(image, fmt, quality), mime),
                       pull_on_load=pull_on_load)


def _default_title(stack: ProcessedStack) -> str:
    paths = [Path(p) for p in stack.manifest.get("paths", [])]
    if len(paths) == 1:
        return paths[0].stem if paths[0].is_file() or paths[0].suffix else paths[0].name
    if paths:
        parent = paths[0].parent.name
        return parent or paths[0].stem
    return "focus sweep"


def _json_for_script(data: dict) -> str:
    """JSON safe inside <script type="application/json">: no '</script', no '<!--'."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(data: dict) -> str:
    """The page HTML for a data object: template + CSS + viewer + data, nothing external."""
    from postfocus.viewer.residual import residual_script

    js = viewer_script()
    if "</script" in js.lower() or "</script" in residual_script().lower():
        raise PostfocusError("viewer.js must not contain '</script'")
    fallback = data.get("allInFocus", "") if str(data.get("allInFocus", "")).startswith("data:") else ""
    page = _asset("page.html")
    # Data last: nothing is substituted inside already substituted text.
    for key, value in (
        ("{{generator}}", html.escape(str(data.get("generator", "postfocus")))),
        ("{{title}}", html.escape(str(data.get("title", "focus sweep")))),
        ("{{frame_count}}", str(len(data.get("frames", [])))),
        ("{{created}}", html.escape(str(data.get("created", ""))[:10])),
        ("{{fallback_src}}", html.escape(fallback, quote=True)),
        ("/*{{css}}*/", viewer_style()),
        ("/*{{js}}*/", js),
        ("/*{{residual_js}}*/", residual_script() if data.get("residual") else ""),
        ("{{data}}", _json_for_script(data)),
    ):
        page = page.replace(key, value)
    return page


def export_page(
    stack: ProcessedStack,
    path: str | os.PathLike,
    *,
    long_edge: int | None = 1600,
    quality: int = 82,
    fmt: str = "jpeg",
    title: str | None = None,
    check: bool = False,
    pull_on_load: bool = True,
    order_stated: bool = False,
    progress: Progress | None = None,
    threads: int | None = None,
) -> Path:
    """Write the self-contained interactive page of a processed stack.

    Parameters
    ----------
    stack : ProcessedStack (from :func:`postfocus.process`).
    path : the .html file to write (atomically).
    long_edge : long edge of the frames in the page (default 1600; None: full size).
    quality : JPEG/WebP quality (default 82).
    fmt : "jpeg" (default) or "webp" (smaller; needs a browser from 2020 or later).
    check : add the forward-model check's residual heat map (a "Residual" toggle).
    pull_on_load : play a short focus pull when the page opens (never with reduced motion asked for).
    order_stated : the depth order was given by the user; else the page says, near its tools, the order it assumed.
    threads : thread budget of the stack's depth map when it is made (None: the machine's cores).

    Returns
    -------
    The path written.

    Examples
    --------
    >>> export_page(process("sweep.mp4"), "sweep.html")  # doctest: +SKIP
    PosixPath('sweep.html')
    """
    path, threads = Path(path), check_threads(threads)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{path}: output folder {parent} does not exist")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, not a file name")
    data = viewer_data(stack, long_edge=long_edge, quality=quality, fmt=fmt, title=title, check=check,
                       pull_on_load=pull_on_load, order_stated=order_stated, progress=progress, threads=threads)
    text = render_page(data)
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
