"""NPY writer: a structured array like ``getDownloadId``'s NPY, written block by block.

One field per band, named by the band id, in the band's native dtype (a packed
structured dtype, as ``numpy.load`` of an Earth Engine NPY download gives). An
image is ``(y, x)``; a collection ``(time, y, x)`` with the same fields (the
times and image ids are those of ``open_dataset``'s ``time``/``image_id``).

The header is written first (NPY 1.0, or 2.0 when it is too long) and the file
extended to its final size (sparse on most file systems); each block is then
written row by row at its offsets with plain file writes. No memory map: its
dirty pages would count against the process, and we promise a bounded memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eexarray.download.plan import Block, BlockPlan
from eexarray.download.target import DownloadTarget
from eexarray.download.writer import BlockWriter, OutputWriteError


def structured_dtype(band_ids: tuple[str, ...], dtypes: tuple[np.dtype, ...]) -> np.dtype:
    return np.dtype([(band, np.dtype(dtype).newbyteorder("<")) for band, dtype in zip(band_ids, dtypes)])


class NpyWriter(BlockWriter):
    def __init__(self, path: Path, target: DownloadTarget, plan: BlockPlan) -> None:
        super().__init__(path, target, plan)
        self.dtype = structured_dtype(target.band_ids, target.dtypes)
        shape: tuple[int, ...] = (plan.height, plan.width)
        if target.has_time:
            shape = (plan.time_count, *shape)
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape}
        self.file = open(path, "wb", buffering=0)  # noqa: SIM115 - closed in finish/abort
        try:
            try:
                np.lib.format.write_array_header_1_0(self.file, header)
            except ValueError:  # more fields than a 1.0 header holds
                self.file.seek(0)
                self.file.truncate()
                np.lib.format.write_array_header_2_0(self.file, header)
            self.offset = self.file.tell()
            self.file.truncate(self.offset + int(np.prod(shape)) * self.dtype.itemsize)
        except BaseException:
            self.file.close()
            raise

    def write(self, block: Block, arrays: list[np.ndarray]) -> None:
        window = block.window
        itemsize, width = self.dtype.itemsize, self.plan.width
        for position, time in enumerate(block.times):
            records = np.empty(window.shape, dtype=self.dtype)
            for band, array in zip(self.target.band_ids, arrays):
                records[band] = array[position]
            first_row = time * self.plan.height + window.row_start
            if window.width == width:  # full rows: one contiguous write
                self._write_at(self.offset + first_row * width * itemsize, records.reshape(-1))
                continue
            for row in range(window.height):
                self._write_at(self.offset + ((first_row + row) * width + window.col_start) * itemsize, records[row])

    def _write_at(self, offset: int, records: np.ndarray) -> None:
        view = records.view(np.uint8).data
        self.file.seek(offset)
        while view:  # a raw write may be short
            written = self.file.write(view)
            view = view[written:]

    def finish(self) -> None:
        self.file.close()
        # time_count is 1 for an image: its (y, x) array holds as many records as one time step.
        expected = self.offset + self.plan.time_count * self.plan.height * self.plan.width * self.dtype.itemsize
        size = self.path.stat().st_size
        if size != expected:  # writes raise on a full disk; this catches anything else that cut the file
            raise OutputWriteError(
                f"the NPY file written to {str(self.path)!r} has {size} bytes, not {expected}; no output was published"
            )

    def abort(self) -> None:
        self.file.close()
