"""A textured 3D relief of a focus sweep: height-field mesh, preview and rocking GIF.

The depth map becomes a regular grid of vertices (decimated so the mesh has at
most ``max_faces`` triangles, 500 000 by default: a 4K image gives a grid
step of about 5.8 pixels), two triangles per grid cell, textured with the
all-in-focus image. Coordinates: the image's long edge spans 1 unit, x to the
right, y up, z towards the viewer; the nearest frame is ``relief`` units in
front of the farthest.

Formats, all written by hand with no 3D library:

* ``.ply``: binary little-endian PLY, per-vertex colour (uchar red/green/blue);
* ``.obj``: Wavefront OBJ with UVs, a ``.mtl`` material and ``<name>_texture.png``;
* ``.glb``: binary glTF 2.0 with the texture embedded (JPEG), unlit material.

:func:`render_view` draws the relief from an angle with a z-buffered point
splat and simple Lambert shading; :func:`rock_frames` makes the frames of a
gently rocking view (Zerene Stacker's "synthetic stereo"), written as a GIF.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from postfocus.errors import OptionError, PostfocusError, shown
from postfocus.io.write import atomic_write
from postfocus.options import check_threads, is_number, is_whole

__all__ = ["DEFAULT_MAX_FACES", "DEFAULT_RELIEF", "MAX_RELIEF", "MAX_TEXTURE", "MESH_FORMATS", "HeightMesh",
           "build_mesh", "check_relief", "glb_bytes", "grid_shape", "mesh_files", "obj_text", "ply_bytes",
           "render_view", "rock_frames", "stack_mesh", "write_gif", "write_mesh"]

MESH_FORMATS = (".ply", ".obj", ".glb")
DEFAULT_MAX_FACES = 500_000
DEFAULT_RELIEF = 0.25
MAX_RELIEF = 100.0  # deepest relief, in long edges (1e308: infinite heights in the file, an OverflowError in views)
MAX_TEXTURE = 4096


@dataclass
class HeightMesh:
    """A textured height-field mesh.

    Attributes
    ----------
    vertices : float32 (V, 3) x right, y up, z towards the viewer; long edge = 1.
    uv : float32 (V, 2) texture coordinates in [0, 1], glTF convention (v down).
    faces : uint32 (F, 3) counter-clockwise seen from the front.
    colours : uint8 (V, 3) sRGB colour of each vertex.
    texture : float32 (h, w, 3) texture image in [0, 1].
    grid : (rows, cols) of the vertex grid.
    """

    vertices: np.ndarray
    uv: np.ndarray
    faces: np.ndarray
    colours: np.ndarray
    texture: np.ndarray
    grid: tuple[int, int]


def _check(image: np.ndarray, depth: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise PostfocusError(f"image must be RGB (H, W, 3), got shape {image.shape}")
    if depth.shape != image.shape[:2]:
        raise PostfocusError(
            f"depth map is {depth.shape[1]}x{depth.shape[0]} but the image is {image.shape[1]}x{image.shape[0]}"
        )
    if min(depth.shape) < 2:
        raise PostfocusError("image too small for a mesh (needs at least 2x2 pixels)")
    if not np.isfinite(depth).all():  # (a NaN depth made a mesh file of NaN heights, exit 0)
        raise PostfocusError("depth map has NaN or infinite values")


def grid_shape(size: tuple[int, int], max_faces: int = DEFAULT_MAX_FACES) -> tuple[int, int]:
    """Rows and columns of vertices so that 2 * (rows - 1) * (cols - 1) <= max_faces.

    Examples
    --------
    >>> rows, cols = grid_shape((2160, 3840))
    >>> 2 * (rows - 1) * (cols - 1) <= 500_000, cols
    (True, 667)
    """
    h, w = size
    if not is_whole(max_faces) or max_faces < 2:  # ("9" was a TypeError)
        raise PostfocusError(f"max faces {shown(max_faces)}: must be a whole number of at least 2")
    cells = max_faces // 2
    if (h - 1) * (w - 1) <= cells:
        return h, w
    cols = max(2, min(w, int(math.floor(math.sqrt(cells * (w - 1) / max(h - 1, 1)))) + 1))
    rows = max(2, min(h, cells // (cols - 1) + 1))
    while 2 * (rows - 1) * (cols - 1) > max_faces and rows > 2:
        rows -= 1
    return rows, cols


def check_relief(relief: object) -> float:
    """``relief`` as a float from 0 to :data:`MAX_RELIEF`; else an ``OptionError`` for ``relief``."""
    if not (is_number(relief) and math.isfinite(relief) and 0 <= relief <= MAX_RELIEF):
        raise OptionError("relief", relief, f"must be a number from 0 to {MAX_RELIEF:g} (long edges)")
    return float(relief)


def _heights(depth: np.ndarray, frames: int, relief: float) -> np.ndarray:
    return (relief * (1.0 - np.clip(depth / max(frames - 1, 1), 0.0, 1.0))).astype(np.float32)


def build_mesh(
    image: np.ndarray,
    depth: np.ndarray,
    frames: int,
    *,
    max_faces: int = DEFAULT_MAX_FACES,
    relief: float = DEFAULT_RELIEF,
) -> HeightMesh:
    """Height-field mesh of a depth map, textured with ``image``.

    Parameters
    ----------
    image : float32 (H, W, 3) all-in-focus image in [0, 1].
    depth : float32 (H, W) depth in frames (0 = nearest).
    frames : number of frames of the sweep (depth range ``0..frames-1``).
    max_faces : upper bound on the triangle count (the grid is decimated to fit).
    relief : depth of the relief from nearest to farthest frame, in units of the long edge.

    Examples
    --------
    >>> m = build_mesh(np.zeros((40, 60, 3), np.float32), np.zeros((40, 60), np.float32), 8)
    >>> m.vertices.shape, m.faces.shape
    ((2400, 3), (4602, 3))
    """
    image = np.asarray(image, np.float32)
    depth = np.asarray(depth, np.float32)
    _check(image, depth)
    relief = check_relief(relief)
    h, w = depth.shape
    rows, cols = grid_shape((h, w), max_faces)
    if (rows, cols) == (h, w):
        d, colour = depth, image
    else:
        d = cv2.resize(depth, (cols, rows), interpolation=cv2.INTER_AREA)
        colour = cv2.resize(image, (cols, rows), interpolation=cv2.INTER_AREA)
    long_edge = float(max(h - 1, w - 1, 1))
    px = np.linspace(0.0, w - 1, cols, dtype=np.float32)
    py = np.linspace(0.0, h - 1, rows, dtype=np.float32)
    gx, gy = np.meshgrid(px, py)
    x = (gx - (w - 1) / 2) / long_edge
    y = -(gy - (h - 1) / 2) / long_edge
    z = _heights(d, frames, relief)
    vertices = np.stack([x, y, z], axis=-1).reshape(-1, 3).astype(np.float32)
    uv = np.stack([gx / max(w - 1, 1), gy / max(h - 1, 1)], axis=-1).reshape(-1, 2).astype(np.float32)
    idx = np.arange(rows * cols, dtype=np.uint32).reshape(rows, cols)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
    c, e = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    faces = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, e], 1)]).astype(np.uint32)
    colours = (np.clip(colour, 0, 1) * 255 + 0.5).astype(np.uint8).reshape(-1, 3)
    texture = image
    if max(h, w) > MAX_TEXTURE:
        s = MAX_TEXTURE / max(h, w)
        texture = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return HeightMesh(vertices, uv, faces, colours, texture, (rows, cols))


def stack_mesh(stack, *, max_faces: int = DEFAULT_MAX_FACES, relief: float = DEFAULT_RELIEF,  # noqa: ANN001
               progress=None, threads: int | None = None):  # noqa: ANN001
    """Mesh of a processed stack: its depth map (outliers removed and filled) textured with its all-in-focus image.

    ``progress(stage, done, total)``, optional, hears of the all-in-focus image and the depth map when the stack
    has not made them yet; ``threads`` is their thread budget when they are made (None: the machine's cores).

    Returns
    -------
    (mesh, image, depth): the :class:`HeightMesh`, the all-in-focus image and the
    :class:`~postfocus.products.depth.DepthResult` it was built from (for previews).
    """
    from postfocus.products.depth_cache import stack_depth

    threads = check_threads(threads)  # (refused before any work)
    check_relief(relief)
    image = stack.all_in_focus(progress=progress, threads=threads)
    result = stack_depth(stack, image=image, progress=progress, threads=threads)
    return build_mesh(image, result.depth, result.frames, max_faces=max_faces, relief=relief), image, result


# --------------------------------------------------------------------------
# Writers


def _encode(image: np.ndarray, ext: str, quality: int = 92) -> bytes:
    pixels = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise PostfocusError(f"could not encode the texture as {ext}")
    return buf.tobytes()


def ply_bytes(mesh: HeightMesh) -> bytes:
    """Binary little-endian PLY with per-vertex colour."""
    nv, nf = len(mesh.vertices), len(mesh.faces)
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment made by postfocus: height field of a focus sweep\n"
        f"element vertex {nv}\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {nf}\nproperty list uchar int vertex_indices\nend_header\n"
    ).encode("ascii")
    vdt = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    v = np.empty(nv, vdt)
    v["x"], v["y"], v["z"] = mesh.vertices.T
    v["r"], v["g"], v["b"] = mesh.colours.T
    fdt = np.dtype([("n", "u1"), ("i", "<i4", (3,))])
    f = np.empty(nf, fdt)
    f["n"] = 3
    f["i"] = mesh.faces.astype(np.int32)
    return header + v.tobytes() + f.tobytes()


def obj_text(mesh: HeightMesh, mtl_name: str) -> str:
    """Wavefront OBJ text: vertices, UVs (v up, as OBJ wants), faces with shared indices."""
    out = io.StringIO()
    out.write(f"# postfocus height field: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces\n")
    out.write(f"mtllib {mtl_name}\no relief\n")
    np.savetxt(out, mesh.vertices, fmt="v %.6f %.6f %.6f")
    uv = np.column_stack([mesh.uv[:, 0], 1.0 - mesh.uv[:, 1]])
    np.savetxt(out, uv, fmt="vt %.6f %.6f")
    out.write("usemtl relief\ns off\n")
    f = mesh.faces.astype(np.int64) + 1
    np.savetxt(out, np.repeat(f, 2, axis=1), fmt="f %d/%d %d/%d %d/%d")
    return out.getvalue()


def glb_bytes(mesh: HeightMesh) -> bytes:
    """Binary glTF 2.0: positions, UVs, indices and the JPEG texture in one buffer."""
    parts: list[bytes] = []
    views: list[dict] = []
    offset = 0

    def add(blob: bytes, target: int | None) -> int:
        nonlocal offset
        view = {"buffer": 0, "byteOffset": offset, "byteLength": len(blob)}
        if target:
            view["target"] = target
        pad = (-len(blob)) % 4
        parts.append(blob + b"\0" * pad)
        offset += len(blob) + pad
        views.append(view)
        return len(views) - 1

    pos = mesh.vertices.astype("<f4")
    v_pos = add(pos.tobytes(), 34962)
    v_uv = add(mesh.uv.astype("<f4").tobytes(), 34962)
    v_idx = add(mesh.faces.astype("<u4").tobytes(), 34963)
    v_img = add(_encode(mesh.texture, ".jpg"), None)
    doc = {
        "asset": {"version": "2.0", "generator": "postfocus"},
        "extensionsUsed": ["KHR_materials_unlit"],
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "relief"}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "indices": 2,
                                     "material": 0, "mode": 4}]}],
        "materials": [{"name": "all-in-focus", "doubleSided": True,
                       "pbrMetallicRoughness": {"baseColorTexture": {"index": 0}, "metallicFactor": 0.0,
                                                "roughnessFactor": 1.0},
                       "extensions": {"KHR_materials_unlit": {}}}],
        "textures": [{"sampler": 0, "source": 0}],
        "samplers": [{"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}],
        "images": [{"bufferView": v_img, "mimeType": "image/jpeg"}],
        "accessors": [
            {"bufferView": v_pos, "componentType": 5126, "count": len(pos), "type": "VEC3",
             "min": [float(x) for x in pos.min(axis=0)], "max": [float(x) for x in pos.max(axis=0)]},
            {"bufferView": v_uv, "componentType": 5126, "count": len(mesh.uv), "type": "VEC2"},
            {"bufferView": v_idx, "componentType": 5125, "count": int(mesh.faces.size), "type": "SCALAR",
             "min": [int(mesh.faces.min())], "max": [int(mesh.faces.max())]},
        ],
        "bufferViews": views,
        "buffers": [{"byteLength": offset}],
    }
    js = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    js += b" " * ((-len(js)) % 4)
    binary = b"".join(parts)
    total = 12 + 8 + len(js) + 8 + len(binary)
    return (struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<I4s", len(js), b"JSON") + js
            + struct.pack("<I4s", len(binary), b"BIN\0") + binary)


def mesh_files(path: str | os.PathLike) -> list[Path]:
    """The files :func:`write_mesh` writes for ``path``: itself, and for ``.obj`` its ``.mtl`` and texture PNG."""
    path = Path(path)
    if path.suffix.lower() != ".obj":
        return [path]
    return [path, path.with_suffix(".mtl"), path.with_name(path.stem + "_texture.png")]


def write_mesh(path: str | os.PathLike, mesh: HeightMesh) -> list[Path]:
    """Write ``mesh`` in the format of the suffix (.ply, .obj + .mtl + texture, .glb); returns the files written."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".ply":
        blob = ply_bytes(mesh)
        return [atomic_write(path, lambda p: p.write_bytes(blob))]
    if ext == ".glb":
        blob = glb_bytes(mesh)
        return [atomic_write(path, lambda p: p.write_bytes(blob))]
    if ext == ".obj":
        _, mtl, tex = mesh_files(path)
        png = _encode(mesh.texture, ".png")
        atomic_write(tex, lambda p: p.write_bytes(png))
        material = (f"# postfocus\nnewmtl relief\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\nmap_Kd {tex.name}\n")
        atomic_write(mtl, lambda p: p.write_text(material))
        text = obj_text(mesh, mtl.name)
        atomic_write(path, lambda p: p.write_text(text))
        return [path, mtl, tex]
    raise PostfocusError(f"{path}: unknown mesh format '{path.suffix}'; use {', '.join(MESH_FORMATS)}")


# --------------------------------------------------------------------------
# Views


def _rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    a, b = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]], np.float32)
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]], np.float32)
    return rx @ ry


