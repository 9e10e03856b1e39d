"""Assemble the xarray Dataset of an opened asset: variables, coordinates, CRS, chunks."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Hashable
from typing import Any

import dask.array as da
import numpy as np
import rioxarray  # noqa: F401 - registers the .rio accessor users expect on our Datasets
import xarray as xr
from dask.array.core import normalize_chunks
from dask.base import tokenize
from xarray.core import indexing

from eexarray.backend.arrays import (
    BAND_METADATA,
    ORIGIN,
    EexarrayBackendArray,
    EexarrayVariable,
    Origin,
    decode_masked,
    origin_of,
)
from eexarray.backend.graph import Finish, band_arrays
from eexarray.backend.metadata import BandMeta, ResolvedAsset, time_coordinate
from eexarray.backend.options import OpenOptions
from eexarray.backend.properties import coordinate_name, coordinate_values, property_names
from eexarray.engine.plan import BlockLayout, ReadPlan
from eexarray.engine.source import PixelSource
from eexarray.geometry import PixelGrid, Window
from eexarray.planning import auto_tile_shape
from eexarray.transport import ConnectionConfig

# Windows of one open whose arrays are kept (the variables of one selection share them).
GRAPH_CACHE_SIZE = 32


def float_dtype_for(dtype: str) -> str:
    """The smallest float dtype that holds every value of ``dtype`` exactly (for mask_and_scale):
    float32 for float32 and integers of up to 16 bits, float64 for the rest."""
    kind = np.dtype(dtype)
    small = kind == np.float32 or (kind.kind in "iu" and kind.itemsize <= 2)
    return "float32" if small else "float64"


def resampling_of(resolved: ResolvedAsset, mode: str) -> str:
    """The resampling reads need: ``mode`` when the output grid is not the native lattice of
    every band (Earth Engine resamples only pixels computed off their native grid), else
    nearest, so native-aligned reads stay plain getPixels."""
    if mode == "nearest" or all(resolved.grid.offset_in(band.grid) is not None for band in resolved.bands):
        return "nearest"
    return mode


class OpenedAsset:
    """State shared by the variables of one open: the source and its dask arrays per layout."""

    def __init__(self, resolved: ResolvedAsset, config: ConnectionConfig, options: OpenOptions) -> None:
        self.resolved = resolved
        self.options = options
        self.has_time = resolved.asset_type == "IMAGE_COLLECTION"
        self.source = PixelSource(
            config=config,
            images=resolved.image_names,
            grid=resolved.grid,
            band_ids=tuple(band.id for band in resolved.bands),
            dtypes=tuple(band.dtype for band in resolved.bands),
            file_format=options.file_format,
            expressions=resolved.expressions,
            mosaics=resolved.mosaics,
            request_cache=options.request_cache,
            versions=resolved.versions or None,
            masks=options.mask_and_scale,  # decoded values need exact masks (fetched with the pixels)
            # One name per open: computations that had to split remember their working size under it.
            split_scope=uuid.uuid4().hex,
            resampling=resampling_of(resolved, options.resampling),
        )
        grid = resolved.grid
        dtypes = self.source.dtypes
        rows, cols = auto_tile_shape(grid.height, grid.width, dtypes, self.source.planning_limits(len(dtypes)))
        self.preferred: dict[Hashable, int] = {"y": rows, "x": cols}  # keyed like xarray dims
        if self.has_time:
            self.preferred = {"time": 1, **self.preferred}
        self.variable_shape: tuple[int, ...] = grid.shape
        if self.has_time:
            self.variable_shape = (len(resolved.image_names), *grid.shape)
        # The bands every read fetches: the Dataset's variables (set by build_dataset).
        self.bands: tuple[int, ...] = tuple(range(len(resolved.bands)))
        self._arrays: dict[Any, dict[str, da.Array]] = {}
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> OpenedAsset:
        return self  # configuration and a cache of graphs: shared, like the asset itself

    def __getstate__(self) -> dict[str, Any]:
        # Pickles carry configuration only: no lock, no cached graphs.
        return {"resolved": self.resolved, "config": self.source.config, "options": self.options, "bands": self.bands}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["resolved"], state["config"], state["options"])  # type: ignore[misc]
        self.bands = state["bands"]

    def variable_dtype(self, band: int) -> str:
        dtype = self.source.dtypes[band]
        return float_dtype_for(dtype) if self.options.mask_and_scale else dtype

    def finish(self, data: np.ndarray, band: int) -> np.ndarray:
        """Apply ``mask_and_scale`` to fetched values (masked arrays when it is on)."""
        if not self.options.mask_and_scale:
            return data
        return decode_masked(data, float_dtype_for(self.resolved.bands[band].dtype))

    def dask_array(self, band: int, key: tuple[slice, ...], chunks: Any, dims: tuple[Hashable, ...]) -> da.Array:
        ranges = [item.indices(size)[:2] for item, size in zip(key, self.variable_shape)]
        shape = tuple(max(0, stop - start) for start, stop in ranges)
        if isinstance(chunks, dict):
            spec = tuple(chunks.get(dim, self.preferred[dim]) for dim in dims)
        elif chunks in (None, "auto") or isinstance(chunks, (int, tuple)):
            spec = (
                chunks
                if isinstance(chunks, tuple)
                else (chunks,) * len(dims)
                if chunks is not None
                else ("auto",) * len(dims)
            )
        else:
            raise TypeError(f"chunks must be a dict, int, tuple, 'auto' or None, got {chunks!r}")
        spec = tuple(self.preferred[dim] if value in ({}, None) else value for dim, value in zip(dims, spec))
        normalized = normalize_chunks(
            spec,
            shape,
            dtype=np.dtype(self.source.dtypes[band]),
            previous_chunks=tuple(self.preferred[dim] for dim in dims),
        )
        ranges_and_chunks = (tuple(ranges), tuple(tuple(c) for c in normalized))
        with self._lock:
            arrays = self._arrays.get(ranges_and_chunks)
            if arrays is None:
                plan = self.plan_reads(*ranges_and_chunks, self.bands)
                finishes = {}
                if self.options.mask_and_scale:
                    finishes = {
                        index: Finish(float_dtype_for(meta.dtype)) for index, meta in enumerate(self.resolved.bands)
                    }
                band_ids = {index: plan.source.band_ids[index] for index in self.bands}
                if len(self._arrays) >= GRAPH_CACHE_SIZE:
                    # Every isel/sel window builds arrays (pushdown): keep recent ones only. An evicted
                    # window is rebuilt with the same names, so variables holding it stay valid.
                    self._arrays.pop(next(iter(self._arrays)))
                arrays = self._arrays[ranges_and_chunks] = band_arrays(plan, band_ids, self.has_time, finishes)
        return arrays[self.source.band_ids[band]]

    def plan_reads(
        self, ranges: tuple[tuple[int, int], ...], chunks: tuple[tuple[int, ...], ...], bands: tuple[int, ...]
    ) -> ReadPlan:
        """The reads of ``bands`` over ``ranges`` (one ``(start, stop)`` per dim, asset coordinates) cut
        into ``chunks`` (normalized, one tuple per dim): the plan ``dask_array`` puts in the graph,
        for front ends that run the reads without dask (eexarray.beam)."""
        if self.has_time:
            (time_range, row_range, col_range), (time_chunks, row_chunks, col_chunks) = ranges, chunks
        else:
            (row_range, col_range), (row_chunks, col_chunks) = ranges, chunks
            time_range, time_chunks = (0, 1), (1,)
        layout = BlockLayout(tuple(time_chunks), tuple(row_chunks), tuple(col_chunks))
        window = Window(row_range[0], row_range[1], col_range[0], col_range[1])
        source = dataclasses.replace(
            self.source,
            images=self.source.images[time_range[0] : time_range[1]] if self.has_time else self.source.images,
            expressions=(
                self.source.expressions[time_range[0] : time_range[1]]
                if self.has_time and self.source.expressions is not None
                else self.source.expressions
            ),
            mosaics=(
                self.source.mosaics[time_range[0] : time_range[1]]
                if self.has_time and self.source.mosaics is not None
                else self.source.mosaics
            ),
            versions=(
                self.source.versions[time_range[0] : time_range[1]]
                if self.has_time and self.source.versions is not None
                else self.source.versions
            ),
            grid=self.source.grid.window(window),
        )
        token = tokenize(
            source.config.endpoint,
            source.images,
            source.expressions,
            source.mosaics,
            source.grid.to_rest(),
            source.band_ids,
            source.dtypes,
            source.file_format,
            source.resampling,  # the same window resampled otherwise holds other values
            layout,
            bands,
            self.options.mask_and_scale,
        )
        # Letters only: dask's task fusion keeps alphabetic words of key names, so the
        # plan's token survives in fused keys, where engine/run.py looks for its reads.
        token = token.translate(str.maketrans("0123456789", "ghijklmnop"))
        return ReadPlan.create(token, source, layout, bands)


def read_plan(dataset: xr.Dataset) -> ReadPlan:
    """The reads that fetch every data variable of a chunked eexarray Dataset (one per read task of its graph).

    The variables must hold exactly what eexarray opened - as opened, or selected with
    ``isel``/``sel`` - from one open, over one rectangle, with the same chunks. The plan
    reads the bands of those variables only. Raises ``ValueError`` otherwise.
    """
    origins = {}
    for name, variable in dataset.data_vars.items():
        origin = origin_of(variable)
        if origin is None or origin.chunks is None:
            raise ValueError(
                f"variable {name!r} does not hold pixels as eexarray opened them (chunked, or selected with "
                "isel/sel); derived variables are computed from the read chunks, not read"
            )
        origins[name] = origin
    if not origins:
        raise ValueError("the Dataset has no data variables to read")
    first = next(iter(origins.values()))
    for name, origin in origins.items():
        if origin.opened is not first.opened or origin.ranges != first.ranges or origin.chunks != first.chunks:
            raise ValueError(
                f"variable {name!r} comes from another open, window or chunking than {next(iter(origins))!r}; "
                "read variables of one open, selected and chunked alike"
            )
    bands = tuple(sorted({origin.band for origin in origins.values()}))
    assert first.chunks is not None  # checked above
    return first.opened.plan_reads(first.ranges, first.chunks, bands)


class InMemoryVariable(xr.Variable):
    """A per-image coordinate already in memory (image ids): chunking leaves it a numpy array.

    xarray chunks every non-index coordinate (``open_dataset(chunks=...)``, ``Dataset.chunk``);
    as a dask array an object coordinate is serialised with a warning by ``to_zarr``/``to_netcdf``
    and indexed by dask's fancy indexing, for no gain. ``open_dataset`` leaves variables that say
    they are in memory alone, and ``chunk`` of this one returns its values. A Dataset keeps the
    subclass for data variables made coordinates (``set_coords``), not for ``coords=`` entries.
    """

    __slots__ = ()

    @property
    def _in_memory(self) -> bool:
        return True  # its data is a numpy array, at most wrapped by xarray's copy-on-write adapter

    def chunk(self, *args: Any, **kwargs: Any) -> xr.Variable:
        return type(self)(self.dims, np.asarray(self.values), self.attrs, self.encoding)


def per_image_coordinate(values: Any) -> InMemoryVariable:
    """A coordinate along ``time`` (one value per image) that stays a numpy array; add it to a
    Dataset with ``add_per_image_coordinates``."""
    return InMemoryVariable("time", np.asarray(values))


def add_per_image_coordinates(dataset: xr.Dataset, coordinates: dict[str, InMemoryVariable]) -> xr.Dataset:
    """``dataset`` with ``coordinates`` (from ``per_image_coordinate``) as coordinates that stay numpy."""
    return dataset.assign(coordinates).set_coords(list(coordinates))


def spatial_ref_attrs(grid: PixelGrid) -> dict[str, Any]:
    """CF grid-mapping attributes plus GDAL's, as rioxarray writes and reads them."""
    crs = grid.pyproj_crs
    try:
        attrs = dict(crs.to_cf())
    except Exception:  # noqa: BLE001 - some WKT CRSs have no CF form; WKT alone still works
        attrs = {}
    wkt = crs.to_wkt()
    attrs["crs_wkt"] = wkt
    attrs["spatial_ref"] = wkt
    attrs["GeoTransform"] = " ".join(repr(float(v)) for v in grid.transform.to_gdal())
    return attrs


