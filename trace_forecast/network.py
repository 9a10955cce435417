"""The adapted model: a backbone, an adapter mode and a task head, as one ``nn.Module``.

Pure tensors in, tensors out; nothing here knows pandas, sktime or Darts.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
from torch import nn

from trace_forecast.adapters import GatedLoraSet
from trace_forecast.adapters.peft_adapters import inject_peft
from trace_forecast.backbone.glitches import target_without_glitches, without_glitches
from trace_forecast.backbone.moment import MomentBackbone, patch_view
from trace_forecast.heads import LinearProbingHead, ReconstructionForecastHead
from trace_forecast.losses import masked_reconstruction_loss, normalized_mse
from trace_forecast.rng import GLOBAL_RNG_LOCK
from trace_forecast.spec import ADAPTERS, HEADS, TASKS, NetworkSpec  # noqa: F401  (re-exported)


def random_patch_mask(
    input_mask: torch.Tensor, patch_len: int, ratio: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Hide a fraction ``ratio`` of each row's observed patches: ``[B, L]``, 0 = hidden."""
    observed = patch_view(input_mask, patch_len).bool()
    noise = torch.rand(observed.shape, generator=generator, device="cpu").to(input_mask.device)
    noise = torch.where(observed, noise, torch.full_like(noise, 2.0))
    n_hide = (observed.sum(-1, keepdim=True).float() * ratio).floor().long()
    rank = noise.argsort(-1).argsort(-1)
    hide = (rank < n_hide) & observed
    return (~hide).to(input_mask.dtype).repeat_interleave(patch_len, dim=-1)


