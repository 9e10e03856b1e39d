"""GeoTIFF / COG files as IMAGE assets, with their optional JSON sidecar.

``DIR/<path>.tif`` is an image; ``DIR/<path>.json`` may give ``startTime``, ``endTime``
(RFC 3339), ``properties`` (object) and ``bands`` (list of band ids). Without ``bands``
the ids are the GeoTIFF band descriptions, else ``B1..Bn``. The file's nodata value and
internal masks are the missing data. Only metadata is kept in memory (so the image
pickles small for a server process); every read opens the file, which GDAL makes cheap.

The root is a jail for GDAL too, not only for Python's ``open``: files are opened with
the GTiff driver only (a VRT, or any other format, saved as ``.tif`` is refused: a VRT
can name any file on the machine or a URL), sibling files GDAL would look for on its own
(``.ovr``, ``.msk``, ``.aux.xml``: any format, e.g. a VRT) are ignored, and GDAL's
network file systems (``/vsicurl/``, ``/vsis3/``...) accept no URL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rasterio
import rasterio.io
import rasterio.windows

from eexarray.geometry import PixelGrid, Window, normalize_crs
from eexarray.server.images import PYRAMIDING_POLICIES, SUPPORTED_DTYPES, BandInfo, ServerImage, _as_utc

SIDECAR_KEYS = ("startTime", "endTime", "properties", "bands", "pyramidingPolicy")
# The only driver GDAL may use on a file of the root.
ROOT_DRIVER = "GTiff"
# GDAL configuration for every open of a root file (see the module docstring).
GDAL_JAIL_OPTIONS = {
    # GDAL assumes the directory holds nothing else: no external overview (.ovr), mask (.msk)
    # or PAM (.aux.xml) file is opened; those are opened with any driver.
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_PAM_ENABLED": "NO",  # nor is an .aux.xml written into the root
    # /vsicurl/ and the cloud file systems built on it refuse every file name without this
    # (impossible) extension, before any connection.
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".eexarray-server-makes-no-network-access",
}


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
            if value is not None and not isinstance(value, str):
                raise TypeError(value)  # JSON numbers, lists...: only text is a timestamp here
            times.append(_as_utc(value) if value is not None else None)
        except (TypeError, ValueError, OverflowError):  # OverflowError: year 0 once in UTC
            raise AssetFileError(
                f"Sidecar {os.path.basename(path)}: {key} must be an RFC 3339 timestamp "
                f"(0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z), got {value!r}"
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
            with open_root_file(self.path) as dataset:
                if dataset.crs is None:
                    raise AssetFileError(f"{name} has no CRS: a served GeoTIFF must be georeferenced")
                grid = PixelGrid(normalize_crs(dataset.crs), dataset.transform, dataset.width, dataset.height)
                dtypes = list(dataset.dtypes)
                nodata = list(dataset.nodatavals)
                descriptions = list(dataset.descriptions)
        except rasterio.errors.RasterioError as error:
            # GDAL's message names the file by its absolute path: never shown to clients.
            reason = str(error).replace(self.path, name)
            raise AssetFileError(f"{name} is not a readable GeoTIFF: {reason}") from None
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
        with open_root_file(self.path) as dataset:
            data = dataset.read([index + 1 for index in band_indices], window=rio_window, masked=True)
        return [np.ma.MaskedArray(np.ma.getdata(layer), np.ma.getmaskarray(layer)) for layer in data]


@contextlib.contextmanager
def open_root_file(path: str) -> Iterator[rasterio.io.DatasetReader]:
    """``path`` opened for reading as a GeoTIFF only, under ``GDAL_JAIL_OPTIONS``."""
    with rasterio.Env(**GDAL_JAIL_OPTIONS), rasterio.open(path, driver=ROOT_DRIVER) as dataset:
        yield dataset


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
