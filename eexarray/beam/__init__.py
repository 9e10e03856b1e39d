"""Read Earth Engine pixels in an Apache Beam pipeline, as xarray-beam chunks (docs/beam.md).

``ReadPixels(asset, **open_options)`` is a ``PTransform`` that opens ``asset`` like
``eexarray.open_dataset`` (lazily: metadata only, when the pipeline is built) and yields
one ``(xarray_beam.Key, xarray.Dataset)`` per dask chunk of that Dataset, so
``xarray_beam.ChunksToZarr`` and the rest of xarray-beam apply. It is a thin front end
on the read engine (eexarray/engine/): the elements are the keys of the Dataset's read
plan - exactly the reads its dask graph would run, so the same requests - spread over
the workers (``Reshuffle``), and a worker runs each with ``engine.run.start(plan, key)``,
then cuts it into the Dataset's chunks.

* The plan travels in the ``DoFn``: endpoint, project, image names, grid, bands; never
  credentials (``ConnectionConfig`` drops them when pickled). Workers find their own, as
  dask workers do: Application Default Credentials, or ``EEXARRAY_TOKEN``; no
  ``ee.Initialize``.
* Requests in flight: each worker process holds at most ``max_concurrency`` (the engine's
  per-process cap); each ``DoFn`` starts reads ahead within its bundle while fewer than
  ``max_concurrency`` requests wait, so one thread keeps many requests in flight.
* Retries: the engine retries 429 and 5xx as on the dask path. A bundle Beam retries reads
  and emits the same chunks again; ``ChunksToZarr`` writes whole chunks, so a retry writes
  the same bytes.

``apache_beam`` and ``xarray_beam`` (the ``beam`` extra) are imported on first use:
``ReadPixels`` (and the ``DoFn``, ``ReadChunks``) are built when first looked up here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterator
from functools import cache
from typing import Any

import numpy as np
import xarray as xr

from eexarray._optional import require
from eexarray.backend.arrays import ORIGIN, origin_of
from eexarray.backend.dataset import float_dtype_for, read_plan
from eexarray.backend.graph import Finish
from eexarray.engine.run import GroupData, ReadKey, start
from eexarray.engine.source import PendingRead

__all__ = ["ChunkReader", "ReadChunks", "ReadPixels", "template"]

PURPOSE = "eexarray.beam"
# Encodings xarray writes as attributes: copied there to survive ChunksToZarr's own encodings (see template).
ENCODED_AS_ATTRIBUTES = ("grid_mapping", "_FillValue")


def template(dataset: xr.Dataset) -> xr.Dataset:
    """The ``template`` of ``xarray_beam.ChunksToZarr`` for the chunks ``ReadPixels`` yields from ``dataset``.

    The lazy Dataset itself, chunked as the pipeline's chunks (they become the Zarr chunks),
    with its coordinates in memory (written once, when the store is set up) and without
    eexarray's bookkeeping in the encodings. No pixel is read. ``ChunksToZarr`` replaces each
    variable's encoding by its own (the chunks) after xarray has placed the coordinates, so
    the encodings xarray writes as attributes (``grid_mapping``, ``_FillValue``) are copied
    to the attributes as well: the store gets what ``dataset.to_zarr`` writes.
    """
    result = dataset.copy(deep=False)
    chunked_coords = [name for name, coord in result.coords.items() if coord.chunks is not None]
    if chunked_coords:
        result = result.assign_coords({name: result[name].compute() for name in chunked_coords})
    for variable in result.variables.values():
        variable.encoding = {k: v for k, v in variable.encoding.items() if k != ORIGIN}
        copied = {k: variable.encoding[k] for k in ENCODED_AS_ATTRIBUTES if k in variable.encoding}
        variable.attrs = {**variable.attrs, **copied}
    return result


class ChunkReader:
    """Everything a worker needs to turn one read of a Dataset's plan into its chunks.

    Pickles small and without credentials: the plan (engine/plan.py), each variable's band
    and ``mask_and_scale`` step, and the Dataset's coordinates (no pixels). Chunks carry
    values and coordinates; attributes and encodings are the template's.
    """

    def __init__(self, dataset: xr.Dataset) -> None:
        self.plan = read_plan(dataset)  # ValueError unless every variable is eexarray's, as opened or selected
        variables = []
        has_time = False
        for name, variable in dataset.data_vars.items():
            origin = origin_of(variable)
            assert origin is not None  # read_plan checked
            opened = origin.opened
            has_time = opened.has_time
            finish = None
            if opened.options.mask_and_scale:
                finish = Finish(float_dtype_for(opened.resolved.bands[origin.band].dtype))
            variables.append((name, origin.band, finish))
        self.has_time = has_time
        self.dims: tuple[Hashable, ...] = ("time", "y", "x") if has_time else ("y", "x")
        self.variables: tuple[tuple[Hashable, int, Finish | None], ...] = tuple(variables)
        self.coords = xr.Dataset(coords=dataset.coords).compute()  # index and other coordinates, in memory
        self.lookahead = self.plan.source.config.max_concurrency  # requests waiting per DoFn, at most

    def keys(self) -> list[ReadKey]:
        """Every read of the plan: ``(time group, row block, col block)``."""
        layout = self.plan.layout
        if not all(sum(chunks) for chunks in (layout.time_chunks, layout.row_chunks, layout.col_chunks)):
            return []  # an empty selection reads nothing
        return [
            (group, row, col)
            for group in range(len(self.plan.groups))
            for row in range(len(layout.row_chunks))
            for col in range(len(layout.col_chunks))
        ]

    def request_count(self, key: ReadKey) -> int:
        return self.plan.request_count(*key)

    def start(self, key: ReadKey) -> PendingRead:
        """Submit the read's requests to this process's fetch pool (returns at once)."""
        return start(self.plan, key)

    def chunks(self, key: ReadKey, data: GroupData) -> Iterator[tuple[Any, xr.Dataset]]:
        """The ``(xarray_beam.Key, Dataset)`` chunks of one read: one per time block of its group."""
        xbeam = require("xarray_beam", "beam", PURPOSE)
        group, row_block, col_block = key
        times, window = self.plan.read_of(group, row_block, col_block)
        first, stop = self.plan.groups[group]
        spatial = {"y": slice(window.row_start, window.row_stop), "x": slice(window.col_start, window.col_stop)}
        for block in range(first, stop):
            block_times = self.plan.layout.times(block)
            inside = slice(block_times.start - times.start, block_times.stop - times.start)
            region = {"time": slice(block_times.start, block_times.stop), **spatial} if self.has_time else spatial
            data_vars = {}
            for name, band, finish in self.variables:
                array = data[band][inside]
                if not self.has_time:
                    array = array[0]
                if finish is not None:
                    array = finish(array)
                data_vars[name] = xr.Variable(self.dims, np.ascontiguousarray(array))
            chunk = xr.Dataset(data_vars, coords=self.coords.isel(region).coords)
            offsets = {str(dim): part.start for dim, part in region.items()}
            yield xbeam.Key(offsets), chunk

    def summary(self) -> dict[str, int]:
        """What the pipeline fetches: reads, requests and chunks."""
        keys = self.keys()
        layout = self.plan.layout
        blocks = len(layout.time_chunks) * len(layout.row_chunks) * len(layout.col_chunks)
        return {
            "reads": len(keys),
            "requests": sum(self.request_count(key) for key in keys),
            "chunks": blocks if keys else 0,
        }

    def read(self, key: ReadKey) -> list[tuple[Any, xr.Dataset]]:
        """Run one read now and return its chunks."""
        return list(self.chunks(key, self.start(key).result()))


def _read_keys(_: Any, reader: ChunkReader) -> list[ReadKey]:
    return reader.keys()


@cache
def _classes() -> dict[str, type]:
    beam: Any = require("apache_beam", "beam", PURPOSE)
    require("xarray_beam", "beam", PURPOSE)
    from apache_beam.transforms.window import GlobalWindows

    class ReadChunks(beam.DoFn):
        """Read keys -> chunks, starting reads ahead while fewer than ``lookahead`` requests wait.

        Chunks come out in the order of the keys of the bundle; the last ones from
        ``finish_bundle``. A failure cancels the reads started ahead and fails the bundle.
        """

        def __init__(self, reader: ChunkReader) -> None:
            super().__init__()
            self.reader = reader
            self._pending: deque[tuple[ReadKey, PendingRead]] = deque()
            self._waiting = 0

        def start_bundle(self) -> None:
            self._cancel()

        def process(self, key: ReadKey) -> Iterator[tuple[Any, xr.Dataset]]:
            key = (int(key[0]), int(key[1]), int(key[2]))
            read = self.reader.start(key)
            self._pending.append((key, read))
            self._waiting += read.request_count
            while len(self._pending) > 1 and self._waiting > self.reader.lookahead:
                yield from self._take()

        def finish_bundle(self) -> Iterator[Any]:
            while self._pending:
                for chunk in self._take():
                    yield GlobalWindows.windowed_value(chunk)

        def teardown(self) -> None:
            self._cancel()

        def _take(self) -> Iterator[tuple[Any, xr.Dataset]]:
            key, read = self._pending.popleft()
            self._waiting -= read.request_count
            try:
                data = read.result()
            except BaseException:
                self._cancel()
                raise
            yield from self.reader.chunks(key, data)

        def _cancel(self) -> None:
            for _, read in self._pending:
                read.cancel()
            self._pending.clear()
            self._waiting = 0

    class ReadPixels(beam.PTransform):
        """Read an asset into a PCollection of ``(xarray_beam.Key, xarray.Dataset)`` chunks.

        ``ReadPixels(asset, chunks={}, **open_options)``: ``asset`` and the options as for
        ``eexarray.open_dataset`` (the chunks of its Dataset are the chunks of the
        PCollection; ``{}``: request-sized tiles, one time step each). ``asset`` may also
        be a chunked Dataset eexarray opened (or ``isel``/``sel`` of one).
        ``.dataset`` is the lazy Dataset; ``.template`` the template of ``ChunksToZarr``.
        """

        def __init__(
            self,
            asset: Any,
            *,
            chunks: Any = {},  # noqa: B006 - open_dataset's convention
            **open_options: Any,
        ) -> None:
            super().__init__()
            if isinstance(asset, xr.Dataset):
                if open_options or chunks != {}:
                    raise TypeError("ReadPixels(dataset) takes no open options: open the Dataset with them")
                self.dataset = asset
            else:
                from eexarray.api import open_dataset

                self.dataset = open_dataset(asset, chunks=chunks, **open_options)
            self.reader = ChunkReader(self.dataset)

        @property
        def template(self) -> xr.Dataset:
            return template(self.dataset)

        def expand(self, pbegin: Any) -> Any:
            # The keys are made on a worker (the job graph stays small however many reads), then spread.
            return (
                pbegin
                | "Start" >> beam.Create([None])
                | "Reads" >> beam.FlatMap(_read_keys, self.reader)
                | "Spread" >> beam.Reshuffle()
                | "Fetch" >> beam.ParDo(ReadChunks(self.reader))
            )

        def default_label(self) -> str:
            return "ReadPixels"

    for cls in (ReadChunks, ReadPixels):
        cls.__module__ = __name__  # pickled by reference: eexarray.beam.<name> finds them again
        cls.__qualname__ = cls.__name__
    return {"ReadChunks": ReadChunks, "ReadPixels": ReadPixels}


def __getattr__(name: str) -> Any:
    if name in ("ReadPixels", "ReadChunks"):
        return _classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