def build_dataset(opened: OpenedAsset, drop_variables: Any = None) -> xr.Dataset:
    resolved, grid = opened.resolved, opened.resolved.grid
    if not grid.is_axis_aligned:
        raise ValueError(f"The output grid {grid.transform} is rotated or sheared; eexarray needs a north-up grid")
    dims: tuple[str, ...] = ("time", "y", "x") if opened.has_time else ("y", "x")
    coords: dict[str, Any] = {
        "y": ("y", grid.y_coords(), {"axis": "Y", "long_name": "y coordinate of pixel centre", "units": _units(grid)}),
        "x": ("x", grid.x_coords(), {"axis": "X", "long_name": "x coordinate of pixel centre", "units": _units(grid)}),
        "spatial_ref": ((), np.int64(0), spatial_ref_attrs(grid)),
    }
    per_image = {}
    if opened.has_time:
        coords["time"] = ("time", time_coordinate(resolved.start_times))
        per_image["image_id"] = per_image_coordinate(np.array(resolved.image_ids, dtype=object))
        per_image.update(_property_coordinates(resolved, opened.options))
    drop = set([drop_variables] if isinstance(drop_variables, str) else drop_variables or [])
    clashes = [band.id for band in resolved.bands if band.id in {**coords, **per_image} and band.id not in drop]
    if clashes:
        raise ValueError(
            f"{resolved.name}: band(s) {clashes} have the name of a coordinate of the Dataset "
            f"({sorted(coords)}); leave them out with bands=[...] (or xarray.open_dataset's drop_variables={clashes!r})"
        )
    opened.bands = tuple(index for index, band in enumerate(resolved.bands) if band.id not in drop)
    variables = {}
    for index, band in enumerate(resolved.bands):
        if band.id in drop:
            continue
        attrs: dict[str, Any] = {}
        encoding: dict[str, Any] = {
            "grid_mapping": "spatial_ref",
            "preferred_chunks": dict(opened.preferred),
            BAND_METADATA: band_metadata(band),
        }
        # Attributes describe the array's values, so arithmetic that carries them stays honest.
        if opened.options.mask_and_scale:
            # Decoded: masked pixels are NaN, nothing else is. NaN is what to write back
            # (rio.nodata, to_netcdf/to_zarr); an integer fill would turn valid zeros into nodata.
            encoding["_FillValue"] = np.nan
        else:
            # Native values as getPixels sends them: every masked pixel is 0 (a band's declared
            # no-data values are masked by Earth Engine, so they arrive as 0 too). A valid 0 looks
            # the same: 0 is the no-data value of the array, and an ambiguous one.
            attrs["nodata"] = 0
            attrs["_FillValue"] = np.zeros((), band.dtype).item()
        data = indexing.LazilyIndexedArray(EexarrayBackendArray(opened, index))
        encoding[ORIGIN] = Origin(opened, index, dims, tuple((0, n) for n in opened.variable_shape))
        variables[band.id] = EexarrayVariable(dims, data, attrs, encoding)
    attrs = {_attr_name(k): _attr_value(v) for k, v in resolved.properties.items()}
    attrs["asset_id"] = resolved.name
    return add_per_image_coordinates(xr.Dataset(variables, coords=coords, attrs=attrs), per_image)


