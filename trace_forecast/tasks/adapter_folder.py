"""Adapters as files: a folder with a JSON config and ``safetensors`` tensors.

The PEFT ecosystem shares fine-tunes as an adapter folder that loads onto the base model it
names. :func:`save_adapter_folder` writes what a fit changed -- adapter tensors, gates (the
Gated DSIC masks), the forecasting head and the calibration residuals -- and
:func:`read_adapter_folder` reads it back onto the same backbone. Both sktime estimators and
the Darts model use this one format, so a folder saved by one loads into the others.

Nothing in a folder is executed: the config is JSON and the tensors are ``safetensors``
(no pickle). Loading refuses, before anything changes, a folder whose bytes do not match the
checksums its config records (a flipped byte, a truncated file), a format newer than this
package reads, a backbone whose weights differ from those the adapters were trained on
(content hash), and tensors that do not fit the network the config describes.

The format is our own rather than PEFT's ``adapter_config.json``: PEFT's config describes
PEFT tuners, and TRACE's gated LoRA, its gates and the reconstruction head are not one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from trace_forecast.errors import AdapterFileError
from trace_forecast.spec import NetworkSpec

if TYPE_CHECKING:
    from trace_forecast.backbone import MomentBackbone
    from trace_forecast.network import TraceNetwork
    from trace_forecast.tasks.calibration import ResidualPool

FORMAT = "trace_forecast.adapters"
FORMAT_VERSION = 1
CONFIG_NAME = "adapter_config.json"
TENSORS_NAME = "adapter_model.safetensors"
CALIBRATION_PREFIX = "calibration."
KINDS = ("forecaster", "detector", "darts")


_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def backbone_fingerprint(backbone: MomentBackbone) -> str:
    """SHA-256 of the backbone's weights (names, dtypes, shapes and bytes, in name order),
    computed once per loaded (read-only, shared) backbone: what "the same backbone" means,
    wherever it was loaded from (hub id, local folder, embedded)."""
    cached = _FINGERPRINTS.get(backbone)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    for name, tensor in sorted(backbone.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    _FINGERPRINTS[backbone] = digest.hexdigest()
    return _FINGERPRINTS[backbone]


@dataclass
class AdapterFolder:
    """A read and verified adapter folder, its network rebuilt on the backbone."""

    network: TraceNetwork
    kind: str
    params: dict[str, Any]
    report: dict[str, Any]
    residuals: ResidualPool | None
    config: dict[str, Any]

    def params_for(self, cls: type) -> dict[str, Any]:
        """The saved parameters that ``cls`` takes, by name, and the backbone they were
        trained on (a front end's starting point for rebuilding the estimator)."""
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
        return {**{k: v for k, v in self.params.items() if k in accepted},
                "backbone": self.config["backbone"]["source"]}

    def fitted_state(self) -> dict[str, Any]:
        """The fitted attributes an estimator adopts (``estimators._common.adopt_fit``)."""
        report = self.report
        parameters = {k: int(v) for k, v in report["trainable_parameters"].items()}
        return {
            "network_": self.network,
            "trainable_parameters_": parameters,
            **{f"{k}_": v for k, v in parameters.items()},
            "selected_modules_": _frame(report["selected_modules"]),
            "selection_history_": _frame(report["selection_history"]),
            "train_loss_": list(report["train_loss"]),
            "val_loss_": list(report["val_loss"]),
            "fit_seconds_": None if report["fit_seconds"] is None else float(report["fit_seconds"]),
            "fit_choices_": report["fit_choices"],
            "residuals": None if self.residuals is None else self.residuals.copy(),
        }


# ---------------------------------------------------------------------------- writing
def save_adapter_folder(folder: str | Path, network: TraceNetwork, backbone_source: Any, kind: str,
                        params: dict[str, Any], report: dict[str, Any] | None = None,
                        residuals: ResidualPool | None = None) -> Path:
    """Write ``network``'s adapted tensors (and ``residuals``) to ``folder`` with a JSON
    config naming the backbone, the spec, the estimator ``kind`` and its ``params``.

    Each file is written to a temporary name and renamed, tensors first: a kill during a
    save leaves either the previous folder or one whose checksums refuse it.
    """
    from safetensors.torch import save as save_bytes

    from trace_forecast.backbone import shared_backbone
    from trace_forecast.version import __version__

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors, trainable = adapted_tensors(network)
    if residuals is not None:
        tensors[CALIBRATION_PREFIX + "residuals"] = torch.from_numpy(np.ascontiguousarray(residuals.residuals))
        tensors[CALIBRATION_PREFIX + "series"] = torch.from_numpy(np.ascontiguousarray(residuals.series))
    payload = save_bytes(tensors)
    source = None if backbone_source is None else str(backbone_source)
    backbone = shared_backbone(source)
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "kind": kind,
        "backbone": {"source": source, "sha256": backbone_fingerprint(backbone),
                     "version": (backbone.config.extra.get("trace_forecast") or {}).get("version")},
        "spec": _spec_json(network.spec),
        "trainable": trainable,
        "params": _json_params(params),
        "report": _jsonable(report or {}),
        "tensors": {"file": TENSORS_NAME, "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()},
    }
    config = {**body, "checksum": _checksum(body)}
    _atomic_write(folder / TENSORS_NAME, payload)
    _atomic_write(folder / CONFIG_NAME, json.dumps(config, indent=1).encode())
    return folder


def adapted_tensors(network: TraceNetwork) -> tuple[dict[str, torch.Tensor], list[str]]:
    """What a fit changed in ``network`` (see :func:`trace_forecast.tasks.persistence.adapted_state`):
    its tensors by name, contiguous on the CPU, and the names of the trainable ones."""
    from trace_forecast.tasks.persistence import adapted_state

    state = adapted_state(network, None)
    return {k: v.contiguous() for k, v in state["tensors"].items()}, list(state["trainable"])


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- reading
def read_adapter_folder(folder: str | Path, backbone: Any = "as saved") -> AdapterFolder:
    """Read and verify ``folder``, and rebuild its network on the backbone it names
    (``backbone``: another source of the same weights, e.g. a local copy of a hub id).

    Raises :class:`~trace_forecast.errors.AdapterFileError` for a missing or damaged file,
    a newer format, a different backbone or a tensor that does not fit; nothing outside
    the returned object is changed.
    """
    folder = Path(folder)
    try:
        return _read(folder, backbone)
    except (KeyError, TypeError, AttributeError) as error:  # a config that passed its checksum but not its schema
        raise AdapterFileError(f"{folder / CONFIG_NAME} is malformed: {type(error).__name__} {error}") from None


def _read(folder: Path, backbone: Any) -> AdapterFolder:
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    from trace_forecast.backbone import shared_backbone
    from trace_forecast.network import build_network
    from trace_forecast.tasks.calibration import ResidualPool

    config = read_config(folder)
    payload = _read_tensor_bytes(folder, config["tensors"])
    try:
        tensors = load_bytes(payload)
    except SafetensorError as error:  # pragma: no cover - the checksum catches damage first
        raise AdapterFileError(f"{folder / TENSORS_NAME} is not a valid safetensors file: {error}") from None
    source = config["backbone"]["source"] if backbone == "as saved" else backbone
    base = shared_backbone(source)
    found = backbone_fingerprint(base)
    if found != config["backbone"]["sha256"]:
        raise AdapterFileError(
            f"{folder} was trained on a different backbone: its weights hash to {config['backbone']['sha256'][:12]}... "
            f"({config['backbone']['source'] or 'the embedded backbone'}), {source or 'the embedded backbone'} hashes "
            f"to {found[:12]}...; load it with the backbone it names"
        )
    try:
        spec = NetworkSpec(**{**config["spec"], "lora_targets": tuple(config["spec"]["lora_targets"])})
    except (TypeError, ValueError) as error:
        raise AdapterFileError(f"{folder / CONFIG_NAME}: its spec does not describe a network: {error}") from None
    network = build_network(base, spec)
    own = network.state_dict()
    calibration = {k[len(CALIBRATION_PREFIX):]: v for k, v in tensors.items() if k.startswith(CALIBRATION_PREFIX)}
    weights = {k: v for k, v in tensors.items() if not k.startswith(CALIBRATION_PREFIX)}
    unknown = sorted(set(weights) - set(own))
    wrong = sorted(k for k in set(weights) & set(own) if tuple(weights[k].shape) != tuple(own[k].shape))
    missing = sorted(set(config["trainable"]) - set(weights))
    if unknown or wrong or missing:
        detail = "; ".join(f"{what}: {names[:3]}" for what, names in
                           (("unknown tensors", unknown), ("missing tensors", missing),
                            ("wrong shape", [f"{k} {tuple(weights[k].shape)} != {tuple(own[k].shape)}" for k in wrong]))
                           if names)
        raise AdapterFileError(f"{folder}: the tensors do not fit the network its config describes ({detail})")
    network.load_state_dict(weights, strict=False)
    trainable = set(config["trainable"])
    for name, parameter in network.named_parameters():
        parameter.requires_grad_(name in trainable)
    residuals = None
    if calibration:
        residuals = ResidualPool(calibration["residuals"].numpy().copy(), calibration["series"].numpy().copy())
    return AdapterFolder(network.eval(), config["kind"], config["params"], config["report"], residuals, config)


def read_config(folder: Path) -> dict[str, Any]:
    """``folder``'s config, checked: present, JSON, its checksum, a format this package reads."""
    path = folder / CONFIG_NAME
    if not folder.is_dir():
        raise AdapterFileError(f"adapter folder not found: {folder}")
    if not path.is_file():
        raise AdapterFileError(f"{folder} is not an adapter folder: {CONFIG_NAME} is missing")
    try:
        config = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AdapterFileError(f"{path} is damaged: not valid JSON ({error})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise AdapterFileError(f"{path} is not a trace_forecast adapter config (format {FORMAT!r})")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise AdapterFileError(
            f"{path} has format version {version!r}, written by trace_forecast {config.get('package_version')}; "
            f"this version ({_package_version()}) reads versions up to {FORMAT_VERSION}: upgrade trace_forecast"
        )
    body = {k: v for k, v in config.items() if k != "checksum"}
    if config.get("checksum") != _checksum(body):
        raise AdapterFileError(f"{path} is damaged: its content does not match its checksum")
    if config.get("kind") not in KINDS:
        raise AdapterFileError(f"{path}: unknown estimator kind {config.get('kind')!r}")
    return config


def _read_tensor_bytes(folder: Path, record: dict[str, Any]) -> bytes:
    path = folder / TENSORS_NAME
    if not path.is_file():
        raise AdapterFileError(f"{folder} is incomplete: {TENSORS_NAME} is missing")
    payload = path.read_bytes()
    if len(payload) != record["bytes"]:
        raise AdapterFileError(f"{path} is truncated or damaged: {len(payload):,} bytes, its config records "
                               f"{record['bytes']:,}")
    if hashlib.sha256(payload).hexdigest() != record["sha256"]:
        raise AdapterFileError(f"{path} is damaged: its bytes do not match the checksum in {CONFIG_NAME}")
    return payload


def _package_version() -> str:
    from trace_forecast.version import __version__

    return __version__


# ---------------------------------------------------------------------------- JSON
def fit_report(est) -> dict[str, Any]:
    """The fitted attributes of a training run (``estimators._common.FITTED_ATTRIBUTES``
    but the network), in JSON form."""
    return {
        "trainable_parameters": dict(est.trainable_parameters_),
        "selected_modules": frame_json(est.selected_modules_),
        "selection_history": frame_json(est.selection_history_),
        "train_loss": list(est.train_loss_),
        "val_loss": list(est.val_loss_),
        "fit_seconds": float(est.fit_seconds_),
        "fit_choices": est.fit_choices_,
    }


def frame_json(frame: pd.DataFrame) -> dict[str, Any]:
    """A report frame (selected modules, selection history) as JSON: columns and rows."""
    return {"columns": list(frame.columns), "rows": frame.to_numpy().tolist()}


def _frame(data: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(data["rows"], columns=data["columns"])


def _spec_json(spec: NetworkSpec) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(spec).items()}


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters that JSON can hold (a ``trainer_kwargs`` callback, say, is left out)."""
    out = {}
    for name, value in params.items():
        try:
            out[name] = _jsonable(value)
        except TypeError:
            continue
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"not JSON: {type(value).__name__}")


def _checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
