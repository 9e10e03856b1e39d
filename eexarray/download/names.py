"""Names of what a download writes: base names, output bands and files inside a zip. Pure.

They follow ``ee.data.getDownloadId``: the base ``name`` defaults to the image id
(its last path segment, so it is a file name) or ``"download"`` for a computed
image; per-band files append the band name: ``<name>.<band>.tif``. A collection is
written like ``ImageCollection.toBands()``: its output bands are
``<system:index>_<band>`` (``system:index`` = the last segment of the image id),
image by image.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

COMPUTED_NAME = "download"
# Band names come from the server: in a file name inside a zip (and in the scratch directory
# the zip is built from) a character outside these becomes "_", so a band "../../x" or
# "a/b" cannot name a file elsewhere.
_UNSAFE_IN_FILE_NAME = re.compile(r"[^\w.\-]")


def last_segment(asset_id: str) -> str:
    return asset_id.rstrip("/").rsplit("/", 1)[-1]


def default_base_name(asset_id: str | None) -> str:
    """The getDownloadId default name: the image (or collection) id, ``"download"`` when computed."""
    return last_segment(asset_id) if asset_id else COMPUTED_NAME


def output_band_names(band_ids: Sequence[str], image_ids: Sequence[str] | None) -> list[str]:
    """Band names of a flat (GeoTIFF) output: band ids, or toBands names for a collection."""
    if image_ids is None:
        return list(band_ids)
    return [f"{last_segment(image)}_{band}" for image in image_ids for band in band_ids]


def zip_member_names(base: str, band_names: Sequence[str], per_band: bool) -> list[str]:
    """``<base>.tif`` for one multi-band file, else ``<base>.<band>.tif`` per band (made safe and distinct)."""
    if not per_band:
        return [f"{base}.tif"]
    members: list[str] = []
    for band in band_names:
        member = f"{base}.{_UNSAFE_IN_FILE_NAME.sub('_', band)}.tif"
        stem, number = member[: -len(".tif")], 1
        while member in members:  # two names made equal by the substitution
            number += 1
            member = f"{stem}_{number}.tif"
        members.append(member)
    return members
