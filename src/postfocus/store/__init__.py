"""The stack folder: the work of the first run on an input, kept for every later tap.

The first command on an input aligns and analyses it once and saves a *stack
folder*: aligned frames cropped to the output geometry, the maps
(:class:`~postfocus.maps.StackMaps`) and a manifest. Taps, range merges,
colour pop, depth and aperture then read that folder instead of aligning again.

Layout of a stack folder (format version :data:`FORMAT_VERSION`)::

    manifest.json        format, inputs (path, size, mtime), options, alignment report,
                         output geometry, frames kept/dropped, focus direction, warnings,
                         ``tap_floor`` (format 8: the volume's noise floor for a tap's window)
                         ``map_place`` (the maps' cut, :class:`~postfocus.maps.MapPlace`) and ``blur_slope``
                         (the occlusion-safe index's, measured on the uncut maps): both optional (fifteenth
                         session); without them a merge upscales on the cut grid and measures the slope again
    focus_index.npy      float32 (h, w) frame number per pixel, analysis size
    confidence.npy       float32 (h, w) in [0, 1]
    volume.npy           float16 (N_used, h, w) focus measure per used frame (divided by its maximum)
    motion.npy           float32 (h, w) motion mask in [0, 1]; absent when made with motion="off"
    frames/0003.jpg      aligned frame 3, output geometry (for lossless and 16-bit inputs ``0003.tif``:
                         TIFF, Zstandard level 1 after horizontal differencing); of a video
                         (``"frames_unwarped": true``), frame 3 as decoded, JPEG 4:2:0, warped
                         into the output geometry when read (:mod:`postfocus.store.unwarped`); of
                         JPEG, PNG or TIFF photos (format 7), also unwarped: ``0003.jpg`` (the input's
                         suffix) is a copy of frame 3's input file (its bytes, no second loss)
    all_in_focus_<method>.png
    depth_<method>.npz   the depth map, kept by its first consumer under a key (:mod:`postfocus.store.kept`;
                         not in the manifest: a damaged or stale one is made again)
    tap_floor.npz        of a folder made before format 8, ``tap_floor`` measured from its volume once, kept
                         the same way
    tap_depth_<method>.npz  the depth map's rules on the focus map's grid and their confidence, made at the first
                         tap that reads the depth while no depth map is kept (:mod:`postfocus.products.tap_depth`),
                         kept the same way; a depth map made later starts from it
    profile.icc          the inputs' colour profile, if any

Every map is in the output geometry, the same as a :class:`~postfocus.result.StackResult`'s.
Version 2 keys folders by :meth:`StackOptions.cache_key`; folders of another
version are never reused (their keys differ), so they are rebuilt;
:meth:`ProcessedStack.open` reads formats 4 to 8 and refuses others.

Stack folders live in the cache folder (``$POSTFOCUS_CACHE``, else
``$XDG_CACHE_HOME/postfocus``, else ``~/.cache/postfocus``) under a key made
from the inputs' paths, sizes and modification times and the processing
options; a changed input gets a new key, so a stale stack is never used.
"""

from postfocus.store.cache import CacheError, PartialFolder, cache_root, check_cache, find_stack_folders, folder_lock
from postfocus.store.folder import FORMAT_VERSION, CachedFrames, DamagedStackError, ProcessedStack, file_record, merge
from postfocus.store.write import FileCopies, FrameWriter, tap_floor, write_maps, write_stack_folder

__all__ = [
    "FORMAT_VERSION",
    "CacheError",
    "CachedFrames",
    "DamagedStackError",
    "FileCopies",
    "FrameWriter",
    "PartialFolder",
    "ProcessedStack",
    "cache_root",
    "check_cache",
    "file_record",
    "find_stack_folders",
    "folder_lock",
    "merge",
    "tap_floor",
    "write_maps",
    "write_stack_folder",
]
