"""``ds.eexarray``: ``preview(...)``, a quick RGB look at a Dataset's region rendered by the server,
and ``plan()``, what computing the Dataset will cost (engine/cost.py; docs/costs.md).

The server draws the picture (getPixels with ``visualizationOptions``, as a PNG) on
the Dataset's own grid, scaled down to ``width`` pixels: one small request, no raw
pixels fetched, so a user sees where and what the data are before computing.

Registered on ``import eexarray``. Works on Datasets opened by eexarray (and on
selections of them: ``ds.isel(x=slice(...)).eexarray.preview()`` shows that
window). The connection is the one the Dataset was opened with.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine

from eexarray._optional import require
from eexarray.backend.arrays import BAND_METADATA, ORIGIN, Origin
from eexarray.backend.cost import dataset_reads
from eexarray.engine.cost import DEFAULT_BANDWIDTH, DEFAULT_LATENCY, ComputePlan, check_model, estimate
from eexarray.geometry import PixelGrid, normalize_crs
from eexarray.naming import asset_name
from eexarray.planning.limits import DEFAULT_LIMITS
from eexarray.transport import ConnectionConfig, RestClient
from eexarray.transport.api import get_pixels_png

OUTPUTS = ("figure", "image", "array")
DEFAULT_MAX_WIDTH = 1024


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return float(value)


def _per_band(value: Any, count: int, what: str) -> list[float]:
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != count:
            raise ValueError(f"{what} has {len(value)} values for {count} band(s); give one number or one per band")
        return [_finite(v, what) for v in value]
    return [_finite(value, what)] * count


def _palette_colors(palette: Any) -> list[str]:
    """Hex colours from a list of colours (hex or CSS names) or a matplotlib colormap name."""
    if isinstance(palette, str):
        matplotlib = require("matplotlib", "demo", f"palette={palette!r} (a matplotlib colormap name)")
        try:
            colormap = matplotlib.colormaps[palette]
        except KeyError:
            raise ValueError(
                f"palette={palette!r} is not a matplotlib colormap name; pass one (e.g. 'viridis') "
                "or a list of colours such as ['0000ff', 'ffffff', 'ff0000']"
            ) from None
        return [matplotlib.colors.to_hex(colormap(i / 15))[1:] for i in range(16)]
    if not isinstance(palette, Sequence) or not palette or not all(isinstance(c, str) and c for c in palette):
        raise TypeError(f"palette must be a colormap name or a non-empty list of colour strings, got {palette!r}")
    return [color.strip().lstrip("#") for color in palette]


def visualization_options(
    band_count: int, *, min: Any = None, max: Any = None, palette: Any = None, gamma: Any = None
) -> dict[str, Any]:
    """The REST ``visualizationOptions`` for ``band_count`` bands (1 or 3), checked before any request."""
    if band_count not in (1, 3):
        raise ValueError(f"preview draws 1 band (grey or palette) or 3 bands (red, green, blue), got {band_count}")
    options: dict[str, Any] = {}
    if (min is None) != (max is None):
        raise ValueError("give both min and max (the value range stretched to 0..255), or neither")
    if min is not None:
        lows, highs = _per_band(min, band_count, "min"), _per_band(max, band_count, "max")
        for low, high in zip(lows, highs):
            if low == high:
                raise ValueError(f"min and max are both {low}: the range to stretch is empty")
        options["ranges"] = [{"min": low, "max": high} for low, high in zip(lows, highs)]
    if palette is not None:
        if band_count != 1:
            raise ValueError(f"a palette colours one band; {band_count} bands were selected")
        options["paletteColors"] = _palette_colors(palette)
    if gamma is not None:
        value = _finite(gamma, "gamma")
        if value <= 0:
            raise ValueError(f"gamma must be positive, got {gamma!r}")
        options["gamma"] = {"value": value}
    return options


def _step(values: np.ndarray, what: str) -> float | None:
    if values.size < 2:
        return None
    steps = np.diff(values.astype("float64"))
    if not np.allclose(steps, steps[0], rtol=1e-6, atol=0):
        raise ValueError(f"preview needs evenly spaced {what} coordinates (a pixel grid); these are irregular")
    return float(steps[0])


def dataset_grid(ds: xr.Dataset | xr.DataArray) -> PixelGrid:
    """The pixel grid of a Dataset's ``x``/``y`` coordinates (pixel centres) and its CRS."""
    if "x" not in ds.dims or "y" not in ds.dims:
        raise ValueError(f"preview needs 'x' and 'y' dimensions; this Dataset has {tuple(ds.dims)}")
    x, y = ds["x"].values, ds["y"].values
    if x.size == 0 or y.size == 0:
        raise ValueError("preview of an empty selection (no x or y coordinate)")
    crs = ds.rio.crs
    if crs is None:
        raise ValueError("preview needs the Dataset's CRS (its 'spatial_ref' coordinate); none is set")
    dx, dy = _step(x, "x"), _step(y, "y")
    if dx is None or dy is None:
        native = ds.rio.transform()  # from spatial_ref's GeoTransform when one axis has a single pixel
        dx = dx if dx is not None else float(native.a)
        dy = dy if dy is not None else float(native.e)
    transform = Affine(dx, 0.0, float(x[0]) - dx / 2, 0.0, dy, float(y[0]) - dy / 2)
    return PixelGrid(normalize_crs(crs), transform, int(x.size), int(y.size))


