"""Run the peers (align_image_stack + enfuse) and postfocus as separate processes, timed.

Every run goes through ``/usr/bin/time -v`` so wall time and peak memory (max
resident set size) are measured the same way for every tool.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

TIME = "/usr/bin/time"


@dataclass
class Run:
    seconds: float
    peak_mb: float
    ok: bool
    output: Path | None
    log: str = ""
    cpu_seconds: float = 0.0  # user + system time of the process and its children
    aligned: list[Path] = field(default_factory=list)  # align_image_stack's TIFFs, when kept


def ensure_peers() -> None:
    """Install enfuse and align_image_stack (Debian packages) when missing."""
    missing = [p for p, tool in (("enfuse", "enfuse"), ("hugin-tools", "align_image_stack")) if not shutil.which(tool)]
    if not Path(TIME).exists():
        missing.append("time")
    if missing:
        print(f"installing {' '.join(missing)} with apt-get ...", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True)


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, int, str]:
    """Run ``cmd``; return (wall seconds, peak MB, exit code, stderr)."""
    return timed_cpu(cmd, cwd)[:4]


def timed_cpu(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, int, str, float]:
    """Run ``cmd``; return (wall seconds, peak MB, exit code, stderr, user + system CPU seconds)."""
    proc = subprocess.run([TIME, "-v", *cmd], cwd=cwd, capture_output=True, text=True)
    err = proc.stderr
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", err)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", err))
    seconds = 0.0
    if wall:
        parts = [float(p) for p in wall.group(1).split(":")]
        for p in parts:
            seconds = seconds * 60 + p
    return seconds, (int(rss.group(1)) / 1024 if rss else 0.0), proc.returncode, err, cpu


def run_postfocus(frames: list[Path], out: Path, method: str = "depthmap", extra: list[str] | None = None) -> Run:
    cmd = [sys.executable, "-m", "postfocus", "-q", "stack", *map(str, frames), "-o", str(out),
           "--method", method, "--no-cache", *(extra or [])]
    seconds, peak, code, err, cpu = timed_cpu(cmd)
    return Run(seconds, peak, code == 0 and out.exists(), out if out.exists() else None, err[-2000:], cpu)


def run_enfuse(frames: list[Path], out: Path, workdir: Path | None = None, keep_aligned: bool = False) -> Run:
    """align_image_stack (magnification optimised, neighbours chained) then enfuse for focus stacking.

    The aligned TIFFs are in the geometry of the first frame; so is the result. With ``keep_aligned``
    they stay on disk (``Run.aligned``; the caller removes them).
    """
    work = Path(tempfile.mkdtemp(prefix="ais-", dir=workdir))
    try:
        t1, m1, c1, e1, u1 = timed_cpu(["align_image_stack", "-m", "-a", str(work / "al_"), "--use-given-order",
                                        "-v", *map(str, frames)])
        aligned = sorted(work.glob("al_*.tif"))
        if c1 != 0 or not aligned:
            return Run(t1, m1, False, None, e1[-2000:], u1)
        t2, m2, c2, e2, u2 = timed_cpu(["enfuse", "--exposure-weight=0", "--saturation-weight=0",
                                        "--contrast-weight=1", "--hard-mask", "--contrast-window-size=9",
                                        f"--output={out}", *map(str, aligned)])
        ok = c2 == 0 and out.exists()
        return Run(t1 + t2, max(m1, m2), ok, out if ok else None, (e1 + e2)[-2000:], u1 + u2,
                   aligned if keep_aligned else [])
    finally:
        if not keep_aligned:
            shutil.rmtree(work, ignore_errors=True)
