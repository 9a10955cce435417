"""Closed-form initialisation of a head's output layer before fine-tuning: a ridge fit
blended with the zero-shot map, both chosen on validation windows.

Linear probing first, then fine-tuning (LP-FT, Kumar et al., ICLR 2022) keeps the
pretrained features from being distorted by a random head, and on a CPU it replaces
many epochs of gradient steps on the head by one least-squares solve over features of
the frozen backbone. Used for any head whose feature width is at most
``MAX_RIDGE_FEATURES`` (TRACE's temporal map always; MOMENT's linear probe for small
backbones), so baselines get the same start.

How much to trust the data (``docs/design.md``, "A head start that adapts to the data"):

- **The zero-shot model is the prior.** A head may offer a ``prior_weight()``: for TRACE's
  reconstruction head, the map that reads the backbone's own prediction of the future
  (its zero-shot forecast). The head starts from the *blend* ``lambda * ridge + (1 - lambda)
  * prior`` of a ridge fit (penalty ``alpha``, toward zero) and that prior: a combination of
  two forecasts, which on few windows beats either of them (ETTh1, 5 % of the windows:
  0.375 against 0.395 for zero-shot and 0.40 for the ridge alone).
- **The last value may join the prior.** A random walk's best forecast is its last value,
  which neither the zero-shot map nor a ridge fit on few windows gives. The prior is
  ``s * persistence + (1 - s) * zero-shot`` (a head's ``persistence_weight()``: every step
  reads the last observed value), with ``s`` from :data:`LAST_VALUE_SHARES` chosen on *every*
  window, training and validation (neither map is fitted, so all are out of sample), whose
  context is like the forecast's (at least half of it: on a short series the first windows
  see a few steps), and only where the last value alone forecasts them better than the
  zero-shot map alone (:func:`choose_last_value_share`; ``docs/design.md`` has what the
  rules before it did).
- **Validation windows choose** ``alpha`` from :data:`ALPHAS`, ``lambda`` from
  :data:`BLENDS` (``lambda = 0`` is the prior itself, so with ``s = 0`` the start is never
  worse than zero-shot on validation) and how the fit weighs windows (RevIN's scale-free loss, or
  errors in each series' units), by the squared error in each series' own units. Small
  data then keeps the prior and a strong penalty; large data the fitted map.
- **Then the validation windows join the solve** with the chosen ``alpha`` and ``lambda``,
  so the head also learns from the most recent data.
- **Too little validation is no evidence.** With fewer than :data:`MIN_VALIDATION_WINDOWS`
  validation windows (a slice shorter than its horizon keeps one window per series for
  validation), choosing among the candidates would fit noise: the start is the zero-shot map
  (ETTh1, 5 % of the windows, H = 720: a choice made on 7 windows scored 0.975, the zero-shot
  map 0.454). Without any validation requested, the fitted map with the default penalty.

Where the windows' series units are known (:func:`trace_forecast.losses.window_weights`),
the solve weighs windows in one of two ways, which validation chooses: all alike (RevIN's
scale-free loss; a nearly constant window, whose normalised targets are a division by almost
zero, down to nothing), or by their scale in their series (errors in the series' units).
The choice on validation always weighs errors in each series' own units, what users measure.

Everything is computed from streamed normal-equation sums (``X'WX``, ``X'WY``, ``Y'WY``),
which data-parallel ranks all-reduce; scikit-learn's ``Ridge`` would need the feature
matrix in memory and has no validated blend. Each penalty is one Cholesky solve.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from trace_forecast.backbone.glitches import target_without_glitches
from trace_forecast.losses import TARGET_CLIP, window_weights

MAX_RIDGE_FEATURES = 16384
# Training windows whose features solve the head (forward passes only, so more than training sees).
RIDGE_WINDOWS = 8192
# Validation windows that choose the start and join its solve (the most recent data: worth reading).
RIDGE_VALIDATION_WINDOWS = 2048
# Ridge penalty without validation windows, relative to the mean feature energy (:func:`penalty_scale`).
DEFAULT_ALPHA = 1.0
# The penalties and blends validation windows choose from.
ALPHAS = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)
BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)
# The shares of the last observed value the windows may mix into the zero-shot prior (0: none).
LAST_VALUE_SHARES = BLENDS
# Fewer validation windows than this do not choose (the zero-shot map is kept).
MIN_VALIDATION_WINDOWS = 16
# Windows whose features are multiplied into the normal-equation sums at once.
ACCUMULATE_ROWS = 1024


@dataclass
class RidgeStatistics:
    """Weighted normal-equation sums over windows (float64, CPU). ``xtx [n+1, n+1]`` and
    ``xty [n+1, H]`` carry a bias column last (``xtx[-1, -1]`` is the total weight);
    ``yty [H]`` is the targets' weighted sum of squares; ``count`` the number of windows."""

    xtx: torch.Tensor
    xty: torch.Tensor
    yty: torch.Tensor
    count: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.count is None:
            self.count = self.xtx[-1, -1].detach().clone()

    @property
    def windows(self) -> int:
        return int(round(float(self.count)))

    @property
    def weight(self) -> float:
        return float(self.xtx[-1, -1])

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.xtx, self.xty, self.yty, self.count

    def __add__(self, other: RidgeStatistics) -> RidgeStatistics:
        return RidgeStatistics(*(a + b for a, b in zip(self.tensors(), other.tensors(), strict=True)))


