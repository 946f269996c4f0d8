"""PNG figures of one case: image slice, reference and predicted label maps side by side."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from nnunet_ext.targets.spec import TargetSpec


def most_informative_slice(label_map: np.ndarray) -> int:
    """Index along axis 0 of the slice with the most foreground (the middle slice if there is none)."""
    per_slice = (label_map > 0).reshape(label_map.shape[0], -1).sum(axis=1)
    return int(np.argmax(per_slice)) if per_slice.any() else label_map.shape[0] // 2


def save_case_figure(
    image: np.ndarray,
    panels: dict[str, np.ndarray],
    path: str | Path,
    label_names: dict[int, str],
    title: str = "",
    extra_maps: dict[str, np.ndarray] | None = None,
) -> Path:
    """Writes a row of panels for one axial slice.

    image: (Z, Y, X) intensities of one channel; panels: name -> (Z, Y, X) label map drawn over the
    image, the first one being the reference; extra_maps: name -> (Z, Y, X) continuous map in [-1, 1]
    drawn with a diverging colormap and colorbar (e.g. a SiNG target), placed after the reference.
    The slice is the one where the reference has the most foreground.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    extra_maps = extra_maps or {}
    (reference_name, reference), *predictions = panels.items()
    z = most_informative_slice(reference)
    columns = 1 + len(extra_maps) + len(panels)
    fig, axes = plt.subplots(1, columns, figsize=(3.2 * columns, 3.6), squeeze=False)
    axes = axes[0]
    background = image[z]
    axes[0].imshow(background, cmap="gray")
    axes[0].set_title("image")
    max_label = max(label_names) if label_names else 1
    colours = ListedColormap(["#00000000", "#2ca02c", "#ffbf00", "#d62728", "#1f77b4", "#9467bd"][: max_label + 1])

    def draw_labels(axis, name, label_map):
        axis.imshow(background, cmap="gray")
        masked = np.ma.masked_where(label_map[z] == 0, label_map[z])
        axis.imshow(masked, cmap=colours, vmin=0, vmax=max_label, alpha=0.6, interpolation="nearest")
        axis.set_title(name)

    # order: image, reference, continuous maps, predictions
    draw_labels(axes[1], reference_name, reference)
    column = 2
    for name, values in extra_maps.items():
        shown = axes[column].imshow(values[z], cmap="RdBu_r", vmin=-1, vmax=1)
        axes[column].set_title(name)
        fig.colorbar(shown, ax=axes[column], fraction=0.046, pad=0.04)
        column += 1
    for name, label_map in predictions:
        draw_labels(axes[column], name, label_map)
        column += 1
    for axis in axes:
        axis.axis("off")
    legend = ", ".join(f"{colour}: {label_names[v]}" for v, colour in zip(sorted(label_names), ("green", "amber", "red", "blue", "purple")))
    fig.suptitle(f"{title}  (slice {z}; {legend})", fontsize=9)
    return save_figure(fig, path)


def save_figure(figure, path: str | Path, dpi: int = 110) -> Path:
    """Lays out, writes (creating the folder) and closes a matplotlib figure."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path


def plot_case(config_folder: str | os.PathLike, spec: TargetSpec, case: str, output: str | os.PathLike,
              channels: Sequence[Sequence[int]]) -> Path:
    """PNG of one case: per map channel, the image, the mask and the map (diverging colormap, colorbar).

    3D cases show the slice along axis 0 where the first non-empty mask is largest.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnunet_ext.precompute import channel_masks, read_case
    from nnunet_ext.target_store import open_case

    folder = Path(config_folder)
    image, seg = read_case(folder, case)
    maps = np.asarray(open_case(folder, spec, case)[:], dtype=np.float32)
    masks = channel_masks(seg, channels)
    areas = masks.reshape(masks.shape[0], masks.shape[1], -1).sum(-1)  # (K, slices)
    nonempty = np.flatnonzero(areas.sum(1))
    z = int(np.argmax(areas[nonempty[0]])) if nonempty.size else seg.shape[0] // 2
    image_channel = int(spec.params.get("image_channel", 0)) if spec.params.get("image", "channel") == "channel" else 0
    rows = maps.shape[0]
    figure, axes = plt.subplots(rows, 3, figsize=(10, 3.2 * rows), squeeze=False)
    for k in range(rows):
        axes[k, 0].imshow(image[image_channel, z], cmap="gray")
        axes[k, 0].set_title(f"image channel {image_channel}, slice {z}")
        axes[k, 1].imshow(masks[k, z], cmap="gray", vmin=0, vmax=1)
        axes[k, 1].set_title(f"mask, labels {list(channels[k])}")
        shown = axes[k, 2].imshow(maps[k, z], cmap="RdBu_r", vmin=-1, vmax=1)
        axes[k, 2].set_title(f"{spec.kind} map {k}")
        figure.colorbar(shown, ax=axes[k, 2], fraction=0.046)
        for axis in axes[k]:
            axis.set_axis_off()
    figure.suptitle(f"{case}  ({spec.target_id})")
    return save_figure(figure, output, dpi=100)
