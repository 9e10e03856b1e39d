"""timeseries: requests and time for a 64 x 64 px x 500 images x 2 bands time series.

Packed time series read many images and bands in one ``computePixels`` request (up to
1024 bands and the byte budget); per-image ``getPixels`` needs 500 requests, Xee about 22.
Needs the server to evaluate ``computePixels`` and the client to pack: checked at run time
(``status: unavailable`` with the reason otherwise). Target: at most 2 requests.
"""

from __future__ import annotations

import time
from typing import Any

import requests

import eexarray
from benchmarks.common import latency_model, pixel_stats, reset_stats, square_grid, start_server, unavailable
from eexarray.server import procedural_collection

ASSET = "bench/series"
IMAGES = 500
SIDE = 64


def server_computes(url: str) -> bool:
    """Whether the server's discovery document offers ``computePixels``."""
    document = requests.get(f"{url}/$discovery/rest", params={"version": "v1"}, timeout=30).json()
    return "computePixels" in str(document)


def client_packs() -> bool:
    from eexarray.engine.source import PixelSource

    return "packing" in getattr(PixelSource, "__dataclass_fields__", {})


def run(quick: bool) -> dict[str, Any]:
    images = 100 if quick else IMAGES
    collection = procedural_collection(
        ASSET, square_grid(SIDE), images, dtypes=("uint16", "uint16"), band_ids=("red", "nir")
    )
    with start_server([collection]) as server:
        missing = []
        if not server_computes(server.url):
            missing.append("the local server does not offer computePixels")
        if not client_packs():
            missing.append("eexarray does not pack time series yet")
        if missing:
            return unavailable("timeseries", "; ".join(missing), images=images, side_px=SIDE, bands=2)
        start = time.perf_counter()
        ds = eexarray.open_dataset(ASSET, endpoint=server.url)
        open_seconds = time.perf_counter() - start
        reset_stats(server)
        start = time.perf_counter()
        ds.load()
        read_seconds = time.perf_counter() - start
        stats = pixel_stats(server)
    pixel_requests = stats["get_pixels"] + stats["compute_pixels"]
    return {
        "name": "timeseries",
        "images": images,
        "side_px": SIDE,
        "bands": 2,
        "requests": pixel_requests,
        "get_pixels": stats["get_pixels"],
        "compute_pixels": stats["compute_pixels"],
        "open_seconds": round(open_seconds, 3),
        "read_seconds": round(read_seconds, 3),
        "ratio": round(images / max(1, pixel_requests), 1),
        "ratio_means": "requests of per-image getPixels / requests made",
        "target": "<= 2 requests",
        **latency_model(),
    }