def render_view(
    image: np.ndarray,
    depth: np.ndarray,
    frames: int,
    *,
    yaw: float = 25.0,
    pitch: float = 20.0,
    relief: float = DEFAULT_RELIEF,
    width: int = 640,
    background: tuple[float, float, float] = (0.12, 0.12, 0.13),
    shading: float = 0.5,
) -> np.ndarray:
    """The relief seen from an angle: orthographic, z-buffered point splat with Lambert shading.

    Parameters
    ----------
    yaw, pitch : rotation about the vertical and horizontal axes, degrees.
    width : width of the view in pixels (height follows the image's aspect).
    shading : strength of the light-and-shade (0 = texture only).

    Returns
    -------
    float32 (height, width, 3) in [0, 1].
    """
    image = np.asarray(image, np.float32)
    depth = np.asarray(depth, np.float32)
    _check(image, depth)
    relief = check_relief(relief)
    for name, value, good in (("yaw", yaw, is_number(yaw) and math.isfinite(yaw)), ("width", width, is_whole(width)
                              and 16 <= width <= 8192), ("pitch", pitch, is_number(pitch) and math.isfinite(pitch))):
        if not good:  # (width 0 was OpenCV's assertion, 10**5 a 100 GB view, a NaN yaw a ValueError)
            raise OptionError(name, value, "must be 16 to 8192 pixels" if name == "width" else "must be finite degrees")
    h, w = depth.shape
    out_w = int(width)
    out_h = max(1, int(round(out_w * h / w)))
    # Points: twice the view's resolution, so neighbours overlap and leave no gaps.
    pw, ph = 2 * out_w, 2 * out_h
    interp = cv2.INTER_AREA if pw < w else cv2.INTER_LINEAR
    d = cv2.resize(depth, (pw, ph), interpolation=interp)
    col = cv2.resize(image, (pw, ph), interpolation=interp)
    long_edge = float(max(pw - 1, ph - 1, 1))
    gx, gy = np.meshgrid(np.arange(pw, dtype=np.float32), np.arange(ph, dtype=np.float32))
    x = (gx - (pw - 1) / 2) / long_edge
    y = -(gy - (ph - 1) / 2) / long_edge
    z = _heights(d, frames, relief) - relief / 2
    # Normals of the height field for shading.
    dzdx = cv2.Sobel(z, cv2.CV_32F, 1, 0, ksize=3) / 8.0 * long_edge
    dzdy = -cv2.Sobel(z, cv2.CV_32F, 0, 1, ksize=3) / 8.0 * long_edge
    normals = np.stack([-dzdx, -dzdy, np.ones_like(z)], -1)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    rot = _rotation(yaw, pitch)
    px_, py_, pz_ = (x.ravel(), y.ravel(), z.ravel())
    sxf = rot[0, 0] * px_ + rot[0, 1] * py_ + rot[0, 2] * pz_
    syf = rot[1, 0] * px_ + rot[1, 1] * py_ + rot[1, 2] * pz_
    szf = rot[2, 0] * px_ + rot[2, 1] * py_ + rot[2, 2] * pz_
    light = np.asarray([-0.4, 0.5, 0.77], np.float32)
    light = (rot.T @ (light / np.linalg.norm(light))).astype(np.float32)  # the light turns with the viewer
    lambert = np.clip(normals.reshape(-1, 3) @ light, 0.0, 1.0)
    shade = (1.0 - shading) + shading * lambert
    colours = col.reshape(-1, 3) * shade[:, None]
    # Fixed scale for every angle (the unrotated frame plus margin), so a rocking view does not zoom.
    half_w = 0.5 * (pw - 1) / long_edge
    half_h = 0.5 * (ph - 1) / long_edge
    radius = math.sqrt(half_w**2 + half_h**2 + (relief / 2) ** 2)
    scale = 0.5 * out_w / max(half_w * 1.08, min(radius, half_w * 1.25))
    sx = np.rint(out_w / 2 + sxf * scale).astype(np.int64)
    sy = np.rint(out_h / 2 - syf * scale).astype(np.int64)
    ok = (sx >= 0) & (sx < out_w) & (sy >= 0) & (sy < out_h)
    pix = (sy * out_w + sx)[ok]
    # z-buffer: one sort on (pixel, depth towards the viewer); the last point of each pixel is in front.
    zz = szf[ok]
    zq = np.clip((zz - zz.min()) / max(float(np.ptp(zz)), 1e-12) * (2**20 - 1), 0, 2**20 - 1).astype(np.int64)
    order = np.argsort((pix << 20) | zq, kind="stable")
    pix_s = pix[order]
    last = np.r_[pix_s[1:] != pix_s[:-1], True]
    cc = colours[ok][order[last]]
    canvas = np.empty((out_h * out_w, 3), np.float32)
    canvas[:] = np.asarray(background, np.float32)
    hit = np.zeros(out_h * out_w, np.float32)
    canvas[pix_s[last]] = cc
    hit[pix_s[last]] = 1.0
    canvas = canvas.reshape(out_h, out_w, 3)
    hit = hit.reshape(out_h, out_w)
    # Inside the outline of the relief, close the gaps that splats leave (pinholes, and the steep
    # walls at depth edges, which a rasterised mesh would cover with stretched triangles).
    border = np.concatenate([np.arange(pw), np.arange(1, ph) * pw + pw - 1,
                             (ph - 1) * pw + np.arange(pw - 2, -1, -1), np.arange(ph - 2, 0, -1) * pw])
    outline = np.stack([out_w / 2 + sxf[border] * scale, out_h / 2 - syf[border] * scale], -1)
    inside = np.zeros((out_h, out_w), np.uint8)
    cv2.fillPoly(inside, [np.round(outline).astype(np.int32)], 1)
    for _ in range(64):
        todo = (hit == 0) & (inside > 0)
        if not todo.any():
            break
        num = cv2.boxFilter(canvas * hit[..., None], -1, (3, 3), normalize=False)
        den = cv2.boxFilter(hit, -1, (3, 3), normalize=False)
        fill = todo & (den >= 1)
        canvas[fill] = num[fill] / den[fill][:, None]
        hit = np.where(fill, 1.0, hit).astype(np.float32)
    return np.clip(canvas, 0.0, 1.0)


def rock_frames(image: np.ndarray, depth: np.ndarray, frames: int, *, count: int = 12, amplitude: float = 10.0,
                pitch: float = 8.0, relief: float = DEFAULT_RELIEF, width: int = 400) -> list[np.ndarray]:
    """Views rocking from side to side (yaw ``±amplitude`` degrees) for a looping GIF."""
    return [render_view(image, depth, frames, yaw=amplitude * math.sin(2 * math.pi * i / count), pitch=pitch,
                        relief=relief, width=width) for i in range(count)]


def write_gif(path: str | os.PathLike, views: list[np.ndarray], duration_ms: int = 80) -> Path:
    """A looping GIF of ``views`` (:func:`postfocus.io.animation.write_gif`: one palette, written atomically)."""
    from postfocus.io.animation import write_gif as write_animated_gif

    return write_animated_gif(path, views, duration_ms=duration_ms)
