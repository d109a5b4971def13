"""What keeping an aligned frame costs: encoders for the processed stack's frames, per frame (issue 16).

For a few frames of one stack shape, each encoder's CPU time to write a frame and to read it back
(``time.thread_time``, OpenCV limited to one thread, as the stack folder's writer runs) and its bytes;
every lossless encoder is checked to read back to the same pixels. Encoders: the JPEG kept for JPEG and
video sources, OpenCV's PNG at levels 0-1 with its strategies and filters, uncompressed ``.npy`` and TIFF,
and TIFF (tifffile, imagecodecs) with zlib, LZW and Zstandard, with and without the horizontal predictor.

    python bench/bench_store_encoding.py pcb      # 3 frames of ../shared/data/pcb
    python bench/bench_store_encoding.py algae    # 2 frames of 20 MP PNG
    python bench/bench_store_encoding.py 4k       # 3 frames of keyboard_sweep.mp4 scaled to 3840x2160
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import cv2
import numpy as np
import tifffile

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
P, S, F = cv2.IMWRITE_PNG_COMPRESSION, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_FILTER
OPENCV = {
    "JPEG q97 4:4:4": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 97, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                                cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]),
    "PNG 1": (".png", [P, 1]),
    "PNG 1 RLE": (".png", [P, 1, S, cv2.IMWRITE_PNG_STRATEGY_RLE]),
    "PNG 1 HUFFMAN_ONLY": (".png", [P, 1, S, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]),
    "PNG 1 FILTERED": (".png", [P, 1, S, cv2.IMWRITE_PNG_STRATEGY_FILTERED]),
    "PNG 0": (".png", [P, 0]),
    "PNG 1 filter NONE": (".png", [P, 1, F, cv2.IMWRITE_PNG_FILTER_NONE]),
    "PNG 1 filter SUB": (".png", [P, 1, F, cv2.IMWRITE_PNG_FILTER_SUB]),
    "PNG 1 filter UP": (".png", [P, 1, F, cv2.IMWRITE_PNG_FILTER_UP]),
    "PNG 1 FAST_FILTERS": (".png", [P, 1, F, cv2.IMWRITE_PNG_FAST_FILTERS]),
    "PNG 1 filter UP, RLE": (".png", [P, 1, F, cv2.IMWRITE_PNG_FILTER_UP, S, cv2.IMWRITE_PNG_STRATEGY_RLE]),
}
TIFF = {
    "TIFF none": {},
    "TIFF zlib 1": dict(compression="zlib", compressionargs={"level": 1}),
    "TIFF zlib 1 + predictor": dict(compression="zlib", compressionargs={"level": 1}, predictor=True),
    "TIFF LZW + predictor": dict(compression="lzw", predictor=True),
    "TIFF zstd 1": dict(compression="zstd", compressionargs={"level": 1}),
    "TIFF zstd 1 + predictor (kept)": dict(compression="zstd", compressionargs={"level": 1}, predictor=True),
    "TIFF zstd 2 + predictor": dict(compression="zstd", compressionargs={"level": 2}, predictor=True),
}


def frames(kind: str) -> list[np.ndarray]:
    """A few BGR frames of one stack shape."""
    if kind in ("pcb", "algae"):
        suffix = "*.jpg" if kind == "pcb" else "*.png"
        return [cv2.imread(str(p)) for p in sorted((DATA / kind).glob(suffix))[:3 if kind == "pcb" else 2]]
    import av

    out = []
    with av.open(str(DATA / "keyboard_sweep.mp4")) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in (5, 20, 35):
                out.append(cv2.resize(frame.to_ndarray(format="bgr24"), (3840, 2160), interpolation=cv2.INTER_LINEAR))
            if i >= 35:
                break
    return out


def measure(name: str, encode, decode, images: list[np.ndarray], lossless: bool) -> str:  # noqa: ANN001
    enc = dec = 0.0
    size = 0
    for image in images:
        start = time.thread_time()
        data = encode(image)
        enc += time.thread_time() - start
        size += len(data)
        start = time.thread_time()
        back = decode(data)
        dec += time.thread_time() - start
        if lossless:
            assert np.array_equal(back, image), name
    n = len(images)
    return f"| {name} | {enc / n * 1000:.1f} | {dec / n * 1000:.1f} | {size / n / 1e6:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["pcb", "algae", "4k"])
    kind = parser.parse_args().kind
    cv2.setNumThreads(1)
    images = frames(kind)
    print(f"{kind}: {len(images)} frames of {images[0].shape}\n")
    print("| encoder | write ms | read ms | MB |\n|---|---|---|---|")
    for name, (ext, params) in OPENCV.items():
        print(measure(name, lambda im, e=ext, p=params: cv2.imencode(e, im, p)[1].tobytes(),
                      lambda d: cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_UNCHANGED), images,
                      ext == ".png"), flush=True)

    def tiff(image: np.ndarray, options: dict) -> bytes:
        out = io.BytesIO()
        tifffile.imwrite(out, image, photometric="rgb", maxworkers=1, **options)
        return out.getvalue()

    for name, options in TIFF.items():
        print(measure(name, lambda im, o=options: tiff(im, o), lambda d: tifffile.imread(io.BytesIO(d), maxworkers=1),
                      images, True), flush=True)

    def npy(image: np.ndarray) -> bytes:
        out = io.BytesIO()
        np.save(out, image)
        return out.getvalue()

    print(measure(".npy", npy, lambda d: np.load(io.BytesIO(d)), images, True))


if __name__ == "__main__":
    main()