@dataclass(frozen=True)
class HeadStart:
    """What the closed-form start chose: the penalty ``alpha``, the blend ``blend`` (share of
    the fitted map; the rest is the prior: the zero-shot map with a share ``persistence`` of
    the last observed value mixed in), and how the fit weighed windows (``weighting``,
    :func:`~trace_forecast.losses.window_weights`; training then weighs them the same way),
    the validation error of the choice and of the zero-shot map alone, and how many
    validation windows chose (``None`` without validation)."""

    alpha: float
    blend: float
    validation_error: float | None = None
    zero_shot_error: float | None = None
    validation_windows: int | None = None
    weighting: str = "fit"
    persistence: float = 0.0


def ridge_applicable(network) -> bool:
    """Whether the head's output layer is small enough for the closed-form solve."""
    head = network.forecast_head
    return head is not None and head.output_layer.in_features <= MAX_RIDGE_FEATURES


@torch.no_grad()
def ridge_statistics(network, batches: Iterable[tuple[torch.Tensor, ...]],
                     weightings: tuple[str, ...] = ("fit",)) -> RidgeStatistics | dict[str, RidgeStatistics]:
    """Normal-equation sums over ``batches`` (see :class:`RidgeStatistics`).

    Each batch is ``(x [B, 1, L], input_mask [B, L], y [B, 1, H])``, optionally followed by
    each window's series unit ``scale [B]`` (then windows are weighted by
    :func:`~trace_forecast.losses.window_weights`); targets are the future values in each
    window's RevIN space, as the training loss sees them. With several ``weightings`` (one
    pass over the windows), a dict of sums per weighting. The sums can be all-reduced across
    data-parallel ranks before :func:`ridge_solve`.

    A missing target (NaN in ``y``) takes the value the head's prior (:func:`head_prior`; 0,
    the window's mean, without one) gives it: every window keeps one feature row shared by
    all horizon steps, and the missing step adds nothing to the prior's error.
    """
    layer = network.forecast_head.output_layer
    prior = head_prior(network)
    was_training = network.training
    network.eval()
    n = layer.in_features + 1
    sums = {w: [torch.zeros(n, n, dtype=torch.float64), torch.zeros(n, layer.out_features, dtype=torch.float64),
                torch.zeros(layer.out_features, dtype=torch.float64)] for w in weightings}
    count = torch.zeros((), dtype=torch.float64)
    pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]] = []

    def accumulate() -> None:
        feats, target, std = (torch.cat([p[i] for p in pending]) for i in range(3))
        scale = None if pending[0][3] is None else torch.cat([p[3] for p in pending])
        for weighting, (xtx, xty, yty) in sums.items():
            weight = window_weights(std, scale, weighting)
            weighted = feats if weight is None else feats * weight[:, None]
            xtx += (weighted.T @ feats).cpu()
            xty += (weighted.T @ target).cpu()
            yty += ((target * target) if weight is None else (target * target) * weight[:, None]).sum(0).cpu()
        pending.clear()

    rows = 0
    for batch in batches:
        x, input_mask, y = batch[:3]
        y = target_without_glitches(x, input_mask, y, network.patch_len)
        feats, mean, std = network.forecast_features(x, input_mask)
        feats = feats[:, 0].double()
        feats = torch.cat([feats, torch.ones(len(feats), 1, dtype=feats.dtype, device=feats.device)], dim=1)
        target = ((y[:, 0] - mean[:, 0]) / std[:, 0]).clamp(-TARGET_CLIP, TARGET_CLIP).double()
        if not bool(torch.isfinite(target).all()):
            fill = feats[:, :-1] @ prior.to(feats).T if prior is not None else torch.zeros_like(target)
            target = torch.where(torch.isfinite(target), target, fill)
        pending.append((feats, target, std[:, 0, 0].double(), batch[3] if len(batch) > 3 else None))
        rows += len(feats)
        count += len(feats)
        if rows >= ACCUMULATE_ROWS:  # one product per ~1,024 windows: adding an [n, n] sum per
            accumulate()              # batch cost as much as the products for wide heads
            rows = 0
    if pending:
        accumulate()
    network.train(was_training)
    out = {w: RidgeStatistics(*tensors, count.clone()) for w, tensors in sums.items()}
    return out[weightings[0]] if len(weightings) == 1 else out


