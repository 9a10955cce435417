"""What every front end sets up before a fit, written once: the pretrained backbone,
checked against the context it will read, and the network spec built from the registered
parameters (:mod:`trace_forecast.parameters`; a missing one takes its default)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from trace_forecast.adapters import resolve_targets
from trace_forecast.backbone import MomentBackbone, shared_backbone
from trace_forecast.heads import reconstruction, resolve_future_patches
from trace_forecast.parameters import check_context_length, default
from trace_forecast.spec import NetworkSpec

if TYPE_CHECKING:  # the engine (Lightning) loads when a fit starts
    from trace_forecast.engine import TrainSettings
    from trace_forecast.engine.trainer import FitResult


def backbone_for(checkpoint, context_length: int, name: str = "context_length") -> MomentBackbone:
    """The (cached) pretrained backbone of ``checkpoint``, after checking that ``context_length``
    (spelled ``name`` in the caller's API) is a multiple of its patch length within its context."""
    backbone = shared_backbone(checkpoint)
    check_context_length(context_length, backbone.patch_len, backbone.config.seq_len, name)
    return backbone


def network_spec(task: str, patch_len: int, horizon: int = 0, *, context_length: int, **params: Any) -> NetworkSpec:
    """The :class:`NetworkSpec` of a fit: ``task`` ("forecast" or "reconstruction"), and the
    parameters ``context_length``, ``adapter``, ``head``, ``lora_rank``, ``lora_targets``,
    ``temporal_map`` and ``future_patches`` as the user gave them (others are ignored: a
    front end may pass all of its parameters)."""
    value = lambda name: params.get(name, default(name))  # noqa: E731
    spec = dict(task=task, context_length=context_length, adapter=value("adapter"), lora_rank=value("lora_rank"),
                lora_targets=resolve_targets(value("lora_targets")))
    if task == "forecast":
        spec.update(horizon=horizon, head=value("head"), temporal_map=value("temporal_map"),
                    future_patches=resolve_future_patches(value("future_patches"), horizon, context_length,
                                                          patch_len))
        spec["sign_symmetric"] = reconstruction.SIGN_SYMMETRIC_FINE_TUNE and spec["head"] == "reconstruction"
    return NetworkSpec(**spec)


def train_settings(params: Mapping[str, Any], **overrides: Any) -> TrainSettings:
    """``TrainSettings`` from a front end's parameters (``vars(estimator)``; ``overrides`` win);
    with ``multitask=True`` the forecast loss gets its reconstruction term."""
    from trace_forecast.engine import DSICSettings, TrainSettings
    from trace_forecast.tasks.scoring import JOINT_MASKS

    fields = dict(
        max_epochs=params["max_epochs"],
        batch_size=params["batch_size"],
        learning_rate=params["learning_rate"],
        device=params["device"],
        random_state=params["random_state"],
        verbose=params["verbose"],
        trainer_kwargs=dict(params["trainer_kwargs"] or {}),
        dsic=DSICSettings.from_params(params),
        checkpoint_dir=None if params.get("checkpoint_dir") is None else str(params["checkpoint_dir"]),
        checkpoint_every=params.get("checkpoint_every", default("checkpoint_every")),
    )
    if params.get("multitask", False):
        fields.update(reconstruction_weight=params["reconstruction_weight"], mask_scheme=JOINT_MASKS)
    else:
        fields.update(reconstruction_weight=0.0)
    fields.update(overrides)
    return TrainSettings(**fields)


def fitted_attributes(result: FitResult) -> dict[str, Any]:
    """The fitted attributes a training run leaves on an estimator: ``network_``,
    ``trainable_parameters_`` (and each count as ``<key>_``), ``selected_modules_`` (one row
    per gated module), ``selection_history_``, ``train_loss_``, ``val_loss_``,
    ``fit_seconds_`` and ``fit_choices_`` (the head start's penalty and blend, and which state
    validation kept)."""
    from trace_forecast.selection import history_frame

    start = result.head_start
    attributes = {
        "network_": result.network,
        "trainable_parameters_": dict(result.parameters),
        **{f"{key}_": value for key, value in result.parameters.items()},
        "selected_modules_": pd.DataFrame(result.selection, columns=["module", "kept", "importance", "gate"]),
        "selection_history_": history_frame(result.selection_history, result.module_names),
        "train_loss_": list(result.train_loss),
        "val_loss_": list(result.val_loss),
        "fit_seconds_": result.fit_seconds,
        "fit_choices_": {"head_start": None if start is None else dataclasses.asdict(start), "kept": result.kept},
    }
    return attributes
