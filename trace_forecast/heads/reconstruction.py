"""TRACE's reconstruction-based forecasting head.

The pretrained reconstruction head (``head.linear``: ``d_model -> patch_len``) turns
every token back into a time-domain patch, so the encoder output becomes a
``[B, C, L]`` signal in RevIN space. A tiny *temporal map* then maps those ``L``
values to the ``H`` future values.

What the backbone reconstructs (``future_patches``, :func:`extend_with_hidden_future`):
with ``future_patches = P > 0`` the context is shifted left by ``P`` patches and
``P`` hidden patches are appended after its end, so the backbone *predicts* the next
``P * patch_len`` steps (MOMENT's own zero-shot forecasting route) and the temporal
map reads the reconstructed recent history together with that prediction, plus the ``P`` oldest
patches the shift pushed out (normalised, not encoded), so no history is lost: ``L +
P * patch_len`` inputs. With ``P = 0`` it reads the reconstruction of the unmasked
context, which a backbone that reconstructs visible patches near-exactly turns into a
copy of the input (the map is then a RevIN linear model; ``docs/design.md``).

Horizons beyond one pass (:func:`rollout_steps`): the backbone was pretrained to extend a
series by at most :data:`MAX_FUTURE_PATCHES` patches, so a longer horizon is *rolled out*:
the predicted patches are appended to the context (the oldest history drops out) and the
backbone predicts the next ones, until the horizon is covered. Every pass's prediction is
put in the RevIN space of the visible history and joins the map's inputs, so step ``h`` of
any horizon has its own predicted value (the zero-shot map reads it; the fine-tuned map may).

Sign symmetry (``sign_symmetric``, on by default for zero-shot and fine-tuned heads): the
map's inputs are the average of those of the series and, negated back, those of the negated
series, so the forecast is odd in the input. That removes a bias the pretrained backbone has
between a series and its negation (``docs/design.md``). Training may read one of the two per
window instead (:data:`SIGN_SYMMETRIC_TRAINING`), so that only evaluation pays the second pass.

Variants of the temporal map (chosen by ``temporal_map``):

- ``"linear"``: ``Linear(L, H)`` — ``(L + 1) * H`` parameters.
- ``"truncate"``: ``Linear(k, H)`` on the last ``k`` reconstructed values only.
- ``"pool"``: average-pool the ``L`` values by ``pool`` then ``Linear(L / pool, H)``.
- ``"dwconv"``: a depth-wise separable conv over patches (per-patch kernel then
  point-wise mixing) followed by ``Linear(L, H)``.

The map is initialised to repeat the last observed (reconstructed) value, a
persistence forecast, so fine-tuning starts from a sensible point.
"""

from __future__ import annotations

import torch
from torch import nn

from trace_forecast.errors import ParameterError
from trace_forecast.losses import TARGET_CLIP
from trace_forecast.parameters import TEMPORAL_MAPS

MAX_FUTURE_PATCHES = 24  # the longest hidden tail the embedded backbone was pretrained on
# Zero-shot forecasts average the backbone's forecast of the series and, negated back, of its
# negation (ReconstructionForecastHead(sign_symmetric=True); docs/design.md, "Zero-shot forecasts
# are sign-symmetric").
SIGN_SYMMETRIC_ZERO_SHOT = True
# The same average for fine-tuned reconstruction heads: the closed-form start, validation and
# prediction read the averaged features (docs/design.md, "Fine-tuned forecasts are sign-symmetric").
SIGN_SYMMETRIC_FINE_TUNE = True
# How a sign-symmetric head trains: "sampled" runs the backbone on x or on -x, drawn per window,
# negated back (a plain head's cost; since the map is linear and the loss convex, its loss bounds
# the average's from above); "both" runs it on both every step (the exact average, twice the passes).
SIGN_SYMMETRIC_TRAINING = "sampled"


