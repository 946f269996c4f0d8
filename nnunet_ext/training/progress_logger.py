"""nnU-Net's per-epoch logger with extra curves (GSL's alpha, the training-health measure) in ``progress.png``.

nnU-Net's :class:`LocalLogger` asserts on unknown keys and draws a fixed figure. This subclass takes
extra keys with :meth:`CurvesLocalLogger.add_curve`; each is logged once per epoch like nnU-Net's own
(a float, or a list of floats, one line each) and drawn on a second axis, 0 to 1, of the figure's
learning-rate panel. nnU-Net's figure has no hook for that, so the drawing runs just before its one
``tight_layout`` call: :meth:`plot_progress_png` swaps pyplot's ``tight_layout`` for the duration of
nnU-Net's method (the one tie to its code, written against nnU-Net 2.8.1's ``plot_progress_png``;
``tests/test_training_health.py`` fails when the installed method's source differs). Everything else is
nnU-Net's.
"""

from __future__ import annotations

from nnunetv2.training.logging import nnunet_logger
from nnunetv2.training.logging.nnunet_logger import LocalLogger

_COLOURS = ("r", "m", "c", "y", "k")


class CurvesLocalLogger(LocalLogger):
    """:class:`LocalLogger` with extra per-epoch entries in ``[0, 1]`` drawn in ``progress.png``."""

    def __init__(self, verbose: bool = False):
        super().__init__(verbose)
        self.curves: dict[str, str] = {}

    def add_curve(self, key: str, label: str) -> None:
        """Registers ``key`` (logged once per epoch) with the legend ``label``."""
        self.curves[key] = label
        self.my_fantastic_logging.setdefault(key, [])

    def load_checkpoint(self, checkpoint: dict):
        super().load_checkpoint(checkpoint)
        for key in self.curves:  # a checkpoint written before the curve existed
            if key not in self.my_fantastic_logging:
                self.my_fantastic_logging[key] = [float("nan")] * len(self.my_fantastic_logging["lrs"])

    def plot_progress_png(self, output_folder):
        if not self.curves:
            return super().plot_progress_png(output_folder)
        tight_layout = nnunet_logger.plt.tight_layout

        def draw_curves_then_layout(*args, **kwargs):
            figure = nnunet_logger.plt.gcf()
            lr_axis = next(axis for axis in figure.axes if axis.get_ylabel() == "learning rate")
            epochs = min(len(values) for values in self.my_fantastic_logging.values())
            axis = lr_axis.twinx()
            colours = iter(_COLOURS * 4)
            for key, label in self.curves.items():
                values = self.my_fantastic_logging[key][:epochs]
                width = max((len(v) for v in values if isinstance(v, (list, tuple))), default=0)
                series = [[v[i] if isinstance(v, (list, tuple)) else float("nan") for v in values] for i in range(width)] \
                    if width else [values]
                for i, line in enumerate(series):
                    axis.plot(range(epochs), line, color=next(colours), ls="-" if i == 0 else "--", linewidth=4,
                              label=label if not width else f"{label}, {i + 1}")
            axis.set(ylim=(-0.05, 1.05), ylabel="fraction")
            axis.legend(loc=(0.3, 1))
            return tight_layout(*args, **kwargs)

        nnunet_logger.plt.tight_layout = draw_curves_then_layout
        try:
            super().plot_progress_png(output_folder)
        finally:
            nnunet_logger.plt.tight_layout = tight_layout
