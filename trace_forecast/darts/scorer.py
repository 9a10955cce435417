"""TRACE's reconstruction anomaly scorer for ``darts.ad``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from darts import TimeSeries
from darts.ad.scorers.scorers import FittableAnomalyScorer

from trace_forecast.adapters import DEFAULT_TARGETS
from trace_forecast.backbone import shared_backbone
from trace_forecast.darts.validation import check_series
from trace_forecast.estimators._common import train_settings
from trace_forecast.network import ADAPTERS, NetworkSpec
from trace_forecast.params import parameter_report
from trace_forecast.tasks.reconstruct import fit_reconstruction, reconstruction_scores


class TraceAnomalyScorer(FittableAnomalyScorer):
    """Masked-reconstruction anomaly scorer on a TRACE-adapted MOMENT-style backbone.

    ``fit(series)`` fine-tunes the backbone's masked reconstruction on (mostly normal)
    series with gated LoRA modules selected by Gated DSIC (or another ``adapter``;
    ``adapter="none"`` scores zero-shot). ``score(series)`` returns, for every time step,
    the squared reconstruction error in its window's RevIN space, averaged over the
    overlapping windows (``stride`` apart) that cover it; series of any length work, a
    short one is one left-padded window. The score is already point-wise, so Darts'
    window aggregation is not used (``window=1``).

    Parameters
    ----------
    context_length : int, default=512
        Window length fed to the backbone (a multiple of 8, at most 512).
    stride : int or None, default=None
        Step between scoring windows; ``None`` is ``context_length // 8``.
    component_wise : bool, default=False
        ``False``: one score series averaged over components; ``True``: one score per
        component.
    backbone : str, path or None, default=None
        MOMENT-layout checkpoint (``None``: the embedded pretrained backbone).
    adapter : {"gated_dsic", "lora", "adalora", "full", "none"}, default="gated_dsic"
    lora_rank : int, default=2
    lora_targets : list of str or None, default=None
    dsic_budget, dsic_interval, dsic_draws, dsic_warmup, dsic_final
        Gated DSIC settings, as in :class:`~trace_forecast.TraceAnomalyDetector`.
    mask_ratio : float, default=0.3
        Fraction of patches hidden by the training loss.
    max_epochs : int, default=3
    batch_size : int, default=32
    learning_rate : float, default=1e-3
    validation_fraction : float, default=0.2
        Last fraction of every series used for Gated DSIC's importance and early stopping.
    max_windows : int or None, default=None
        Cap on training windows (random, reproducible subset).
    window_stride : int, default=8
        Step between training windows.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int or None, default=None
    verbose : bool, default=False

    Examples
    --------
    >>> import numpy as np
    >>> from darts import TimeSeries
    >>> from darts.ad import QuantileDetector
    >>> from trace_forecast.darts import TraceAnomalyScorer
    >>> t = np.arange(800, dtype="float32")
    >>> rng = np.random.default_rng(0)
    >>> normal = TimeSeries.from_values(np.sin(t / 8) + 0.05 * rng.standard_normal(800, dtype="float32"))
    >>> values = np.sin(t / 8) + 0.05 * rng.standard_normal(800, dtype="float32")
    >>> values[500] += 4.0  # a planted spike
    >>> test = TimeSeries.from_values(values)
    >>> scorer = TraceAnomalyScorer(context_length=64, max_epochs=1, max_windows=64, random_state=0)
    >>> scores = scorer.fit(normal).score(test)
    >>> int(np.argmax(scores.values()))
    500
    >>> flags = QuantileDetector(high_quantile=0.999).fit(scorer.score(normal)).detect(scores)
    >>> bool(flags.values()[500, 0])
    True
    """

    def __init__(
        self,
        context_length: int = 512,
        stride: int | None = None,
        component_wise: bool = False,
        backbone=None,
        adapter: str = "gated_dsic",
        lora_rank: int = 2,
        lora_targets: Sequence[str] | None = None,
        dsic_budget: float | int = 0.5,
        dsic_interval: int = 10,
        dsic_draws: int = 8,
        dsic_warmup: float | int = 0.2,
        dsic_final: float | int = 0.7,
        mask_ratio: float = 0.3,
        max_epochs: int = 3,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        validation_fraction: float = 0.2,
        max_windows: int | None = None,
        window_stride: int = 8,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ) -> None:
        if adapter not in ADAPTERS:
            raise ValueError(f"adapter must be one of {ADAPTERS}, got {adapter!r}")
        if context_length % 8 or not 0 < context_length <= 512:
            raise ValueError(f"context_length must be a positive multiple of 8 and at most 512, got {context_length}")
        if stride is not None and stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        super().__init__(is_univariate=not component_wise, window=1, window_agg=False)
        self.context_length = context_length
        self.stride = stride
        self.component_wise = component_wise
        self.backbone = backbone
        self.adapter = adapter
        self.lora_rank = lora_rank
        self.lora_targets = lora_targets
        self.dsic_budget = dsic_budget
        self.dsic_interval = dsic_interval
        self.dsic_draws = dsic_draws
        self.dsic_warmup = dsic_warmup
        self.dsic_final = dsic_final
        self.mask_ratio = mask_ratio
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.max_windows = max_windows
        self.window_stride = window_stride
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.network_ = None

    def __str__(self) -> str:
        return "TraceAnomalyScorer"

    def _fit_core(self, series: Sequence[TimeSeries], *args, **kwargs) -> None:
        check_series(list(series), "series", 1)
        channels = [s.values(copy=False)[:, c].astype(np.float32) for s in series for c in range(s.width)]
        spec = NetworkSpec(
            task="reconstruction",
            context_length=self.context_length,
            adapter=self.adapter,
            lora_rank=self.lora_rank,
            lora_targets=DEFAULT_TARGETS if self.lora_targets is None else tuple(self.lora_targets),
        )
        result = fit_reconstruction(
            channels,
            shared_backbone(self.backbone),
            spec,
            train_settings(self, mask_ratio=self.mask_ratio),
            self.validation_fraction,
            self.max_windows,
            self.window_stride,
            min_context=1,
        )
        self.network_ = result.network
        self.trainable_parameters_ = dict(result.parameters)
        self.selected_modules_ = list(result.selection)
        self.train_loss_ = list(result.train_loss)
        self.val_loss_ = list(result.val_loss)

    def _score_core(self, series: Sequence[TimeSeries], *args, **kwargs) -> Sequence[TimeSeries]:
        check_series(list(series), "series", 1)
        stride = self.stride if self.stride is not None else max(1, self.context_length // 8)
        out = []
        for s in series:
            if s.width != self.width_trained_on:
                raise ValueError(
                    f"series has {s.width} components but the scorer was fitted on {self.width_trained_on}"
                )
            values = s.values(copy=False).astype(np.float32)
            if self.component_wise:
                cols = [reconstruction_scores(self.network_, values[:, [c]], stride, device=self.device)
                        for c in range(values.shape[1])]
                scores = np.stack(cols, axis=1)
            else:
                scores = reconstruction_scores(self.network_, values, stride, device=self.device)[:, None]
            out.append(TimeSeries.from_times_and_values(s.time_index, scores))
        return out

    def trainable_parameters(self) -> int:
        """Trainable parameters of the fine-tuned network (0 before ``fit``)."""
        return 0 if self.network_ is None else int(parameter_report(self.network_)["total_trainable"])
