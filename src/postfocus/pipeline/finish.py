"""The end of a run that keeps the processed stack: the folder's last files written beside the caller's output.

After the fusion, :func:`~postfocus.pipeline.run.process` writes the stack folder's all-in-focus PNG and
its manifest; the command line then wrote its own output (a JPEG) from the same image, and the image was
rounded once more for the :class:`~postfocus.store.ProcessedStack` handed back. Each of these is a few tens
to a hundred milliseconds at 4K and they ran one after the other on one core, the other idle, at the end
of every run (docs/performance.md, "The 4K sweep, twelfth session"). Here the PNG and the manifest are
written on the calling thread while a second thread rounds the image to the folder's integers and hands
them, as float, to ``on_image`` (the caller's own output, from the image a reused folder would give). The
PNG's deflating (libdeflate, :mod:`postfocus.io.png`) and the JPEG's encoding let the GIL go, so the two
share the cores. What each one writes is what it wrote before.
"""

from __future__ import annotations

from concurrent.futures import wait
from typing import Callable, Sequence

import numpy as np

from postfocus.io.images import to_float
from postfocus.io.write import to_uint
from postfocus.pipeline.threads import in_background

__all__ = ["OnImage", "write_beside"]

#: ``on_image(image, used, reference)``: the all-in-focus image as the stack folder holds it (float32 from
#: the folder's integers), the frame numbers merged and the reference frame
#: (:func:`~postfocus.pipeline.run.process`).
OnImage = Callable[[np.ndarray, Sequence[int], int], object]


def write_beside(write: Callable[[], None], image: np.ndarray, *, bits: int, on_image: OnImage | None,
                 used: Sequence[int], reference: int, inline: bool = False, overwrite: bool = False
                 ) -> tuple[np.ndarray, BaseException | None]:
    """Run ``write()`` while another thread rounds ``image`` to ``bits`` and calls ``on_image``.

    Parameters
    ----------
    write : callable
        Writes the stack folder's last files (on the calling thread); what it raises is raised here,
        once the other thread is done.
    image : numpy.ndarray
        The all-in-focus image, float in [0, 1].
    bits : int
        8 or 16: the integers the folder's image holds (:meth:`~postfocus.store.ProcessedStack.written`).
    on_image : callable or None
        ``on_image(image, used, reference)``, on the other thread, with the rounded image as float32
        (what :meth:`~postfocus.store.ProcessedStack.all_in_focus` hands out after :meth:`written`).
    used, reference : sequence of int, int
        Handed to ``on_image``.
    inline : bool
        Everything on the calling thread (a thread budget of one): the rounding and ``on_image`` first.
    overwrite : bool
        The float image handed to ``on_image`` is made in ``image``'s own memory (float32, contiguous; else a new
        array as without it): ``image`` then holds its rounded values, and no second float image is alive beside
        it (238 MB at algae's 20 MP). ``write`` may read ``image`` meanwhile: each value, as it was or rounded,
        rounds to the same integer (:func:`_rounded_float`), so it writes the same file.

    Returns
    -------
    tuple
        The rounded image and what ``on_image`` raised (None if nothing): the caller keeps the folder
        (written whole) and raises it then.

    Examples
    --------
    >>> pixels, error = write_beside(lambda: None, np.full((2, 2, 3), 0.5, np.float32), bits=8, on_image=None,
    ...                              used=[0, 1], reference=0)
    >>> int(pixels[0, 0, 0]), error
    (128, None)
    """
    def side() -> tuple[np.ndarray, BaseException | None]:
        pixels = to_uint(image, bits)
        try:
            if on_image is not None:  # the image as the folder holds it (what ProcessedStack.all_in_focus gives)
                on_image(_rounded_float(pixels, image if overwrite else None), used, reference)
        except Exception as exc:  # (raised by the caller once the folder is kept)
            return pixels, exc
        return pixels, None

    beside = in_background(side, "postfocus-out", inline=inline)
    try:
        write()
    finally:
        wait([beside])
    return beside.result()


def _rounded_float(pixels: np.ndarray, image: np.ndarray | None) -> np.ndarray:
    """:func:`~postfocus.io.images.to_float` of ``pixels``, into ``image`` when it can hold it (the same values).

    Every value written is ``u / top`` for the integer ``u`` that :func:`~postfocus.io.write.to_uint` made of
    the value it replaces, and rounds back to ``u`` (its float32 error, at most 65535 * 2**-22 = 0.016, is far
    from the 0.5 that would change it); a value is written whole, so a reader sees it as it was or rounded.

    Examples
    --------
    >>> image = np.array([[0.2, 0.7]], np.float32)
    >>> out = _rounded_float(to_uint(image, 8), image)
    >>> out is image, to_uint(out, 8).tolist()
    (True, [[51, 179]])
    """
    if image is None or image.dtype != np.float32 or image.shape != pixels.shape or not image.flags.c_contiguous \
            or not image.flags.writeable or pixels.dtype not in (np.uint8, np.uint16):
        return to_float(pixels)
    top = 255.0 if pixels.dtype == np.uint8 else 65535.0
    return np.multiply(pixels, np.float32(1.0 / top), out=image, dtype=np.float32)  # (to_float's product)