def auto_future_patches(horizon: int, context_length: int, patch_len: int) -> int:
    """``future_patches="auto"``: enough patches to cover the horizon, at most
    :data:`MAX_FUTURE_PATCHES` and at most half of the context's patches."""
    return max(0, min(-(-horizon // patch_len), MAX_FUTURE_PATCHES, context_length // patch_len // 2))


def rollout_steps(future_patches: int, horizon: int, patch_len: int = 8) -> int:
    """Future steps the backbone predicts for a ``horizon``-step forecast: every step of the
    horizon (rounded up to whole patches) when it predicts any (``future_patches > 0``), in
    passes of ``future_patches`` patches; ``0`` otherwise."""
    if future_patches <= 0:
        return 0
    return max(future_patches, -(-horizon // patch_len)) * patch_len


def resolve_future_patches(value: int | str, horizon: int, context_length: int, patch_len: int = 8) -> int:
    """The ``future_patches`` parameter as a count: ``"auto"`` (:func:`auto_future_patches`)
    or an integer that leaves at least one patch of history."""
    if value == "auto":
        return auto_future_patches(horizon, context_length, patch_len)
    limit = context_length // patch_len
    if not 0 <= int(value) < limit:
        raise ParameterError(
            f"future_patches must be in [0, {limit - 1}] with context_length {context_length} "
            f"(it leaves at least one patch of history), got {value!r}"
        )
    return int(value)


def extend_with_hidden_future(
    x: torch.Tensor, input_mask: torch.Tensor, n_steps: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Drop the oldest ``n_steps`` of ``x [B, C, L]`` and append ``n_steps`` hidden steps.

    Returns ``(x, input_mask, shown)`` for :meth:`MomentBackbone.encode`: the appended
    steps count as observed (``input_mask`` 1, so they are attended to and reconstructed)
    but hidden (``shown`` 0: mask token in, no part in the RevIN statistics).
    """
    b, c, _ = x.shape
    x_ext = torch.cat([x[..., n_steps:], x.new_zeros(b, c, n_steps)], dim=-1)
    observed = torch.cat([input_mask[:, n_steps:], input_mask.new_ones(b, n_steps)], dim=-1)
    shown = torch.cat([input_mask.new_ones(b, input_mask.shape[-1] - n_steps), input_mask.new_zeros(b, n_steps)], -1)
    return x_ext, observed, shown


def use_zero_shot_map(network: nn.Module) -> None:
    """Make ``network`` a zero-shot forecaster: its reconstruction head's temporal map becomes
    :meth:`ReconstructionForecastHead.prior_weight` (each step reads the backbone's own
    prediction of it), and nothing stays trainable."""
    head = getattr(network, "forecast_head", None)
    if not isinstance(head, ReconstructionForecastHead) or not head.future_patches:
        raise ParameterError(
            "zero-shot forecasting reads the backbone's prediction of hidden future patches: it needs "
            'head="reconstruction" and future_patches >= 1 (or "auto")'
        )
    with torch.no_grad():
        head.temporal.weight.copy_(head.prior_weight().to(head.temporal.weight.dtype))
        head.temporal.bias.zero_()
    for p in network.parameters():
        p.requires_grad_(False)


class ReconstructionForecastHead(nn.Module):
    """Reuse the pretrained reconstruction head and add a temporal map ``L -> H``."""

    def __init__(
        self,
        pretrain_head: nn.Module,
        context_length: int,
        horizon: int,
        temporal_map: str = "linear",
        truncate: int = 128,
        pool: int = 4,
        patch_len: int = 8,
        train_reconstruction_head: bool = False,
        future_patches: int = 0,
        sign_symmetric: bool = False,
    ) -> None:
        super().__init__()
        self.sign_symmetric = sign_symmetric
        if temporal_map not in TEMPORAL_MAPS:
            raise ValueError(f"temporal_map must be one of {TEMPORAL_MAPS}, got {temporal_map!r}")
        if not 0 <= future_patches < context_length // patch_len:
            raise ValueError(
                f"future_patches must be in [0, {context_length // patch_len}) for context_length "
                f"{context_length}, got {future_patches}"
            )
        self.future_patches = future_patches
        self.pass_steps = future_patches * patch_len  # steps one backbone pass predicts
        self.pretrain_head = pretrain_head
        for p in self.pretrain_head.parameters():
            p.requires_grad_(train_reconstruction_head)
        self.kind = temporal_map
        self.context_length = context_length
        self.horizon = horizon
        self.patch_len = patch_len
        self.future_steps = rollout_steps(future_patches, horizon, patch_len)  # in one pass or several
        n_steps = context_length + self.future_steps  # dropped oldest history + reconstruction
        last_observed = context_length - 1  # position of the last observed step in those
        if temporal_map == "truncate":
            self.n_in = min(truncate, n_steps)
            last_observed -= n_steps - self.n_in
        elif temporal_map == "pool":
            if n_steps % pool:
                raise ValueError(f"context_length {context_length} must be a multiple of pool {pool}")
            self.pool = nn.AvgPool1d(pool)
            self.pool_size = pool
            self.n_in = n_steps // pool
            last_observed //= pool
        else:
            self.n_in = n_steps
        if temporal_map == "dwconv":
            n_patches = n_steps // patch_len
            self.depthwise = nn.Conv1d(n_patches, n_patches, kernel_size=3, padding=1, groups=n_patches)
            self.pointwise = nn.Conv1d(n_patches, n_patches, kernel_size=1)
            for conv in (self.depthwise, self.pointwise):
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
        self.n_steps = n_steps
        self.temporal = nn.Linear(self.n_in, horizon)
        with torch.no_grad():  # persistence start: every step copies the last observed value
            self.temporal.weight.mul_(0.01)
            self.temporal.weight[:, max(last_observed, 0)] += 1.0
            self.temporal.bias.zero_()

    def _input_index(self, step: int) -> int:
        """The temporal-map input that holds time step ``step`` of the map's ``n_steps``
        (``context_length + j`` is the backbone's prediction of future step ``j``)."""
        if self.kind == "truncate":
            return max(step - (self.n_steps - self.n_in), 0)
        if self.kind == "pool":
            return step // self.pool_size
        return step

    def prior_weight(self) -> torch.Tensor:
        """The zero-shot map ``[H, n_in]``: step ``h`` reads the backbone's prediction of
        future step ``h`` (rolled out over several passes where the horizon needs them; the
        last observed value when ``future_patches = 0``). The closed-form head start combines
        it with the fitted map (:mod:`trace_forecast.heads.ridge`)."""
        weight = torch.zeros(self.horizon, self.n_in)
        for h in range(self.horizon):
            step = self.context_length + min(h, self.future_steps - 1) if self.future_steps else self.context_length - 1
            weight[h, self._input_index(step)] = 1.0
        return weight

    def persistence_weight(self) -> torch.Tensor:
        """The persistence map ``[H, n_in]``: every step reads the last observed
        (reconstructed) value. The closed-form head start mixes it into the zero-shot prior
        where the windows prefer the last value (a random walk; :mod:`trace_forecast.heads.ridge`)."""
        weight = torch.zeros(self.horizon, self.n_in)
        weight[:, self._input_index(self.context_length - 1)] = 1.0
        return weight

    @property
    def output_layer(self) -> nn.Linear:
        """The final linear map (what :func:`trace_forecast.heads.ridge.ridge_solve` solves for)."""
        return self.temporal

    def encode(
        self, backbone: nn.Module, x: torch.Tensor, input_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run ``backbone`` on the context: ``(temporal-map inputs [B, C, n_in], mean, std)``,
        in the RevIN space of the visible history (what the forecast is made in). With
        ``sign_symmetric`` the inputs are the average of those of ``x`` and, negated back,
        those of ``-x`` (one batch of both): RevIN maps ``-x`` to the negated space of ``x``,
        so the average is in ``x``'s space, and the forecast becomes odd in the input."""
        if not self.sign_symmetric:
            return self._encode(backbone, x, input_mask)
        b = x.shape[0]
        if self.training and SIGN_SYMMETRIC_TRAINING == "sampled":
            sign = torch.where(torch.rand(b, 1, 1, device=x.device) < 0.5, -1.0, 1.0)
            features, mean, std = self._encode(backbone, x * sign.to(x.dtype), input_mask)
            return features * sign.to(features.dtype), mean * sign.to(mean.dtype), std
        # Each window's two signs side by side (item-major), so that rows that belong to one
        # window stay together: Gated DSIC's draws give each item its own gates by row blocks.
        both = torch.stack([x, -x], dim=1).flatten(0, 1)
        features, mean, std = self._encode(backbone, both, input_mask.repeat_interleave(2, dim=0))
        return (features[0::2] - features[1::2]) / 2, mean[0::2], std[0::2]

    def _encode(
        self, backbone: nn.Module, x: torch.Tensor, input_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not self.future_steps:
            enc = backbone.encode(x, input_mask)
            return self.features(enc.tokens, input_mask), enc.mean, enc.std
        first = min(self.pass_steps, self.future_steps)
        x_ext, observed, shown = extend_with_hidden_future(x, input_mask, first)
        enc = backbone.encode(x_ext, observed, shown)
        rec = self.pretrain_head(enc.tokens) * observed[:, None, :].to(enc.tokens.dtype)
        dropped = backbone.normalizer.normalize(x[..., :first], enc.mean, enc.std)
        dropped = dropped.clamp(-TARGET_CLIP, TARGET_CLIP) * input_mask[:, None, :first].to(rec.dtype)
        parts = [dropped.to(rec.dtype), rec]
        if self.future_steps > first:
            parts += self._roll_out(backbone, x_ext, observed, rec[..., -first:], enc.mean, enc.std)
        return self._map_inputs(torch.cat(parts, dim=-1)), enc.mean, enc.std

    def _roll_out(self, backbone: nn.Module, x_ext: torch.Tensor, observed: torch.Tensor, predicted: torch.Tensor,
                  mean: torch.Tensor, std: torch.Tensor) -> list[torch.Tensor]:
        """Further passes after the first: each appends what the last one predicted (in the
        input's scale) to the context and hides the next patches. Returns each pass's
        prediction in the first pass's RevIN space (the visible history's)."""
        parts, done = [], predicted.shape[-1]  # steps predicted so far
        context = torch.cat([x_ext[..., : -predicted.shape[-1]],
                             backbone.normalizer.denormalize(predicted.float(), mean, std).to(x_ext.dtype)], dim=-1)
        while done < self.future_steps:
            steps = min(self.pass_steps, self.future_steps - done)
            ctx, obs, shown = extend_with_hidden_future(context, observed, steps)
            enc = backbone.encode(ctx, obs, shown)
            new = self.pretrain_head(enc.tokens)[..., -steps:]
            new = backbone.normalizer.denormalize(new.float(), enc.mean, enc.std)  # the input's scale
            parts.append(backbone.normalizer.normalize(new, mean, std).clamp(-TARGET_CLIP, TARGET_CLIP).to(predicted.dtype))
            context = torch.cat([ctx[..., :-steps], new.to(ctx.dtype)], dim=-1)
            observed = obs
            done += steps
        return parts

    def features(self, tokens: torch.Tensor, input_mask: torch.Tensor) -> torch.Tensor:
        """The temporal map's inputs from the tokens of the unshifted context
        (``future_patches = 0``) ``[B, C, n_in]``."""
        return self._map_inputs(self.pretrain_head(tokens) * input_mask[:, None, :].to(tokens.dtype))

    def _map_inputs(self, rec: torch.Tensor) -> torch.Tensor:
        if self.kind == "truncate":
            rec = rec[..., -self.n_in :]
        elif self.kind == "pool":
            b, c, length = rec.shape
            rec = self.pool(rec.reshape(b * c, 1, length)).reshape(b, c, -1)
        elif self.kind == "dwconv":
            b, c, length = rec.shape
            patches = rec.reshape(b * c, -1, self.patch_len)
            mixed = patches + self.pointwise(self.depthwise(patches))
            rec = mixed.reshape(b, c, length)
        return rec

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """Temporal-map inputs -> normalised forecast ``[B, C, H]``."""
        return self.temporal(features)

    def forward(self, tokens: torch.Tensor, input_mask: torch.Tensor) -> torch.Tensor:
        """``tokens [B, C, n_patches, d_model]`` of the unshifted context -> normalised
        forecast ``[B, C, H]`` (``future_patches = 0`` only; see :meth:`encode`)."""
        if self.future_steps:
            raise RuntimeError("with future_patches > 0 the head needs the context itself: use encode() then project()")
        return self.project(self.features(tokens, input_mask))
