"""TraceAnomalyDetector: masked-reconstruction fine-tuning as an sktime anomaly detector."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sktime.detection.base import BaseDetector

from trace_forecast.adapters import DEFAULT_TARGETS
from trace_forecast.backbone import shared_backbone
from trace_forecast.errors import DataError
from trace_forecast.estimators._common import store_fit, train_settings
from trace_forecast.estimators._frames import as_frame, channels, check_frame
from trace_forecast.network import NetworkSpec
from trace_forecast.persistence import CompactNetworkState
from trace_forecast.tasks.reconstruct import fit_reconstruction, reconstruction_scores

THRESHOLDS = ("percentile", "contamination")


class TraceAnomalyDetector(CompactNetworkState, BaseDetector):
    """Anomaly detection by reconstruction error of a TRACE-adapted MOMENT-style model.

    ``fit`` fine-tunes masked-patch reconstruction on (mostly) normal data with the
    same gated LoRA adapters and Gated DSIC selection as the forecaster. The score of a
    time step is its squared reconstruction error in the window's normalised scale,
    averaged over the overlapping windows (every ``stride`` steps) that cover it and
    over channels, so series of any length are scored.

    Parameters
    ----------
    backbone : str, path or None, default=None
        MOMENT-layout checkpoint: ``None`` (embedded default), a folder or a hub id.
    adapter : {"gated_dsic", "lora", "adalora", "full", "none"}, default="gated_dsic"
        ``"none"`` is zero-shot: no fine-tuning at all.
    lora_rank : int, default=2
        Rank of every LoRA module.
    lora_targets : list of str or None, default=None
        Names of the encoder linear layers that get adapters; ``None`` means every
        ``q, k, v, o, wi_0, wi_1, wo`` of every block.
    dsic_budget, dsic_interval, dsic_draws, dsic_warmup, dsic_final
        Gated DSIC settings, as in :class:`trace_forecast.TraceForecaster`.
    context_length : int, default=512
        Window length (multiple of 8, at most the backbone's 512).
    stride : int or None, default=None
        Step between scoring windows; ``None`` uses ``context_length // 8``.
    mask_ratio : float, default=0.3
        Fraction of patches hidden in masked-reconstruction training.
    max_epochs : int, default=3
    batch_size : int, default=32
    learning_rate : float, default=1e-3
    validation_fraction : float, default=0.2
    max_windows : int or None, default=None
        Cap on training windows (reproducible random subset).
    window_stride : int, default=8
        Step between training windows.
    threshold : {"percentile", "contamination"} or float, default="percentile"
        Labelling rule: a percentile of the training scores, the top ``contamination``
        share of the scored series, or a fixed score.
    percentile : float, default=99.0
        Percentile of training scores used by ``threshold="percentile"``.
    contamination : float, default=0.01
        Share of points flagged by ``threshold="contamination"``.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int or None, default=None
    verbose : bool, default=False

    Attributes
    ----------
    network_ : TraceNetwork
    train_scores_ : np.ndarray
        Scores of the training series (basis of the percentile threshold).
    threshold_ : float or None
        Fitted threshold (``None`` for the contamination rule).
    trainable_parameters_ : dict

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from trace_forecast import TraceAnomalyDetector
    >>> t = np.arange(400)
    >>> x = pd.DataFrame({"x": np.sin(t / 8)})
    >>> x.iloc[300:305] += 3.0
    >>> detector = TraceAnomalyDetector(context_length=64, max_epochs=1, random_state=0)
    >>> detector = detector.fit(x.iloc[:250])
    >>> scores = detector.transform_scores(x)
    >>> len(scores) == len(x)
    True
    """

    _tags = {
        "authors": ["trace_forecast developers"],
        "maintainers": ["trace_forecast developers"],
        "python_dependencies": ["torch", "transformers", "pytorch-lightning", "safetensors", "huggingface-hub", "peft"],
        "task": "anomaly_detection",
        "learning_type": "unsupervised",
        "capability:multivariate": True,
        "capability:missing_values": False,
        "fit_is_empty": False,
        "X_inner_mtype": "pd.DataFrame",
        "capability:random_state": True,
        "property:randomness": "derandomized",
    }

    def __init__(
        self,
        backbone=None,
        adapter="gated_dsic",
        lora_rank=2,
        lora_targets=None,
        dsic_budget=0.5,
        dsic_interval=10,
        dsic_draws=8,
        dsic_warmup=0.2,
        dsic_final=0.7,
        context_length=512,
        stride=None,
        mask_ratio=0.3,
        max_epochs=3,
        batch_size=32,
        learning_rate=1e-3,
        validation_fraction=0.2,
        max_windows=None,
        window_stride=8,
        threshold="percentile",
        percentile=99.0,
        contamination=0.01,
        device="auto",
        random_state=None,
        verbose=False,
    ):
        self.backbone = backbone
        self.adapter = adapter
        self.lora_rank = lora_rank
        self.lora_targets = lora_targets
        self.dsic_budget = dsic_budget
        self.dsic_interval = dsic_interval
        self.dsic_draws = dsic_draws
        self.dsic_warmup = dsic_warmup
        self.dsic_final = dsic_final
        self.context_length = context_length
        self.stride = stride
        self.mask_ratio = mask_ratio
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.max_windows = max_windows
        self.window_stride = window_stride
        self.threshold = threshold
        self.percentile = percentile
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        super().__init__()

    def _check_params(self) -> None:
        if not (isinstance(self.threshold, int | float) or self.threshold in THRESHOLDS):
            raise ValueError(f"threshold must be one of {THRESHOLDS} or a number, got {self.threshold!r}")
        if not 0 < self.percentile < 100:
            raise ValueError(f"percentile must be in (0, 100), got {self.percentile}")
        if not 0 < self.contamination < 1:
            raise ValueError(f"contamination must be in (0, 1), got {self.contamination}")

    def _scoring_stride(self) -> int:
        return self.stride if self.stride is not None else max(1, self.context_length // 8)

    def _values(self, X) -> np.ndarray:
        X = as_frame(X)
        check_frame(X, "X")
        if hasattr(self, "columns_") and len(X.columns) != len(self.columns_):
            raise DataError(f"X has {len(X.columns)} columns but the detector was fitted on {len(self.columns_)}")
        return X.to_numpy(dtype=np.float32)

    def _fit(self, X, y=None):
        self._check_params()
        X = as_frame(X)
        values = self._values(X)
        self.columns_ = list(X.columns)
        backbone = shared_backbone(self.backbone)
        spec = NetworkSpec(task="reconstruction", context_length=self.context_length, adapter=self.adapter,
                           lora_rank=self.lora_rank,
                           lora_targets=DEFAULT_TARGETS if self.lora_targets is None else tuple(self.lora_targets))
        settings = train_settings(self, mask_ratio=self.mask_ratio)
        series = channels([X])
        result = fit_reconstruction(series, backbone, spec, settings, self.validation_fraction,
                                    self.max_windows, self.window_stride, min_context=1)
        store_fit(self, result)
        self.train_scores_ = reconstruction_scores(self.network_, values, self._scoring_stride(), device=self.device)
        if self.threshold == "percentile":
            self.threshold_ = float(np.percentile(self.train_scores_, self.percentile))
        elif self.threshold == "contamination":
            self.threshold_ = None
        else:
            self.threshold_ = float(self.threshold)
        return self

    def _scores(self, X: pd.DataFrame) -> np.ndarray:
        return reconstruction_scores(self.network_, self._values(X), self._scoring_stride(), device=self.device)

    def _transform_scores(self, X):
        return pd.DataFrame({"scores": self._scores(X)}, index=as_frame(X).index)

    def _predict_scores(self, X):
        scores = self._scores(X)
        ilocs = self._flagged(scores)
        return pd.Series(scores[ilocs], dtype=float)

    def _flagged(self, scores: np.ndarray) -> np.ndarray:
        if self.threshold_ is None:
            cut = np.quantile(scores, 1.0 - self.contamination)
            return np.flatnonzero(scores >= cut)
        return np.flatnonzero(scores > self.threshold_)

    def _predict(self, X):
        return pd.Series(self._flagged(self._scores(X)), dtype="int64")

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Tiny configurations that fit in about a second on a CPU."""
        fast = {"context_length": 32, "max_epochs": 1, "max_windows": 32, "batch_size": 16, "random_state": 0}
        return [
            {**fast, "dsic_interval": 1, "dsic_draws": 2},
            {**fast, "adapter": "none", "threshold": "contamination", "contamination": 0.05},
        ]