def head_prior(network) -> torch.Tensor | None:
    """The output layer's prior weight ``[H, n]`` (``None``: shrink toward zero)."""
    prior = getattr(network.forecast_head, "prior_weight", None)
    return None if prior is None else prior().detach().double().cpu()


def head_persistence(network) -> torch.Tensor | None:
    """The output layer's persistence map ``[H, n]`` (``None``: the head has none)."""
    persistence = getattr(network.forecast_head, "persistence_weight", None)
    return None if persistence is None else persistence().detach().double().cpu()


def _centred(stats: RidgeStatistics):
    xtx, xty = stats.xtx.double().cpu(), stats.xty.double().cpu()
    count = xtx[-1, -1].clamp_min(1e-12)  # the total weight of the windows
    mean_x, mean_y = xtx[:-1, -1] / count, xty[-1] / count
    sxx = xtx[:-1, :-1] - count * torch.outer(mean_x, mean_x)
    sxy = xty[:-1] - count * torch.outer(mean_x, mean_y)
    return sxx, sxy, mean_x, mean_y


def penalty_scale(stats: RidgeStatistics) -> torch.Tensor:
    """The unit of the ridge penalty: the mean energy (sum of squares over windows) of the
    features that are ever non-zero. Features that are zero in every window (map inputs
    that are padding throughout a short series) are left out: counted in, they would
    dilute the penalty exactly where the windows are fewest. (Energy, not variance: for
    features with a large common offset, such as MOMENT's tokens under linear probing,
    the variance would make the penalty far weaker: linear probing on ETTh1, H = 96, every
    test window, scored MSE 0.414 with it against 0.384.)"""
    energy = torch.diagonal(stats.xtx).double()[:-1].clamp_min(0.0)
    used = energy > 0
    return energy[used].mean() if bool(used.any()) else energy.new_tensor(1e-12)


def squared_error(stats: RidgeStatistics, weight: torch.Tensor, bias: torch.Tensor) -> float:
    """Weighted mean squared error of ``x @ weight.T + bias`` over the windows summed in ``stats``."""
    xtx, xty, yty = (t.double().cpu() for t in stats.tensors()[:3])
    full = torch.cat([weight.T, bias[None, :]], dim=0)  # [n+1, H]
    total = yty.sum() - 2 * (full * xty).sum() + (full * (xtx @ full)).sum()
    return float(total.clamp_min(0.0) / (xtx[-1, -1].clamp_min(1e-12) * full.shape[1]))


