"""What reading a PNG frame's header costs: ``read_header`` on PNGs with the eXIf chunk before, after or without.

Writes six PNGs of ``--size`` (8- and 16-bit RGB by OpenCV, i.e. libpng's 8 kB IDAT chunks; each without an eXIf
chunk, with one before the image data as Pillow and postfocus write it, and with one after it), then reads each
file's header in a fresh process and prints its CPU time (``time.process_time``, median of ``--passes`` processes)
and how far the process's peak RSS grew during the call. Compare versions by running it with ``PYTHONPATH`` at
each one's ``src``, taking turns.

    PYTHONPATH=src python bench/bench_png_header.py --size 6000
    PYTHONPATH=/tmp/base/src python bench/bench_png_header.py --size 6000
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np

__all__: list[str] = []

_CHILD = """
import sys, time
from postfocus.io.images import read_header
def peak():  # kB; VmHWM, not ru_maxrss: that one keeps the parent's peak across fork and exec
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
before = peak()
t = time.process_time()
h = read_header(sys.argv[1])
cpu = time.process_time() - t
print(cpu, peak() - before, h.orientation)
"""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def write_cases(folder: Path, size: int) -> dict[str, Path]:
    """The six PNGs: {"8-bit, no eXIf": path, ...}."""
    from PIL import Image
    y, x = np.mgrid[0:size, 0:size]
    noise = (np.random.default_rng(0).random((size, size)) * 40).astype(np.uint8)
    px8 = np.dstack([((x + y) % 256).astype(np.uint8), ((x - y) % 256).astype(np.uint8), noise])
    ex = Image.Exif()
    ex[0x0112] = 6
    exif = _chunk(b"eXIf", ex.tobytes()[6:])
    out = {}
    for depth, px in ((8, px8), (16, px8.astype(np.uint16) * 257)):
        data = cv2.imencode(".png", px)[1].tobytes()
        idat, iend = data.find(b"IDAT") - 4, data.rfind(b"IEND") - 4
        for where, made in (("no eXIf", data), ("eXIf before IDAT", data[:idat] + exif + data[idat:]),
                            ("eXIf after IDAT", data[:iend] + exif + data[iend:])):
            path = folder / f"{depth}-{where.replace(' ', '_')}.png"
            path.write_bytes(made)
            out[f"{depth}-bit, {where}"] = path
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=6000, help="width and height in pixels")
    parser.add_argument("--passes", type=int, default=3, help="processes per file (the median is printed)")
    args = parser.parse_args()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        cases = write_cases(Path(tmp), args.size)
        print(f"{args.size}x{args.size}, read_header in a fresh process, median of {args.passes}")
        for name, path in cases.items():
            runs = [subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True,
                                   env=env, check=True).stdout.split() for _ in range(args.passes)]
            cpu = statistics.median(float(r[0]) for r in runs)
            rss = statistics.median(int(r[1]) for r in runs) / 1024
            print(f"  {name:28s} ({path.stat().st_size / 1e6:5.1f} MB): CPU {cpu:.3f} s, peak RSS +{rss:5.0f} MB, "
                  f"orientation {runs[0][2]}")


if __name__ == "__main__":
    main()
