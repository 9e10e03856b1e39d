"""The two Earth Engine stand-ins the contract runs against, built from the same recordings.

* ``LocalEndpoint``: ``eexarray.serve`` with a catalog that mirrors the recorded assets
  (same names, band ids, dtypes, grids, times and properties; pixels by the procedural
  formula). The local server answers every request itself: listing filters, expressions,
  errors.
* ``ReplayEndpoint``: ``tests.conformance.replay.ReplayServer`` fed the recordings.

Both expose what a scenario needs: the URL, the project, request counts by method, a
way to get a 429 on the next request, whether that 429 carries ``Retry-After``, and how
many listing pages the filtered collection takes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from affine import Affine

from eexarray.geometry import PixelGrid
from eexarray.server import ProceduralImage, ServerCollection, serve
from tests.conformance.replay import (
    Answer,
    Recordings,
    ReplayServer,
    dtype_of_data_type,
    dtype_of_pixel_type,
    load_fixture,
)

IMAGE_FIXTURE = load_fixture("gdal_eedai_image.json")
COLLECTION_FIXTURE = load_fixture("gdal_eeda_collection.json")
COMPUTED_FIXTURE = load_fixture("s1_getinfo.json")
ERRORS = load_fixture("errors.json")

IMAGE_ID = "image"
IMAGE_NAME = "projects/earthengine-public/assets/image"
COLLECTION_ID = "collection"
COLLECTION_FILTER = COLLECTION_FIXTURE["filter"]
COMPUTED_IMAGE_ID = COMPUTED_FIXTURE["image_id"]
PROJECT = "replay-project"  # the project of the recorded value:compute path
FORBIDDEN_ASSET = ERRORS["forbidden"]["asset"]


def recorded_body(fixture: dict[str, Any], path_end: str) -> Any:
    return next(exchange["body"] for exchange in fixture["exchanges"] if exchange["path"].endswith(path_end))


def recorded_image() -> dict[str, Any]:
    return recorded_body(IMAGE_FIXTURE, "/assets/image")


def recorded_listing() -> list[dict[str, Any]]:
    """The images of the recorded listing, all pages in order."""
    pages = [
        exchange["body"] for exchange in COLLECTION_FIXTURE["exchanges"] if exchange["path"].endswith(":listAssets")
    ]
    return [asset for page in pages for asset in page["assets"]]


def recorded_info() -> dict[str, Any]:
    return recorded_body(COMPUTED_FIXTURE, "value:compute")["result"]


def grid_of_band(band: dict[str, Any]) -> PixelGrid:
    grid = band["grid"]
    affine = grid["affineTransform"]
    keys = ("scaleX", "shearX", "translateX", "shearY", "scaleY", "translateY")
    transform = Affine(*(float(affine.get(key, 0)) for key in keys))
    return PixelGrid(grid["crsCode"], transform, grid["dimensions"]["width"], grid["dimensions"]["height"])


def grid_of_info_band(band: dict[str, Any]) -> PixelGrid:
    return PixelGrid(band["crs"], Affine(*band["crs_transform"]), *band["dimensions"])


def _time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _image_like(asset_id: str, bands: list[dict[str, Any]], **extra: Any) -> ProceduralImage:
    grids = [grid_of_band(band) for band in bands]
    return ProceduralImage(
        asset_id,
        grids[0],
        dtypes=tuple(dtype_of_data_type(band["dataType"]) for band in bands),
        band_ids=tuple(band["id"] for band in bands),
        grids={band["id"]: grid for band, grid in zip(bands, grids)},
        **extra,
    )


def mirror_catalog() -> list[Any]:
    """The local server's catalog: every recorded asset, and the image the filter leaves out."""
    image = _image_like(IMAGE_ID, recorded_image()["bands"], properties=recorded_image()["properties"])
    members = []
    for index, entry in enumerate(recorded_listing()):
        members.append(
            _image_like(
                entry["id"],
                entry["bands"],
                index=index,
                start_time=_time(entry.get("startTime")),
                end_time=_time(entry.get("endTime")),
                properties=entry["properties"],
            )
        )
    for offset, excluded in enumerate(COLLECTION_FIXTURE["excluded_by_filter"]):
        members.append(
            _image_like(
                excluded["name"].removeprefix("projects/earthengine-public/assets/"),
                recorded_listing()[0]["bands"],
                index=len(recorded_listing()) + offset,
                start_time=_time(excluded["startTime"]),
                properties=excluded["properties"],
            )
        )
    info_bands = recorded_info()["bands"]
    computed = ProceduralImage(
        COMPUTED_IMAGE_ID,
        grid_of_info_band(info_bands[0]),
        dtypes=tuple(dtype_of_pixel_type(band["data_type"]) for band in info_bands),
        band_ids=tuple(band["id"] for band in info_bands),
        grids={band["id"]: grid_of_info_band(band) for band in info_bands},
        properties={
            key: value for key, value in recorded_info()["properties"].items() if not key.startswith("system:")
        },
    )
    return [image, ServerCollection(COLLECTION_ID, members), computed]