def scheme_patch_mask(
    input_mask: torch.Tensor, patch_len: int, scheme: str, n_masks: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One random mask per row from the complementary family an anomaly score uses
    (:mod:`trace_forecast.tasks.scoring`): ``"block"`` hides a contiguous run of
    ``1 / n_masks`` of the observed patches at a random offset, ``"interleaved"`` every
    ``n_masks``-th observed patch from a random phase, ``"tail"`` the last ``n_masks``
    patches. At least one observed patch stays visible. ``[B, L]``, 0 = hidden."""
    observed = patch_view(input_mask, patch_len).bool()                       # [B, P]
    n_obs = observed.sum(-1, keepdim=True)
    first = observed.shape[-1] - n_obs                                         # left padding
    p = torch.arange(observed.shape[-1], device=input_mask.device)[None, :]
    u = torch.rand(n_obs.shape, generator=generator, device="cpu").to(input_mask.device)
    if scheme == "block":
        length = torch.clamp(torch.ceil(n_obs / n_masks), max=(n_obs - 1).clamp_min(0))
        start = first + torch.floor(u * (n_obs - length + 1))
        hide = (p >= start) & (p < start + length)
    elif scheme == "interleaved":
        phase = torch.floor(u * n_masks)
        hide = ((p - first) % n_masks == phase) & (n_obs > 1)
    elif scheme == "tail":
        hide = p >= observed.shape[-1] - torch.clamp(n_obs - 1, max=n_masks)
    else:
        raise ValueError(f"unknown mask scheme {scheme!r}")
    hide = hide & observed
    return (~hide).to(input_mask.dtype).repeat_interleave(patch_len, dim=-1)


class TraceNetwork(nn.Module):
    """Backbone + adapter + head. Build it with :func:`build_network`."""

    def __init__(self, backbone: MomentBackbone, spec: NetworkSpec, head: nn.Module | None) -> None:
        super().__init__()
        self.backbone = backbone
        self.spec = spec
        self.forecast_head = head
        self._peft: list[nn.Module] = []  # PEFT tuner (not a submodule: it wraps backbone.encoder)

    @property
    def patch_len(self) -> int:
        return self.backbone.patch_len

    @property
    def gated_lora(self) -> GatedLoraSet | None:
        return GatedLoraSet.find(self.backbone.encoder)

    @property
    def peft_tuner(self) -> nn.Module | None:
        return self._peft[0] if self._peft else None

    @contextlib.contextmanager
    def inference(self) -> Iterator[TraceNetwork]:
        """The network in eval mode with its gated LoRA updates merged into the base
        weights (:meth:`GatedLoraSet.merged`): the same outputs, faster. Training state
        and weights are restored on exit."""
        was_training = self.training
        lora = self.gated_lora
        if was_training:  # switching modes walks every submodule: only when needed
            self.eval()
        try:
            with lora.merged() if lora is not None else contextlib.nullcontext():
                yield self
        finally:
            if was_training:
                self.train()

    def forecast_features(
        self, x: torch.Tensor, input_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inputs of the head's output layer with the RevIN statistics they are in:
        ``(features [B, C, n_in], mean, std)``. Glitches in the context are read as missing
        steps (:mod:`~trace_forecast.backbone.glitches`)."""
        head = self.forecast_head
        if head is None:
            raise RuntimeError("this network was built for reconstruction, not forecasting")
        return head.encode(self.backbone, without_glitches(x, input_mask, self.patch_len), input_mask)

    def forecast_normalized(
        self, x: torch.Tensor, input_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Forecast in RevIN space: ``(pred [B, C, H], mean, std)``."""
        features, mean, std = self.forecast_features(x, input_mask)
        return self.forecast_head.project(features), mean, std

    def forward(self, x: torch.Tensor, input_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Forecast ``[B, C, H]`` in the input's scale."""
        if input_mask is None:
            input_mask = torch.ones(x.shape[0], x.shape[-1], device=x.device, dtype=x.dtype)
        pred, mean, std = self.forecast_normalized(x, input_mask)
        return self.backbone.normalizer.denormalize(pred, mean, std)

    def forecast_loss(self, x: torch.Tensor, input_mask: torch.Tensor, y: torch.Tensor,
                      scale: torch.Tensor | None = None, weighting: str = "fit") -> torch.Tensor:
        """Forecast MSE in each window's RevIN space, its windows weighted by ``weighting``
        (:func:`~trace_forecast.losses.window_weights`) when ``scale`` (each window's series
        unit) is given. The target's glitches are not scored
        (:func:`~trace_forecast.backbone.glitches.target_without_glitches`)."""
        y = target_without_glitches(x, input_mask, y, self.patch_len)
        pred, mean, std = self.forecast_normalized(x, input_mask)
        return normalized_mse(pred, y, mean, std, scale=scale, weighting=weighting)

    def masked_reconstruction_loss(
        self,
        x: torch.Tensor,
        input_mask: torch.Tensor,
        ratio: float = 0.3,
        generator: torch.Generator | None = None,
        visible_weight: float = 0.0,
        scheme: tuple[str, int] | None = None,
    ) -> torch.Tensor:
        """MOMENT's pretraining loss on a fresh random patch mask (``visible_weight``: see
        :func:`trace_forecast.losses.masked_reconstruction_loss`). ``scheme`` = ``(name,
        n_masks)`` draws the mask from an anomaly score's family instead of hiding a
        random ``ratio`` of patches (:func:`scheme_patch_mask`)."""
        if scheme is None or scheme[0] == "none":
            mask = random_patch_mask(input_mask, self.patch_len, ratio, generator)
        else:
            mask = scheme_patch_mask(input_mask, self.patch_len, scheme[0], scheme[1], generator)
        return masked_reconstruction_loss(self.backbone, x, input_mask, mask, visible_weight=visible_weight)

    def reconstruct(self, x: torch.Tensor, input_mask: torch.Tensor) -> torch.Tensor:
        """Unmasked reconstruction ``[B, C, L]`` in the input's scale (anomaly scoring)."""
        return self.backbone.reconstruct(x, input_mask)


def _freeze(module: nn.Module, trainable: bool = False) -> None:
    for p in module.parameters():
        p.requires_grad_(trainable)


def build_network(backbone: MomentBackbone, spec: NetworkSpec, seed: int | None = None) -> TraceNetwork:
    """Copy ``backbone``, set which parts train, inject adapters and attach the head.

    ``seed`` makes the initialisation of new weights (LoRA ``A``, heads) reproducible
    without touching the global random state.
    """
    if seed is not None:
        # torch initialises new weights from its one global generator: hold it while seeding
        # and drawing, so that networks built at once in several threads do not interleave.
        with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_network(backbone, spec)
    backbone = copy.deepcopy(backbone)
    _freeze(backbone, trainable=spec.adapter == "full")
    config = backbone.config
    head: nn.Module | None = None
    if spec.task == "forecast":
        if spec.context_length % config.patch_len:
            raise ValueError(
                f"context_length {spec.context_length} must be a multiple of {config.patch_len}"
            )
        if spec.head == "reconstruction":
            head = ReconstructionForecastHead(
                backbone.head,
                spec.context_length,
                spec.horizon,
                temporal_map=spec.temporal_map,
                patch_len=config.patch_len,
                train_reconstruction_head=spec.adapter == "full",
                future_patches=spec.future_patches,
                sign_symmetric=spec.sign_symmetric,
            )
        else:
            head = LinearProbingHead(spec.context_length // config.patch_len, config.d_model, spec.horizon)
    elif spec.adapter != "full":
        # Masked reconstruction fine-tuning adapts the (tiny) reconstruction head too.
        _freeze(backbone.head, trainable=True)
    network = TraceNetwork(backbone, spec, head)
    if spec.adapter == "gated_dsic":
        GatedLoraSet.inject(backbone.encoder, spec.lora_targets, rank=spec.lora_rank)
    elif spec.adapter in ("lora", "adalora"):
        network._peft.append(
            inject_peft(backbone.encoder, spec.adapter, spec.lora_targets, spec.lora_rank, spec.total_steps)
        )
    return network
