"""The stacking pipeline, one stage a module.

- :mod:`~postfocus.pipeline.analyse` -- pass 1: frames are decoded, shrunk,
  aligned to their neighbours and measured for focus; an :class:`Analysis`
  (alignment report and :class:`~postfocus.maps.StackMaps`) comes out.
- :mod:`~postfocus.pipeline.merge` -- pass 2: frames are decoded again,
  warped to the reference at full resolution and folded into a fusion.
- :mod:`~postfocus.pipeline.memory` -- how much memory pass 2 takes, and
  the bands of rows that keep it under a limit.
- :mod:`~postfocus.pipeline.threads` -- the background threads that overlap
  decoding with the work on the previous frame.
- :mod:`~postfocus.pipeline.run` -- :func:`stack` and :func:`process`, both
  passes end to end (the second also keeps the work in a stack folder).

Nothing is imported here, so each stage can be imported alone.
"""

__all__: list[str] = []