def preview_grid(grid: PixelGrid, width: int | None, dtypes: Sequence[Any]) -> PixelGrid:
    """``grid``'s extent drawn ``width`` pixels wide (default: at most 1024), within one request's limits."""
    if width is None:
        width = min(grid.width, DEFAULT_MAX_WIDTH)
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"width must be a positive number of pixels, got {width!r}")
    width = int(width)
    height = max(1, round(grid.height * width / grid.width))
    limits = DEFAULT_LIMITS
    largest = limits.max_bytes // limits.bytes_per_pixel(dtypes)
    if width * height > largest or max(width, height) > limits.max_side:
        shrink = min(math.sqrt(largest / (width * height)), limits.max_side / max(width, height))
        width, height = max(1, int(width * shrink)), max(1, int(height * shrink))
    if (width, height) == (grid.width, grid.height):
        return grid
    t = grid.transform
    transform = Affine(t.a * grid.width / width, 0.0, t.c, 0.0, t.e * grid.height / height, t.f)
    return PixelGrid(grid.crs, transform, width, height)


def _opened_source(ds: xr.Dataset) -> Any:
    """The ``PixelSource`` the Dataset was opened with (from its variables' origin), or None."""
    for variable in ds.data_vars.values():
        origin = variable.encoding.get(ORIGIN)
        if isinstance(origin, Origin):
            return origin.opened.source
    return None


def _image_name(ds: xr.Dataset, time: Any) -> tuple[str, str]:
    """The image to draw and a label: the Dataset's image, or one image of a collection."""
    if "time" not in ds.dims:
        if "asset_id" not in ds.attrs:
            raise ValueError("preview needs a Dataset opened by eexarray (its attrs have no 'asset_id')")
        name = asset_name(ds.attrs["asset_id"])
        return name, name.removeprefix("projects/earthengine-public/assets/")
    if "image_id" not in ds.coords:
        raise ValueError("preview of a collection needs its 'image_id' coordinate")
    count = ds.sizes["time"]
    if isinstance(time, (int, np.integer)) and not isinstance(time, bool):
        if not -count <= time < count:
            raise IndexError(f"time={time} is outside the {count} images of this Dataset (0..{count - 1})")
        position = int(time)
    else:
        # In the coordinate's own unit: datetime64[ns] would wrap a year-999 time round silently.
        moment = np.datetime64(time).astype(ds["time"].dtype)
        position = int(ds.indexes["time"].get_indexer([moment], method="nearest")[0])
    image_id = str(ds["image_id"].values[position])
    return asset_name(image_id), f"{image_id} ({np.datetime_as_string(ds['time'].values[position], unit='s')})"


def _bands(ds: xr.Dataset, bands: Any, stored: Sequence[str] | None) -> list[str]:
    """The bands to draw: variables of ``ds`` that are stored bands of the asset."""
    if stored is None:  # no source found: trust the attrs eexarray puts on band variables
        stored = [str(name) for name, var in ds.data_vars.items() if BAND_METADATA in var.encoding]
    if bands is None:
        present = [band for band in stored if band in ds.data_vars]
        if len(present) not in (1, 3):
            raise ValueError(f"choose bands=[one] or bands=[red, green, blue] among {present}")
        return present
    if isinstance(bands, str):
        bands = [bands]
    for band in bands:
        if band not in ds.data_vars:
            raise ValueError(f"band {band!r} is not a variable of this Dataset; variables: {list(ds.data_vars)}")
        if band not in stored:
            raise ValueError(
                f"{band!r} is not a stored band of the asset (bands: {list(stored)}); derived variables are "
                "computed locally, so the server cannot draw them: plot the computed values instead"
            )
    return list(bands)


