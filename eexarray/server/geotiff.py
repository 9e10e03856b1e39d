"""GeoTIFF / COG files as IMAGE assets, with their optional JSON sidecar.

``DIR/<path>.tif`` is an image; ``DIR/<path>.json`` may give ``startTime``, ``endTime``
(RFC 3339), ``properties`` (object) and ``bands`` (list of band ids). Without ``bands``
the ids are the GeoTIFF band descriptions, else ``B1..Bn``. The file's nodata value and
internal masks are the missing data. Only metadata is kept in memory (so the image
pickles small for a server process); every read opens the file, which GDAL makes cheap.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rasterio
import rasterio.windows

from eexarray.geometry import PixelGrid, Window, normalize_crs
from eexarray.server.images import PYRAMIDING_POLICIES, SUPPORTED_DTYPES, BandInfo, ServerImage, _as_utc

SIDECAR_KEYS = ("startTime", "endTime", "properties", "bands", "pyramidingPolicy")


class AssetFileError(ValueError):
    """A file under the root that cannot be served as the asset it names."""


@dataclass(frozen=True)
class Sidecar:
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    band_ids: tuple[str, ...] | None = None
    pyramiding_policy: str | Mapping[str, str] | None = None  # one for all bands, or by band id


def read_sidecar(path: str) -> Sidecar:
    """The validated sidecar at ``path`` (a missing file is an empty sidecar)."""
    if not os.path.isfile(path):
        return Sidecar()
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except (OSError, ValueError) as error:
        raise AssetFileError(f"Sidecar {os.path.basename(path)} is not valid JSON: {error}") from None
    if not isinstance(content, dict):
        raise AssetFileError(f"Sidecar {os.path.basename(path)} must hold a JSON object with keys {SIDECAR_KEYS}")
    unknown = set(content) - set(SIDECAR_KEYS)
    if unknown:
        raise AssetFileError(
            f"Sidecar {os.path.basename(path)} has unknown keys {sorted(unknown)}; valid keys are {list(SIDECAR_KEYS)}"
        )
    times = []
    for key in ("startTime", "endTime"):
        value = content.get(key)
        try:
            times.append(_as_utc(value) if value is not None else None)
        except (TypeError, ValueError):
            raise AssetFileError(
                f"Sidecar {os.path.basename(path)}: {key} must be an RFC 3339 timestamp, got {value!r}"
            ) from None
    properties = content.get("properties", {})
    if not isinstance(properties, dict):
        raise AssetFileError(f"Sidecar {os.path.basename(path)}: properties must be an object, got {properties!r}")
    bands = content.get("bands")
    if bands is not None and (not isinstance(bands, list) or not all(isinstance(b, str) and b for b in bands)):
        raise AssetFileError(f"Sidecar {os.path.basename(path)}: bands must be a list of band ids, got {bands!r}")
    policy = content.get("pyramidingPolicy")
    policies = [policy] if isinstance(policy, str) else list(policy.values()) if isinstance(policy, dict) else None
    if policy is not None and (policies is None or any(p not in PYRAMIDING_POLICIES for p in policies)):
        raise AssetFileError(
            f"Sidecar {os.path.basename(path)}: pyramidingPolicy must be one of {list(PYRAMIDING_POLICIES)} "
            f"or an object of them by band id, got {policy!r}"
        )
    return Sidecar(times[0], times[1], properties, tuple(bands) if bands is not None else None, policy)


@dataclass
class GeoTiffImage(ServerImage):
    """An image read from a GeoTIFF file; metadata from the file and its sidecar."""

    asset_id: str
    path: str
    band_ids: Sequence[str] | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    pyramiding_policy: str | Mapping[str, str] | None = None  # MEAN when not given
    pyramids = True  # a served GeoTIFF has pyramids, as a stored Earth Engine asset (eexarray.server.pyramids)

    def __post_init__(self) -> None:
        self.start_time = _as_utc(self.start_time)
        self.end_time = _as_utc(self.end_time) or self.start_time
        name = os.path.basename(self.path)
        try:
            with rasterio.open(self.path) as dataset:
                if dataset.crs is None:
                    raise AssetFileError(f"{name} has no CRS: a served GeoTIFF must be georeferenced")
                grid = PixelGrid(normalize_crs(dataset.crs), dataset.transform, dataset.width, dataset.height)
                dtypes = list(dataset.dtypes)
                nodata = list(dataset.nodatavals)
                descriptions = list(dataset.descriptions)
        except rasterio.errors.RasterioError as error:
            raise AssetFileError(f"{name} is not a readable GeoTIFF: {error}") from None
        if self.band_ids is not None:
            band_ids = list(self.band_ids)
            if len(band_ids) != len(dtypes):
                raise AssetFileError(f"{name} has {len(dtypes)} bands but its sidecar names {len(band_ids)}")
        elif all(descriptions) and len(set(descriptions)) == len(descriptions):
            band_ids = [str(d) for d in descriptions]
        else:
            band_ids = [f"B{index + 1}" for index in range(len(dtypes))]
        bands = []
        for band_id, dtype, missing in zip(band_ids, dtypes, nodata):
            if np.dtype(dtype).name not in SUPPORTED_DTYPES:
                raise AssetFileError(f"{name} band {band_id!r} has dtype {dtype}; supported: {SUPPORTED_DTYPES}")
            if missing is not None and np.isnan(missing):
                missing = None if np.dtype(dtype).kind != "f" else float("nan")
            if missing is not None and np.dtype(dtype).kind in "iu":
                missing = int(missing)
            bands.append(BandInfo(band_id, dtype, grid, missing, self._policy(band_id)))
        if isinstance(self.pyramiding_policy, Mapping):
            unknown = sorted(set(self.pyramiding_policy) - set(band_ids))
            if unknown:
                raise AssetFileError(f"{name}: pyramidingPolicy names bands {unknown}; the bands are {band_ids}")
        self.bands = tuple(bands)

    def _policy(self, band_id: str) -> str:
        if isinstance(self.pyramiding_policy, Mapping):
            return self.pyramiding_policy.get(band_id, "MEAN")
        return self.pyramiding_policy or "MEAN"

    def read_band(self, band_index: int, window: Window) -> np.ma.MaskedArray:
        return self.read_bands([band_index], window)[0]

    def read_bands(self, band_indices: Sequence[int], window: Window) -> list[np.ma.MaskedArray]:
        rio_window = rasterio.windows.Window(window.col_start, window.row_start, window.width, window.height)
        with rasterio.open(self.path) as dataset:
            data = dataset.read([index + 1 for index in band_indices], window=rio_window, masked=True)
        return [np.ma.MaskedArray(np.ma.getdata(layer), np.ma.getmaskarray(layer)) for layer in data]


def load_geotiff(asset_id: str, tif_path: str, sidecar_path: str) -> GeoTiffImage:
    sidecar = read_sidecar(sidecar_path)
    return GeoTiffImage(
        asset_id,
        tif_path,
        band_ids=sidecar.band_ids,
        start_time=sidecar.start_time,
        end_time=sidecar.end_time,
        properties=dict(sidecar.properties),
        pyramiding_policy=sidecar.pyramiding_policy,
    )
