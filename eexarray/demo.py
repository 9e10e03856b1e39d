"""``eexarray demo``: a scientist's first session, on the embedded local Earth Engine server.

It starts the local server with its demo catalog, opens a Sentinel-2-like
collection lazily, computes an NDVI time series and a cloud-free median
composite, writes a PNG figure and a GeoTIFF, and reports what was fetched.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from eexarray._optional import require

COLLECTION = "eexarray/demo/S2_LANDSCAPE"


def run_demo(output: str | Path = "demo-output", *, endpoint: str | None = None, quiet: bool = False) -> dict[str, Any]:
    """Run the demo; returns the summary it prints (and writes as summary.json)."""
    matplotlib = require("matplotlib", "demo", "eexarray demo")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "demo", "eexarray demo")

    import eexarray
    from eexarray.transport import transport_stats

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if quiet else print
    server = None
    if endpoint is None:
        server = eexarray.serve()
        endpoint = server.url
        say(f"Local Earth Engine server (demo catalog) at {endpoint}")
    try:
        before = transport_stats()
        started = time.perf_counter()
        # Decoded by default: float32, NaN exactly where a pixel is masked (clouds).
        ds = eexarray.open_dataset(COLLECTION, endpoint=endpoint, bands=["B2", "B3", "B4", "B8"])
        opened = time.perf_counter()
        say(f"Opened {COLLECTION} lazily in {opened - started:.2f} s:")
        say(
            f"  {ds.sizes['time']} images, {ds.sizes['y']} x {ds.sizes['x']} px, CRS {ds.rio.crs}, "
            f"chunks {dict(ds.B4.encoding['preferred_chunks'])}"
        )
        reflectance = ds / 10000.0
        ndvi = (reflectance.B8 - reflectance.B4) / (reflectance.B8 + reflectance.B4)
        series = ndvi.mean(dim=("y", "x"), skipna=True)
        composite = reflectance[["B4", "B3", "B2"]].median(dim="time", skipna=True)
        ndvi_median = ndvi.median(dim="time", skipna=True).rename("NDVI_median")
        import dask

        series, composite, ndvi_median = dask.compute(series, composite, ndvi_median)
        computed = time.perf_counter()

        figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
        left.plot(series.time.values, series.values, marker="o")
        left.set_title("Mean NDVI per acquisition (clouds masked)")
        left.set_ylabel("NDVI")
        left.grid(True, alpha=0.3)
        figure.autofmt_xdate()
        rgb = np.dstack([composite[b].values for b in ("B4", "B3", "B2")])
        rgb = np.clip(rgb / np.nanpercentile(rgb, 99), 0, 1)
        x, y = composite.x.values, composite.y.values
        right.imshow(np.nan_to_num(rgb), extent=(x[0], x[-1], y[-1], y[0]))
        right.set_title("Median composite (B4, B3, B2)")
        right.set_xlabel(f"x ({ds.rio.crs})")
        figure.tight_layout()
        figure_path = output / "ndvi_and_composite.png"
        figure.savefig(figure_path, dpi=110)
        plt.close(figure)

        geotiff_path = output / "ndvi_median.tif"
        ndvi_median.rio.write_nodata(np.nan).rio.to_raster(geotiff_path)  # float32; NaN declared as no data
        after = transport_stats()
        summary = {
            "collection": COLLECTION,
            "images": int(ds.sizes["time"]),
            "shape": [int(ds.sizes["y"]), int(ds.sizes["x"])],
            "requests": after["requests"] - before["requests"],
            "retries": after["retries"] - before["retries"],
            "megabytes": round((after["bytes"] - before["bytes"]) / 2**20, 1),
            "seconds_open": round(opened - started, 3),
            "seconds_compute": round(computed - opened, 3),
            "ndvi_mean_min": round(float(np.nanmin(series.values)), 3),
            "ndvi_mean_max": round(float(np.nanmax(series.values)), 3),
            "figure": str(figure_path),
            "geotiff": str(geotiff_path),
        }
        (output / "summary.json").write_text(json.dumps(summary, indent=2))
        say(
            f"Fetched {summary['requests']} requests, {summary['megabytes']} MB in "
            f"{summary['seconds_compute']} s ({summary['retries']} retries)"
        )
        say(f"NDVI (scene mean) ranges {summary['ndvi_mean_min']} .. {summary['ndvi_mean_max']} over the year")
        say(f"Wrote {figure_path} and {geotiff_path}")
        return summary
    finally:
        if server is not None:
            server.stop()