@torch.no_grad()
def ridge_path(stats: RidgeStatistics, alphas: Iterable[float],
               target: torch.Tensor | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(weight [H, n], bias [H])`` for every penalty in ``alphas``: ridge solutions of
    ``stats`` shrunk toward ``target`` (``[H, n]``; ``None``: zero). Penalties are relative
    to the mean energy of the features (:func:`penalty_scale`); the bias is not shrunk. Each
    penalty is one Cholesky solve of the centred ``X'X + alpha I``: a few of them cost less
    than one eigen-decomposition (for linear probing's 8,193 inputs, seconds instead of
    minutes); where a factorisation fails, the eigen-decomposition serves every penalty."""
    sxx, sxy, mean_x, mean_y = _centred(stats)
    w0 = None if target is None else target.T.double()
    r_xy = sxy if w0 is None else sxy - sxx @ w0  # solve for the departure from the target
    scale = float(penalty_scale(stats).cpu())
    out, eigen = [], None
    for alpha in alphas:
        penalised = sxx.clone()
        penalised.diagonal().add_(alpha * scale)  # no [n, n] identity: 0.5 GB for linear probing
        factor, info = torch.linalg.cholesky_ex(penalised)
        if int(info) == 0:
            weight = torch.cholesky_solve(r_xy, factor)
        else:  # not positive definite in floating point: the spectral solution
            if eigen is None:
                eigen = torch.linalg.eigh(sxx)
            energy, vectors = eigen
            weight = vectors @ ((vectors.T @ r_xy) / (energy.clamp_min(0.0) + alpha * scale)[:, None])
        if w0 is not None:
            weight = weight + w0
        out.append((weight.T, mean_y - mean_x @ weight))
    return out


def ridge_solution(stats: RidgeStatistics, target: torch.Tensor | None = None,
                   alpha: float = DEFAULT_ALPHA) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight [H, n], bias [H])``: the ridge solution of ``stats`` with penalty ``alpha``
    shrunk toward ``target`` (see :func:`ridge_path`)."""
    return ridge_path(stats, [alpha], target)[0]


def blend(fitted: tuple[torch.Tensor, torch.Tensor], prior: torch.Tensor | None,
          share: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``share * fitted + (1 - share) * prior`` (the prior map has no bias)."""
    weight, bias = fitted
    if prior is None:
        return weight, bias
    return share * weight + (1.0 - share) * prior.to(weight.dtype), share * bias


def choose_head_start(stats: RidgeStatistics | dict[str, RidgeStatistics], validation: RidgeStatistics,
                      prior: torch.Tensor | None, alphas: Iterable[float] = ALPHAS,
                      blends: Iterable[float] = BLENDS) -> HeadStart:
    """The weighting, penalty and blend whose solution on ``stats`` (one set of sums, or one
    per weighting of the windows) has the smallest squared error on ``validation`` (ties go
    to the first weighting, the smaller penalty, then the larger share of the prior)."""
    alphas = tuple(alphas)
    shares = tuple(blends) if prior is not None else (1.0,)
    candidates = stats if isinstance(stats, dict) else {"fit": stats}
    best: tuple[float, str, float, float] | None = None
    for weighting, sums in candidates.items():
        for alpha, fitted in zip(alphas, ridge_path(sums, alphas), strict=True):
            for share in sorted(shares):
                error = squared_error(validation, *blend(fitted, prior, share))
                if best is None or error < best[0] - 1e-12:
                    best = (error, weighting, alpha, share)
    zero_shot = None if prior is None else squared_error(validation, prior, torch.zeros(prior.shape[0]))
    return HeadStart(best[2], best[3], best[0], zero_shot, validation.windows, best[1])


def choose_last_value_share(prior: torch.Tensor, persistence: torch.Tensor, windows: RidgeStatistics,
                            shares: Iterable[float] | None = None) -> float:
    """The share ``s`` of the last observed value in the prior ``s * persistence + (1 - s) *
    prior`` (from ``shares``, default :data:`LAST_VALUE_SHARES`) with the smallest squared
    error on ``windows`` (ties go to the smaller share) -- 0 unless the last value alone
    forecasts ``windows`` better than the zero-shot map alone. Neither map is fitted, so every
    window, training and validation alike, is out of sample for both: the choice reads them
    all, not the validation windows' short stretch alone. The condition keeps a small share
    from entering where the last value is the worse forecast and mixing it in only trims the
    prior's error a little: the blend with the fitted map then loses the zero-shot map's
    complementary errors (ILI at L = 104, all the data: a 25 % share made the fine-tune's test
    error 2 to 4 % worse)."""
    zero = torch.zeros(prior.shape[0], dtype=torch.float64)
    errors = {share: squared_error(windows, share * persistence + (1.0 - share) * prior, zero)
              for share in sorted({0.0, 1.0, *(LAST_VALUE_SHARES if shares is None else shares)})}
    if errors[1.0] >= errors[0.0]:
        return 0.0
    best = (None, 0.0)
    for share in sorted(LAST_VALUE_SHARES if shares is None else shares):
        if best[0] is None or errors[share] < best[0] - 1e-12:
            best = (errors[share], share)
    return best[1]


def last_value_prior(network, prior: torch.Tensor | None, stats: dict[str, RidgeStatistics] | None,
                     selection: RidgeStatistics | None,
                     like_the_forecast: RidgeStatistics | None = None) -> tuple[float, torch.Tensor | None]:
    """The share of the last value in the prior and the prior with it mixed in
    (:func:`choose_last_value_share` on the training windows ``stats`` and the validation
    windows ``selection`` together, in series units where the sums have them; a share of 0
    without a persistence map or with fewer than :data:`MIN_VALIDATION_WINDOWS` windows).
    ``like_the_forecast`` (series units), where given, replaces the training windows: those
    whose context is like the forecast's
    (:func:`~trace_forecast.engine.windows.like_the_forecast`)."""
    persistence = head_persistence(network)
    if prior is None or persistence is None or not stats:
        return 0.0, prior
    windows = like_the_forecast if like_the_forecast is not None else \
        stats.get("series units", next(iter(stats.values())))
    windows = windows if selection is None else windows + selection
    if windows.windows < MIN_VALIDATION_WINDOWS or windows.weight <= 0:
        return 0.0, prior
    share = choose_last_value_share(prior, persistence, windows)
    return share, prior if share == 0.0 else share * persistence + (1.0 - share) * prior


def too_little_validation(network, validation: RidgeStatistics) -> bool:
    """Whether ``validation`` is too thin to choose on and the head has a zero-shot map to keep."""
    return head_prior(network) is not None and (validation.windows < MIN_VALIDATION_WINDOWS
                                                 or validation.weight <= 0)


Sums = RidgeStatistics | dict[str, RidgeStatistics]


@torch.no_grad()
def ridge_solve(network, stats: Sums | None, alpha: float = DEFAULT_ALPHA, validation: Sums | None = None,
                selection: RidgeStatistics | None = None,
                like_the_forecast: RidgeStatistics | None = None) -> HeadStart:
    """Set the head's output layer to its closed-form start; returns what was chosen.

    Where the head has a zero-shot map, the prior is that map with a share of the last value
    mixed in (:func:`last_value_prior`, on ``stats`` and the validation windows together).
    Without ``validation`` (none requested): the ridge solution with penalty ``alpha``, toward
    zero. With fewer than :data:`MIN_VALIDATION_WINDOWS` validation windows, or none with any
    weight: the prior (``stats`` may be ``None``: then the zero-shot map). Otherwise (the later
    windows): :func:`choose_head_start` picks the penalty and the blend with the prior on them,
    and the system is solved again on training and validation windows together, so the head
    also learns from the most recent data. ``stats`` and ``validation`` may hold one set of
    sums per weighting of the windows (``{"fit": ..., "series units": ...}``): the weighting is
    then chosen with the rest. ``selection`` (default: ``validation``'s first) are the
    validation windows' sums weighted as the choice weighs them (in each series' units).
    ``like_the_forecast`` (series units): the training windows whose context is like the
    forecast's, where that is not all of them; the last value's share reads them.
    """
    prior = head_prior(network)
    if validation is not None and not isinstance(validation, dict):
        validation = {"fit": validation}
    if stats is not None and not isinstance(stats, dict):
        stats = {"fit": stats}
    first = None if validation is None else next(iter(validation.values()))
    selection = first if selection is None else selection
    if first is not None and too_little_validation(network, first):
        last_value, mixed = last_value_prior(network, prior, stats, selection, like_the_forecast)
        set_output_layer(network, mixed, torch.zeros(prior.shape[0], dtype=prior.dtype))
        return HeadStart(alpha, 0.0, validation_windows=first.windows, persistence=last_value)
    default = next(iter(stats.values()))
    if first is None or default.weight <= 0 or first.weight <= 0:
        set_output_layer(network, *ridge_solution(default, None, alpha))
        return HeadStart(alpha, 1.0, validation_windows=None if first is None else first.windows)
    last_value, mixed = last_value_prior(network, prior, stats, selection, like_the_forecast)
    choice = choose_head_start(stats, selection, mixed)
    if last_value > 0.0:  # the zero-shot map alone, not the prior it was mixed into
        zero_shot = squared_error(selection, prior, torch.zeros(prior.shape[0]))
        choice = dataclasses.replace(choice, zero_shot_error=zero_shot, persistence=last_value)
    joined = stats[choice.weighting] + validation[choice.weighting]
    set_output_layer(network, *blend(ridge_solution(joined, None, choice.alpha), mixed, choice.blend))
    return choice


@torch.no_grad()
def set_output_layer(network, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Copy a solution ``(weight [H, n], bias [H])`` into the head's output layer."""
    layer = network.forecast_head.output_layer
    layer.weight.copy_(weight.to(layer.weight.dtype))
    layer.bias.copy_(bias.to(layer.bias.dtype))
