"""Names people see: the file names of downloads and the titles of jobs.

A download is named after its job's title (:func:`slug`) and offered with a
``Content-Disposition`` header (:func:`attachment`); a job without a title is
named after its uploaded files (:func:`job_title`).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

__all__ = ["attachment", "job_title", "slug"]


def slug(text: str) -> str:
    """A short ASCII name for files made from ``text`` (file suffixes of inputs dropped).

    Parameters
    ----------
    text : str
        Any text, e.g. a job's title.

    Returns
    -------
    str
        Lower-case letters, digits and dashes, at most 60 characters; "postfocus" when nothing is left.

    Examples
    --------
    >>> slug("Café IMG_0001.JPG + 3 more")
    'cafe-img-0001-3-more'
    """
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"\.(?:jpe?g|png|tiff?|mp4|mov|m4v|mkv|avi|mts|m2ts)\b", "", text, flags=re.IGNORECASE)
    text = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return text[:60] or "postfocus"


def attachment(name: str) -> str:
    """The ``Content-Disposition`` value that saves a download as ``name``.

    Parameters
    ----------
    name : str
        The file name (any Unicode; browsers that cannot read ``filename*`` get its ASCII letters).

    Returns
    -------
    str

    Examples
    --------
    >>> print(attachment("flower-depth-map.png"))
    attachment; filename="flower-depth-map.png"; filename*=UTF-8''flower-depth-map.png
    """
    ascii_name = name.encode("ascii", "ignore").decode() or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


def job_title(files: list[dict]) -> str:
    """The title of a job its uploader did not name: its first file, and how many more.

    Parameters
    ----------
    files : list[dict]
        The uploaded files, in order, each with its ``"name"``.

    Returns
    -------
    str

    Examples
    --------
    >>> job_title([{"name": "P1000.MP4"}])
    'P1000.MP4'
    >>> job_title([{"name": "a.jpg"}, {"name": "b.jpg"}, {"name": "c.jpg"}])
    'a.jpg + 2 more'
    """
    first = files[0]["name"]
    if len(files) == 1:
        return first
    return f"{first} + {len(files) - 1} more"