@xr.register_dataset_accessor("eexarray")
class EexarrayAccessor:
    """``ds.eexarray``: eexarray's helpers on a Dataset it opened."""

    def __init__(self, dataset: xr.Dataset) -> None:
        self._ds = dataset

    def plan(self, *, latency: float = DEFAULT_LATENCY, bandwidth: float = DEFAULT_BANDWIDTH) -> ComputePlan:
        """The requests computing this Dataset (or selection) makes, and their cost; makes no request.

        Counts requests by method (``getPixels``/``computePixels``), the pixel bytes, the
        largest request against Earth Engine's 48 MiB limit, and estimates the wall time:
        requests go out ``max_concurrency`` at a time, each wave taking ``latency`` seconds,
        and the pixel bytes arrive at ``bandwidth`` bytes per second. Built from the read
        plan the Dataset's dask graph holds, so the count is what ``compute()`` makes
        (see docs/costs.md).

        Args:
            latency: seconds one request takes, server time included (default 0.5).
            bandwidth: bytes per second of the download link (default 100e6).
        """
        check_model(latency, bandwidth)
        return estimate(dataset_reads(self._ds), latency=latency, bandwidth=bandwidth)

    def preview_png(
        self,
        bands: Any = None,
        *,
        min: Any = None,
        max: Any = None,
        palette: Any = None,
        gamma: Any = None,
        width: int | None = None,
        time: Any = 0,
        endpoint: str | None = None,
    ) -> tuple[bytes, PixelGrid, str, list[str]]:
        """The server's PNG of the Dataset's region, with its grid, a label and the bands (see ``preview``)."""
        ds = self._ds
        source = _opened_source(ds)
        band_ids = _bands(ds, bands, source.band_ids if source is not None else None)
        vis = visualization_options(len(band_ids), min=min, max=max, palette=palette, gamma=gamma)
        name, label = _image_name(ds, time)
        grid = preview_grid(dataset_grid(ds), width, [ds[band].dtype for band in band_ids])
        if endpoint is not None:
            config = ConnectionConfig.create(endpoint)
        else:  # the connection the Dataset was opened with; else the defaults (EEXARRAY_ENDPOINT, ...)
            config = source.config if source is not None else ConnectionConfig.create(None)
        png = get_pixels_png(RestClient(config), name, grid, band_ids, vis)
        return png, grid, label, band_ids

    def preview(
        self,
        bands: Any = None,
        *,
        min: Any = None,
        max: Any = None,
        palette: Any = None,
        gamma: Any = None,
        width: int | None = None,
        time: Any = 0,
        output: str = "figure",
        ax: Any = None,
        endpoint: str | None = None,
    ) -> Any:
        """Draw stored bands of the Dataset's region, rendered by the server; one small request.

        Args:
            bands: one band (grey, or coloured by ``palette``) or three (red, green, blue);
                default: the Dataset's stored bands when there are 1 or 3.
            min: the value drawn black, one number or one per band (default: the band
                type's minimum; floats: 0).
            max: the value drawn white (full colour), one number or one per band
                (default: the band type's maximum; floats: 1).
            palette: a list of colours (``"ff0000"``, ``"#0f0"``, CSS names) or a matplotlib
                colormap name such as ``"viridis"``; one band only.
            gamma: gamma correction (> 0).
            width: width of the picture in pixels (default: the Dataset's, at most 1024);
                the height keeps the aspect ratio.
            time: for a collection, the image to draw: a position (default 0) or a date
                (the nearest image).
            output: ``"figure"`` (a matplotlib Figure with CRS coordinates on the axes),
                ``"image"`` (a PIL image, RGBA), or ``"array"`` (uint8 RGBA, height x width x 4).
                Masked pixels are transparent (alpha 0).
            ax: draw into this matplotlib Axes instead of a new figure (``output="figure"``).
            endpoint: the server to ask; default: the one the Dataset was opened with.
        """
        if output not in OUTPUTS:
            raise ValueError(f"output={output!r} is not one of {OUTPUTS}")
        png, grid, label, band_ids = self.preview_png(
            bands, min=min, max=max, palette=palette, gamma=gamma, width=width, time=time, endpoint=endpoint
        )
        from PIL import Image

        image = Image.open(io.BytesIO(png)).convert("RGBA")
        if output == "image":
            return image
        rgba = np.asarray(image)
        if output == "array":
            return rgba
        return _figure(rgba, grid, label, band_ids, ax)


def _figure(rgba: np.ndarray, grid: PixelGrid, label: str, bands: list[str], ax: Any) -> Any:
    west, south, east, north = grid.bounds
    if ax is None:
        plt = require("matplotlib.pyplot", "demo", "preview(output='figure')")
        aspect = grid.height / grid.width
        figure = plt.figure(figsize=(6 / aspect, 6) if aspect > 1 else (6, 6 * aspect + 0.8), layout="constrained")
        # Closed at once: pyplot no longer shows it by itself (no double display in Jupyter),
        # yet the returned Figure still renders as the cell's result or with savefig.
        plt.close(figure)
        ax = figure.add_subplot()
    ax.imshow(rgba, extent=(west, east, south, north), interpolation="nearest")
    ax.set_title(f"{label}\n{', '.join(bands)}", fontsize=9)
    ax.set_xlabel(f"x ({grid.crs if len(grid.crs) < 30 else 'CRS units'})")
    ax.set_ylabel("y")
    return ax.figure