def band_metadata(band: BandMeta) -> dict[str, Any]:
    """A band's Earth Engine metadata, as the variable's ``encoding[BAND_METADATA]``."""
    return {
        "id": band.id,
        "data_type": band.data_type,
        "pyramiding_policy": band.pyramiding_policy,
        "missing_values": list(band.missing_values),
        "native_crs": band.grid.crs,
        "native_transform": list(band.grid.transform)[:6],
    }


def _property_coordinates(resolved: ResolvedAsset, options: OpenOptions) -> dict[str, InMemoryVariable]:
    """The ``properties=`` coordinates along ``time`` (plain numpy; see eexarray.backend.properties)."""
    if not options.properties:
        return {}
    per_step = resolved.image_properties
    names = list(options.properties) if isinstance(options.properties, tuple) else property_names(per_step)
    taken = {band.id for band in resolved.bands}
    return {
        coordinate_name(name, taken): InMemoryVariable(
            "time", coordinate_values([properties.get(name) for properties in per_step]), {"property": name}
        )
        for name in names
    }


def _units(grid: PixelGrid) -> str:
    axis = grid.pyproj_crs.axis_info
    return axis[0].unit_name if axis else "unknown"


def _attr_name(name: str) -> str:
    return str(name)


def _attr_value(value: Any) -> Any:
    """netCDF-safe attribute values: numbers and strings stay, anything else becomes JSON-ish text."""
    if isinstance(value, (str, int, float, np.number)) and not isinstance(value, bool):
        return value
    return str(value)
