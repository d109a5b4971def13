"""The alignment report: one :class:`FrameAlignment` per frame of a sweep.

Made by :meth:`~postfocus.align.sweep.SweepAligner.finish`, kept in results
and stack folders (:meth:`FrameAlignment.as_dict` / :meth:`FrameAlignment.from_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["FrameAlignment"]


@dataclass
class FrameAlignment:
    """Per-frame alignment report.

    Attributes
    ----------
    index : int
        Frame number in the sweep.
    name : str
        The frame's name (file name, or video frame).
    matrix : numpy.ndarray
        3x3, reference pixel coordinates -> this frame's coordinates.
    gain : numpy.ndarray
        float32 per-channel factor that matches its exposure and white
        balance to the reference.
    correlation : float
        Match score to its neighbour (1 = perfect).
    method : str
        How it was matched ("reference", "ecc", "features+ecc", "features", "none").
    used : bool
        False for a frame left out.
    note : str
        Why it was left out, if it was.
    """

    index: int
    name: str
    matrix: np.ndarray = field(default_factory=lambda: np.eye(3))
    gain: np.ndarray = field(default_factory=lambda: np.ones(3, np.float32))
    correlation: float = 1.0
    method: str = "reference"
    used: bool = True
    note: str = ""

    @property
    def shift(self) -> tuple[float, float]:
        """Translation part (dx, dy) of the matrix, in pixels."""
        return float(self.matrix[0, 2]), float(self.matrix[1, 2])

    @property
    def scale(self) -> float:
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:2, :2]))))

    @property
    def rotation_deg(self) -> float:
        return float(np.degrees(np.arctan2(self.matrix[1, 0] - self.matrix[0, 1], self.matrix[0, 0] + self.matrix[1, 1])))

    @classmethod
    def from_dict(cls, data: dict) -> "FrameAlignment":
        """The report written by :meth:`as_dict` (as kept in a stack folder's manifest)."""
        return cls(int(data["index"]), data["name"], matrix=np.asarray(data["matrix"], np.float64),
                   gain=np.asarray(data["gain"], np.float32), correlation=float(data["correlation"]),
                   method=data["method"], used=bool(data["used"]), note=data.get("note", ""))

    def as_dict(self) -> dict:
        return {
            "index": self.index,
            "name": self.name,
            "used": self.used,
            "method": self.method,
            "correlation": round(self.correlation, 5),
            "scale": round(self.scale, 6),
            "rotation_deg": round(self.rotation_deg, 4),
            "shift_px": [round(v, 3) for v in self.shift],
            # (float32's shortest digits: read back to the bit, so a stack folder's merge corrects exposure as pass 2 did)
            "gain": [float(str(np.float32(g))) for g in self.gain],
            "matrix": [[float(v) for v in row] for row in self.matrix],
            "note": self.note,
        }
