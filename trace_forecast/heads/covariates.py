"""The covariate head: a linear mixer of covariates and the forecast, fitted on top of it.

TRACE's backbone stays channel-independent and pretrained as it is; covariates enter after
it (``docs/design.md``, "Covariates"), as Tiny Time Mixers' exogenous mixer sits on top of
its channel-independent forecast. For a forecast origin, the head reads

- each covariate's ``H`` values over the forecast horizon where they are known in advance
  (sktime's ``X`` rows for ``fh``, Darts' ``future_covariates``) and its last
  :data:`PAST_STEPS` values before the origin, standardised by the covariate's own mean and
  standard deviation over the context window (a missing value: 0, the context mean);
- the fitted network's forecast and the target's last :data:`PAST_STEPS` values, in the
  target window's RevIN space,

each with its glitches read as missing values, as the network reads its context
(:mod:`trace_forecast.backbone.glitches`: one ``-9999`` in a driver would otherwise set the
spread it is standardised by, or enter the map as ten standard deviations),

and a ridge regression per target column maps them to what the forecast missed (``y_norm -
pred_norm``). Reading the forecast lets the head lean on the covariates where they explain
more than the series' own history (on French day-ahead prices, a gain in MAE from the
covariates alone grew with the forecast and recent values as inputs;
``docs/benchmarks_covariates.md``, "Design"). The penalty is
chosen on the fit's validation windows; where no penalty beats adding nothing there, the
head stays zero.

Written here rather than taken from scikit-learn's ``RidgeCV``: the features come from
windows that the forecasting task cuts, the targets from the fitted network, and the map
is tiny (``features x H`` numbers per column).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trace_forecast.backbone.glitches import arrays_without_glitches

PAST_STEPS = 8  # one patch of each covariate's most recent history
GLITCH_RUN = PAST_STEPS - 1  # glitches are runs shorter than a patch, as in the network's context
ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)  # relative to the mean feature energy


def mixer_inputs(covariate_features: np.ndarray, pred: np.ndarray, recent: np.ndarray,
                 reads_forecast: bool = True) -> np.ndarray:
    """The head's inputs ``[n, F]``: covariate features ``[n, Fc]``, the forecast ``[n, H]``
    and the target's last :data:`PAST_STEPS` values ``[n, PAST_STEPS]`` (RevIN space);
    ``reads_forecast=False``: the covariate features alone."""
    if not reads_forecast:
        return covariate_features
    return np.concatenate([covariate_features, pred, np.nan_to_num(np.clip(recent, -10.0, 10.0))], axis=1)


def window_features(context: np.ndarray, future: np.ndarray | None, past_only: tuple[int, ...] = ()) -> np.ndarray:
    """Features ``[K * (PAST_STEPS + H)]`` of covariates ``context [L, K]`` (up to the origin)
    and ``future [H, K]`` (``None``: past covariates only), standardised per covariate by its
    context's mean and standard deviation; missing values become 0 (the context mean).
    Covariates ``past_only`` (Darts' past covariates beside future ones) contribute their
    last :data:`PAST_STEPS` values only."""
    context = np.asarray(context, dtype=np.float64)
    with warnings.catch_warnings():  # an all-missing covariate context: NaN statistics, handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(context, axis=0)
        std = np.nanstd(context, axis=0)
    mean = np.nan_to_num(mean)
    # constant: no spread beyond float64's rounding of its level (an absolute 1e-8 read a
    # covariate in tiny units, around 1e-10, as constant and dropped it); the share is
    # tasks.conditioning.ROUNDING's, written here because heads sit below tasks and a shared
    # home in backbone/ would load the encoder's libraries on `import trace_forecast`
    std = np.where(np.isfinite(std) & (std > 1e-12 * np.abs(mean)) & (std > 0), std, 1.0)
    past = context[-PAST_STEPS:]
    if len(past) < PAST_STEPS:
        past = np.concatenate([np.full((PAST_STEPS - len(past), context.shape[1]), np.nan), past])
    parts = [past] if future is None else [past, np.asarray(future, dtype=np.float64)]
    z = np.nan_to_num(np.clip((np.concatenate(parts) - mean) / std, -10.0, 10.0)).T
    if future is None or not past_only:
        return z.ravel()
    return np.concatenate([row[:PAST_STEPS] if k in past_only else row for k, row in enumerate(z)])


def features(contexts: Sequence[np.ndarray], futures: Sequence[np.ndarray | None],
             past_only: tuple[int, ...] = ()) -> np.ndarray:
    """:func:`window_features` ``[n, F]`` of windows ``contexts[i] [L_i, K]`` and ``futures[i]
    [H, K]`` (``None``: past covariates only), each read with its glitches (on the whole window,
    context then future) as missing values."""
    windows = [np.asarray(c, dtype=np.float64) if f is None else np.concatenate([c, f]).astype(np.float64)
               for c, f in zip(contexts, futures, strict=True)]
    clean = arrays_without_glitches(windows, GLITCH_RUN)
    return np.asarray([window_features(w[: len(c)], None if f is None else w[len(c) :], past_only)
                       for w, c, f in zip(clean, contexts, futures, strict=True)])


@dataclass
class CovariateMap:
    """Per target column: ``weights [F, H]``, ``bias [H]`` and the chosen ``alpha``
    (``None``: the map stays zero, covariates did not help on validation)."""

    weights: np.ndarray   # [n_columns, F, H]
    bias: np.ndarray      # [n_columns, H]
    alphas: list[float | None]
    future_known: bool
    reads_forecast: bool = True  # False: covariate features only (the design ablation)
    past_only: tuple[int, ...] = ()  # covariates whose future is not known (with future_known)

    @property
    def n_features(self) -> int:
        return self.weights.shape[1]

    @property
    def active(self) -> bool:
        """Whether any column's map is not zero (covariates helped on validation)."""
        return any(alpha is not None for alpha in self.alphas)

    def correction(self, features: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """RevIN-space corrections ``[n, H]`` for ``features [n, F]`` of windows of target ``columns [n]``."""
        return np.einsum("nf,nfh->nh", features, self.weights[columns]) + self.bias[columns]


def _solve(x: np.ndarray, r: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    mean_x, mean_r = x.mean(0), r.mean(0)
    xc, rc = x - mean_x, r - mean_r
    gram = xc.T @ xc
    scale = max(float(np.mean(np.diag(gram))), 1e-12)
    weights = np.linalg.solve(gram + alpha * scale * np.eye(len(gram)), xc.T @ rc)
    return weights, mean_r - mean_x @ weights


def fit_column(x_train: np.ndarray, r_train: np.ndarray, x_val: np.ndarray, r_val: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, float | None]:
    """One target column's ridge map, its penalty chosen on the validation windows; zero
    (``alpha=None``) where none beats adding nothing. Missing residuals (NaN) weigh 0."""
    horizon = r_train.shape[1]
    zero = (np.zeros((x_train.shape[1], horizon)), np.zeros(horizon), None)
    if len(x_train) < 2:
        return zero
    r_train = np.nan_to_num(r_train)  # a missing target: no residual to explain
    observed = np.isfinite(r_val)
    if not len(x_val) or not observed.any():  # nothing to choose on: the middle penalty
        return (*_solve(x_train, r_train, 10.0), 10.0)
    best, best_error = zero, float(np.mean(r_val[observed] ** 2))
    for alpha in ALPHAS:
        weights, bias = _solve(x_train, r_train, alpha)
        error = float(np.mean(((r_val - (x_val @ weights + bias))[observed]) ** 2))
        if error < best_error:
            best, best_error = (weights, bias, alpha), error
    return best
