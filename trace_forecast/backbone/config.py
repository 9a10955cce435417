"""MOMENT checkpoint configuration: parse, validate and write ``config.json``.

The fields and their defaults follow the public MOMENT code (``momentfm``), so a
``config.json`` written by MOMENT loads here and one written here loads in MOMENT.
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trace_forecast.errors import CheckpointError

REQUIRED_FIELDS = ("d_model", "seq_len", "patch_len", "t5_config")
REQUIRED_T5_FIELDS = ("d_model", "d_kv", "d_ff", "num_layers", "num_heads")

# Fields that real MOMENT configs carry and that we keep (round-trip) without using.
KNOWN_PASSTHROUGH_FIELDS = frozenset(
    {
        "task_name",
        "model_name",
        "device",
        "transformer_backbone",
        "model_kwargs",
        "orth_gain",
        "freeze_embedder",
        "freeze_encoder",
        "freeze_head",
        "enable_gradient_checkpointing",
        "randomly_initialize_backbone",
        "debug",
        "head_dropout",
        "forecast_horizon",
        "n_channels",
        "num_class",
        "reduction",
        "seed",
        "trace_forecast",
    }
)


@dataclass
class MomentConfig:
    """Architecture of a MOMENT-style backbone.

    Parameters
    ----------
    d_model : int
        Width of the tokens (must equal ``t5_config["d_model"]``).
    t5_config : dict
        Keyword arguments of ``transformers.T5Config`` for the encoder.
    seq_len : int
        Context length in time steps (512 for MOMENT).
    patch_len, patch_stride_len : int
        Patch length and stride (8 and 8 for MOMENT).
    """

    d_model: int
    t5_config: dict[str, Any]
    seq_len: int = 512
    patch_len: int = 8
    patch_stride_len: int = 8
    transformer_type: str = "encoder_only"
    add_positional_embedding: bool = True
    value_embedding_bias: bool = False
    revin_affine: bool = False
    dropout: float = 0.1
    mask_ratio: float = 0.3
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.patch_stride_len != self.patch_len:
            raise CheckpointError(
                f"patch_stride_len ({self.patch_stride_len}) must equal patch_len "
                f"({self.patch_len}); overlapping patches are not supported."
            )
        if self.seq_len % self.patch_len:
            raise CheckpointError(
                f"seq_len ({self.seq_len}) must be a multiple of patch_len "
                f"({self.patch_len})."
            )
        if self.transformer_type != "encoder_only":
            raise CheckpointError(
                f"transformer_type {self.transformer_type!r} is not supported; "
                "only 'encoder_only' MOMENT checkpoints can be loaded."
            )
        if self.revin_affine:
            raise CheckpointError("revin_affine=True is not supported (MOMENT uses False).")
        missing = [k for k in REQUIRED_T5_FIELDS if k not in self.t5_config]
        if missing:
            raise CheckpointError(f"t5_config is missing required fields: {missing}")
        if int(self.t5_config["d_model"]) != int(self.d_model):
            raise CheckpointError(
                f"d_model ({self.d_model}) differs from t5_config['d_model'] "
                f"({self.t5_config['d_model']})."
            )

    @property
    def n_patches(self) -> int:
        """Number of tokens in a full context."""
        return self.seq_len // self.patch_len

    @property
    def n_layers(self) -> int:
        """Number of encoder blocks."""
        return int(self.t5_config["num_layers"])

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> MomentConfig:
        """Build from a ``config.json`` dictionary, with specific errors and warnings."""
        if not isinstance(raw, dict):
            raise CheckpointError(f"{source}: expected a JSON object, got {type(raw).__name__}.")
        missing = [k for k in REQUIRED_FIELDS if k not in raw or raw[k] is None]
        if missing:
            raise CheckpointError(f"{source} is missing required fields: {missing}")
        names = {f for f in cls.__dataclass_fields__ if f != "extra"}
        unknown = sorted(set(raw) - names - KNOWN_PASSTHROUGH_FIELDS)
        if unknown:
            warnings.warn(f"{source}: ignoring unknown fields {unknown}", stacklevel=2)
        kwargs = {k: copy.deepcopy(v) for k, v in raw.items() if k in names}
        kwargs.setdefault("patch_stride_len", raw["patch_len"])
        extra = {k: copy.deepcopy(v) for k, v in raw.items() if k not in names}
        return cls(**kwargs, extra=extra)

    @classmethod
    def from_json(cls, path: str | Path) -> MomentConfig:
        """Read a ``config.json`` file."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise CheckpointError(f"{path} is not valid JSON: {err}") from err
        return cls.from_dict(raw, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` content, in MOMENT's layout."""
        out: dict[str, Any] = {
            "task_name": "reconstruction",
            "model_name": "MOMENT",
            "transformer_backbone": "google/flan-t5-small",
            "randomly_initialize_backbone": False,
            "model_kwargs": {},
        }
        out.update(copy.deepcopy(self.extra))
        for name in self.__dataclass_fields__:
            if name != "extra":
                out[name] = copy.deepcopy(getattr(self, name))
        return out

    def to_json(self, path: str | Path) -> None:
        """Write ``config.json``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))


def t5_config_dict(
    d_model: int, n_layers: int, d_ff: int, n_heads: int, d_kv: int = 64, vocab_size: int = 32128
) -> dict[str, Any]:
    """A ``t5_config`` like MOMENT's (flan-T5 style: gated-GELU, 32 relative buckets)."""
    return {
        "d_model": d_model,
        "d_kv": d_kv,
        "d_ff": d_ff,
        "num_layers": n_layers,
        "num_decoder_layers": n_layers,
        "num_heads": n_heads,
        "dense_act_fn": "gelu_new",
        "feed_forward_proj": "gated-gelu",
        "is_gated_act": True,
        "dropout_rate": 0.1,
        "layer_norm_epsilon": 1e-6,
        "relative_attention_num_buckets": 32,
        "relative_attention_max_distance": 128,
        "initializer_factor": 1.0,
        "model_type": "t5",
        "vocab_size": vocab_size,
        "n_positions": 512,
    }


# Public MOMENT sizes (from the AutonLab model cards / configs).
MOMENT_SIZES: dict[str, dict[str, int]] = {
    "small": dict(d_model=512, n_layers=8, d_ff=1024, n_heads=6),
    "base": dict(d_model=768, n_layers=12, d_ff=2048, n_heads=12),
    "large": dict(d_model=1024, n_layers=24, d_ff=2816, n_heads=16),
}


def moment_config(size: str) -> MomentConfig:
    """The architecture of a public MOMENT checkpoint, without its weights."""
    try:
        dims = MOMENT_SIZES[size]
    except KeyError:
        raise ValueError(f"size must be one of {sorted(MOMENT_SIZES)}, got {size!r}") from None
    return MomentConfig(d_model=dims["d_model"], t5_config=t5_config_dict(**dims))
