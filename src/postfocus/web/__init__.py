"""``postfocus serve``: a web app to drop a focus sweep in and work on it in a browser.

Needs the ``web`` extra (starlette, uvicorn, python-multipart). The modules:
:mod:`~postfocus.web.app` (the Starlette app), :mod:`~postfocus.web.jobs`
(background processing), :mod:`~postfocus.web.store` (the data folder),
:mod:`~postfocus.web.upload` (safe uploads), :mod:`~postfocus.web.intake`
(uploads taken in as jobs: how many at once, stalls, a full disk), :mod:`~postfocus.web.ops` (tap,
merge, pop, aperture on a finished job), :mod:`~postfocus.web.lens` (the
aperture's blur over the scene's depths), :mod:`~postfocus.web.names` (names of
downloads and jobs).
"""

from __future__ import annotations


def __getattr__(name: str):  # noqa: ANN202 - keep the worker processes free of starlette
    if name == "create_app":
        from postfocus.web.app import create_app

        return create_app
    raise AttributeError(name)


__all__ = ["create_app"]