class Endpoint(Protocol):
    url: str
    project: str
    #: whether a 429 of this implementation carries Retry-After
    sends_retry_after: bool
    #: listAssets requests the filtered collection listing takes
    listing_pages: int

    def count(self, method: str) -> int:
        """Requests received so far by method: getAsset, listAssets, getPixels, computePixels, valueCompute."""

    def quota_limited(self) -> contextlib.AbstractContextManager[Endpoint]:
        """An endpoint like this one whose first API request answers 429."""


def _first_roll_only_below(fraction: float, following: int) -> int:
    """A seed whose first fault draw is below ``fraction`` and the next ``following`` are not."""
    for seed in range(10_000):
        rolls = random.Random(seed)
        first = rolls.random()
        if first < fraction and all(rolls.random() >= fraction for _ in range(following)):
            return seed
    raise AssertionError("no seed found")  # pragma: no cover - there are many


@dataclass
class LocalEndpoint:
    url: str
    server: Any
    project: str = PROJECT
    sends_retry_after: bool = False
    listing_pages: int = 1  # pageSize 1000 holds the whole listing

    @classmethod
    @contextlib.contextmanager
    def running(cls, **serve_options: Any) -> Iterator[LocalEndpoint]:
        with serve(catalog=mirror_catalog(), **serve_options) as server:
            yield cls(server.url, server)

    def count(self, method: str) -> int:
        return self.server.stats()["requests"].get(method, 0)

    @contextlib.contextmanager
    def quota_limited(self) -> Iterator[LocalEndpoint]:
        # The fault dice of a fresh server: the first request draws a 429, the next ones nothing.
        seed = _first_roll_only_below(0.5, following=5)
        with LocalEndpoint.running(faults={"429": 0.5}, seed=seed) as limited:
            yield limited


@dataclass
class ReplayEndpoint:
    url: str
    replay: ReplayServer
    project: str = PROJECT
    sends_retry_after: bool = True
    listing_pages: int = sum(
        1 for exchange in COLLECTION_FIXTURE["exchanges"] if exchange["path"].endswith(":listAssets")
    )

    @classmethod
    @contextlib.contextmanager
    def running(cls) -> Iterator[ReplayEndpoint]:
        recordings = Recordings([IMAGE_FIXTURE, COLLECTION_FIXTURE, COMPUTED_FIXTURE], ERRORS)
        with ReplayServer(recordings) as replay:
            yield cls(replay.url, replay)

    def count(self, method: str) -> int:
        return sum(1 for record in self.replay.requests if _method_of(record) == method)

    @contextlib.contextmanager
    def quota_limited(self) -> Iterator[ReplayEndpoint]:
        quota = ERRORS["quota"]
        with ReplayEndpoint.running() as limited:
            limited.replay.arm_next(Answer.json(quota["status"], quota["body"], quota["headers"]))
            yield limited


def _method_of(record: dict[str, Any]) -> str:
    path = record["path"]
    for suffix, name in ((":listAssets", "listAssets"), (":getPixels", "getPixels"),
                         ("/image:computePixels", "computePixels"), ("/value:compute", "valueCompute")):  # fmt: skip
        if path.endswith(suffix):
            return name
    return "getAsset" if record["method"] == "GET" else "other"
