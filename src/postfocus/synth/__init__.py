"""Physically based synthetic focus sweeps: the ground truth for quality tests.

A scene (sharp image + depth) is rendered through a thin-lens camera as a
sweep of frames focused from near to far, then shaken, breathed, exposed,
noised and compressed like a hand-held shot. Everything the camera did is
returned alongside, so results can be scored against the truth.

Examples
--------
>>> from postfocus.synth import scene, render_stack, oracle_composite, psnr
>>> img, depth01 = scene("steps", size=(160, 240))
>>> stack = render_stack(img, depth01, 8, shake_px=4.0, noise=0.01)
>>> psnr(oracle_composite(stack), stack.sharp) > 30  # doctest: +SKIP
True
"""

from postfocus.synth.files import write_stack
from postfocus.synth.metrics import psnr, ssim
from postfocus.synth.motion import MovingStack, flame_stack, mover_stack, parallax_stack, render_sequence
from postfocus.synth.render import SyntheticStack, oracle_composite, render_stack
from postfocus.synth.scenes import SCENES, fill_disparity, scene

__all__ = [
    "SCENES",
    "MovingStack",
    "SyntheticStack",
    "fill_disparity",
    "flame_stack",
    "mover_stack",
    "oracle_composite",
    "parallax_stack",
    "psnr",
    "render_sequence",
    "render_stack",
    "scene",
    "ssim",
    "write_stack",
]
