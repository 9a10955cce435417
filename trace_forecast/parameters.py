"""Every user-facing parameter, defined once: name, default, type, valid range, docstring.

The four front ends (``TraceForecaster``, ``TraceAnomalyDetector``, the Darts
``TraceModel`` and ``TraceAnomalyScorer``) take their shared parameters from
:data:`PARAMETERS`: their signatures use :func:`default`, their numpydoc entries are
rendered by :func:`document`, and :func:`validate` checks the values they were given
(every registered name, unknown names ignored) with one rule per parameter before
anything expensive happens (no backbone is loaded to reject a bad
value). The one check that needs the backbone, ``context_length`` against its patch
length and context, is :func:`check_context_length`.

Darts spells some shared concepts its own way; :data:`DARTS_NAMES` maps them
(``score`` is ``scoring`` in Darts, whose scorers already have a ``score`` method).

Fractions and counts are never mixed: ``dsic_budget``, ``dsic_warmup``,
``dsic_final`` and ``validation_fraction`` are fractions (floats) only, and counts
(``max_windows``, ``dsic_interval``, ...) are integers only; an integer where a
fraction is expected is refused, because ``1`` and ``1.0`` would mean different things.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trace_forecast.errors import ParameterError

LORA_TARGETS = ("q", "k", "v", "o", "wi_0", "wi_1", "wo")
ADAPTERS = ("gated_dsic", "lora", "adalora", "full", "none")
HEADS = ("reconstruction", "linear")
TEMPORAL_MAPS = ("linear", "truncate", "pool", "dwconv")
HEAD_INITS = ("ridge", "default")
FIT_STRATEGIES = ("fine-tune", "zero-shot")
SMOOTHINGS = ("two-span", "multi-scale", "max")
DEVICES = ("auto", "cpu", "cuda", "gpu")
DSIC_RULES = ("taylor2", "magnitude", "random")
SCORES = ("block", "interleaved", "forecast", "unmasked")
THRESHOLDS = ("auto", "percentile", "contamination")


def options(choices: tuple[str, ...]) -> str:
    """The numpydoc type of a choice parameter: ``{"a", "b"}``."""
    return "{" + ", ".join(f'"{c}"' for c in choices) + "}"

# Darts' own names for shared concepts (TraceModel follows Darts' conventions).
DARTS_NAMES = {"context_length": "input_chunk_length", "max_epochs": "n_epochs", "score": "scoring"}

Rule = Callable[[str, Any], None]


# ---------------------------------------------------------------------- rules
def _fail(name: str, expected: str, value: Any) -> None:
    raise ParameterError(f"{name} must be {expected}, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def integer(low: int, high: int | None = None, optional: bool = False) -> Rule:
    """An integer in ``[low, high]`` (``None`` allowed when ``optional``)."""
    expected = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    expected += " or None" if optional else ""

    def rule(name: str, value: Any) -> None:
        if value is None and optional:
            return
        if not _is_int(value) or value < low or (high is not None and value > high):
            _fail(name, expected, value)

    return rule


def real(low: float, high: float | None = None, low_open: bool = False, high_open: bool = False) -> Rule:
    """A finite number in the interval, ends open or closed as given."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    expected = f"a number in {left}{low}, {'inf' if high is None else high}{right}"

    def rule(name: str, value: Any) -> None:
        if not _is_real(value):
            _fail(name, expected, value)
        v = float(value)
        if v < low or (low_open and v == low) or (high is not None and (v > high or (high_open and v == high))):
            _fail(name, expected, value)

    return rule


def fraction(low_open: bool, high_open: bool, integers_ambiguous: bool = True) -> Rule:
    """A fraction in ``[0, 1]`` with the ends open as given. Where an integer could be
    read as a count (``integers_ambiguous``), integers are refused."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    inner = real(0.0, 1.0, low_open, high_open)

    def rule(name: str, value: Any) -> None:
        if integers_ambiguous and _is_int(value):
            raise ParameterError(
                f"{name} is a fraction in {left}0, 1{right} and must be a float, got the integer {value!r}"
            )
        inner(name, value)

    return rule


def choice(options: tuple) -> Rule:
    def rule(name: str, value: Any) -> None:
        if not isinstance(value, str) or value.lower() not in options:
            _fail(name, f"one of {options}", value)

    return rule


def future_patches(name: str, value: Any) -> None:
    if value == "auto" or (_is_int(value) and 0 <= value <= 511):
        return
    _fail(name, '"auto" or an integer >= 0', value)


def boolean(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(name, "True or False", value)


def bool_or_auto(name: str, value: Any) -> None:
    if not (isinstance(value, bool) or value == "auto"):
        _fail(name, '"auto", True or False', value)


TRAINER_KEYS = ("accelerator", "devices", "strategy", "precision", "num_nodes")


def trainer_kwargs(name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        _fail(name, f"None or a dict with keys from {TRAINER_KEYS}", value)
    unknown = sorted(set(value) - set(TRAINER_KEYS))
    if unknown:
        raise ParameterError(
            f"{name} may set {TRAINER_KEYS} (how and where to train); got {unknown}: the recipe owns the "
            "other trainer settings (epochs, callbacks, clipping, logging)"
        )


def seed(name: str, value: Any) -> None:
    if value is not None and (not _is_int(value) or value < 0):
        _fail(name, "None or a non-negative integer", value)


CHECKPOINT_KINDS = "None (the embedded backbone), an embedded backbone's name, a folder path or a hub id"


def checkpoint(name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str | os.PathLike) or (isinstance(value, str) and not value.strip()):
        _fail(name, CHECKPOINT_KINDS, value)


def folder_or_none(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str | os.PathLike) or not str(value).strip()):
        _fail(name, "None or a folder path", value)


def checkpoint_every(name: str, value: Any) -> None:
    import datetime

    if _is_int(value) and value >= 1:
        return
    if isinstance(value, datetime.timedelta) and value.total_seconds() > 0:
        return
    _fail(name, "a number of training steps >= 1 or a positive datetime.timedelta", value)


def lora_targets(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, str) or not isinstance(value, Iterable):
        _fail(name, f"None or a list of names from {LORA_TARGETS}", value)
    items = list(value)
    unknown = [t for t in items if t not in LORA_TARGETS]
    if not items or unknown:
        _fail(name, f"None or a non-empty list of names from {LORA_TARGETS}", value)


def threshold(name: str, value: Any) -> None:
    if isinstance(value, str) and value in THRESHOLDS:
        return
    if not _is_real(value):
        _fail(name, "'auto', 'percentile', 'contamination' or a finite number", value)


# ---------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Parameter:
    """One user-facing parameter."""

    name: str
    default: Any
    type_doc: str
    doc: str
    rule: Rule

    def check(self, value: Any, name: str | None = None) -> None:
        self.rule(name or self.name, value)

    def numpydoc(self, name: str | None = None, indent: str = "    ") -> str:
        """``name : type, default=...`` and the indented description."""
        shown = f'"{self.default}"' if isinstance(self.default, str) else repr(self.default)
        head = f"{name or self.name} : {self.type_doc}, default={shown}"
        body = "\n".join(f"{indent}{line}" if line else "" for line in self.doc.strip().splitlines())
        return f"{head}\n{body}"


def _p(name: str, default: Any, type_doc: str, rule: Rule, doc: str) -> Parameter:
    return Parameter(name, default, type_doc, doc, rule)


_TABLE = [
    _p("backbone", None, "str, path or None", checkpoint,
       "Checkpoint in MOMENT layout: ``None`` for the embedded pretrained default (v3),\n"
       '``"trace-moment-tiny-v4"`` for the embedded v4 snapshot (opt-in), a local folder, or a\n'
       'hub id such as ``"AutonLab/MOMENT-1-large"``.'),
    _p("adapter", "gated_dsic", options(ADAPTERS), choice(ADAPTERS),
       "Fine-tuning mode: TRACE's gated LoRA with Gated DSIC, PEFT's LoRA or AdaLoRA, full\n"
       'fine-tuning, or a frozen backbone (with ``head="linear"``: linear probing; for\n'
       "anomaly detection: zero-shot)."),
    _p("head", "reconstruction", options(HEADS), choice(HEADS),
       "TRACE's reconstruction-based head or MOMENT's linear-probing head."),
    _p("lora_rank", 2, "int", integer(1, 256), "Rank of every LoRA module (1 to 256)."),
    _p("lora_targets", None, "list of str or None", lora_targets,
       "Encoder linear layers that get adapters, from ``q, k, v, o, wi_0, wi_1, wo``;\n"
       "``None`` means all of them in every block."),
    _p("dsic_budget", 0.5, "float", fraction(low_open=True, high_open=False),
       "Fraction in (0, 1] of the gated modules that Gated DSIC keeps at the end\n"
       "(rounded, at least one module)."),
    _p("dsic_interval", 10, "int", integer(1),
       "Optimiser steps between two Gated DSIC importance evaluations."),
    _p("dsic_draws", 8, "int", integer(1, 1024),
       "Monte-Carlo gate-mask draws per importance evaluation. The draws split one\n"
       "validation batch between them and share two batched forward/backward passes."),
    _p("dsic_rule", "taylor2", options(DSIC_RULES), choice(DSIC_RULES),
       'Importance rule of Gated DSIC: ``"taylor2"`` (expected loss increase if the module\n'
       'were removed, second order), ``"magnitude"`` (``|g dL/dg|``, first order) or\n'
       '``"random"`` (a random subset of the same size: a control for ablations).'),
    _p("dsic_warmup", 0.2, "float", fraction(low_open=False, high_open=True),
       "Fraction of training in [0, 1) before the first selection."),
    _p("dsic_final", 0.7, "float", fraction(low_open=True, high_open=False),
       "Fraction of training in (0, 1] at which the selection freezes (after ``dsic_warmup``)."),
    _p("temporal_map", "linear", options(TEMPORAL_MAPS), choice(TEMPORAL_MAPS),
       "Temporal map of the reconstruction head."),
    _p("future_patches", "auto", '"auto" or int', future_patches,
       "Hidden patches appended after the context for the backbone to predict; the\n"
       "reconstruction head's temporal map reads the recent history and this prediction\n"
       '(``0`` reads the reconstruction of the unmasked context). ``"auto"``: enough\n'
       "patches to cover the horizon, at most 24 and at most half the context's patches."),
    _p("fit_strategy", "fine-tune", options(FIT_STRATEGIES), choice(FIT_STRATEGIES),
       '``"fine-tune"`` adapts the backbone to the data (TRACE); ``"zero-shot"`` trains nothing:\n'
       "the head reads the pretrained backbone's own prediction of the hidden future patches\n"
       "(MOMENT's zero-shot route), averaged with its prediction for the negated series, negated\n"
       "back. ``fit`` only stores the data and measures interval residuals on its windows.\n"
       'Needs ``head="reconstruction"``.'),
    _p("head_init", "ridge", options(HEAD_INITS), choice(HEAD_INITS),
       '``"ridge"`` solves the head\'s output layer in closed form on frozen-backbone\n'
       "features before fine-tuning (linear probing then fine-tuning, LP-FT);\n"
       '``"default"`` starts from the layer\'s own initialisation.'),
    _p("context_length", 512, "int", integer(8, 4096),
       "History length fed to the backbone: a multiple of the backbone's patch length (8)\n"
       "and at most its context (512)."),
    _p("max_epochs", 1, "int", integer(1, 10_000),
       "Passes over the training windows (early stopping on validation loss may stop sooner)."),
    _p("max_windows", 1024, "int or None", integer(1, optional=True),
       "Training windows per epoch: a random, reproducible subset of all windows\n"
       "(``None`` uses every window; slow on a CPU for long series)."),
    _p("batch_size", 32, "int", integer(1, 65_536), "Windows per optimiser step."),
    _p("learning_rate", 1e-4, "float", real(0.0, 1.0, low_open=True),
       "Peak learning rate of the one-cycle AdamW schedule (small, because the head starts\n"
       "from its closed-form solution)."),
    _p("validation_fraction", 0.2, "float", fraction(low_open=False, high_open=True, integers_ambiguous=False),
       "Last fraction in [0, 1) of every series held out for validation (early stopping,\n"
       "Gated DSIC importance, interval residuals); 0 trains on everything."),
    _p("window_stride", 1, "int", integer(1), "Step between consecutive training windows."),
    _p("multitask", False, "bool", boolean,
       "TRACE's multi-task training: one set of adapters trained on the joint loss\n"
       "``forecast + reconstruction_weight * masked reconstruction`` (the reconstruction\n"
       "hides patches as the anomaly score does), so the one fitted model forecasts and\n"
       "scores anomalies as trained. A detector needs ``forecast_horizon`` for it."),
    _p("reconstruction_weight", 1.0, "float", real(0.0, 1e6),
       "``lambda`` of the multi-task loss ``forecast + lambda * masked reconstruction``\n"
       "(used when ``multitask=True``; both terms are MSEs in each window's RevIN units)."),
    _p("forecast_horizon", None, "int or None", integer(1, 720, optional=True),
       "Steps ahead the forecasting head of a ``multitask=True`` detector predicts\n"
       "(``to_forecaster`` then gives a forecaster for up to that many steps)."),
    _p("mask_ratio", 0.3, "float", real(0.0, 1.0, low_open=True, high_open=True),
       "Fraction in (0, 1) of patches hidden by the masked-reconstruction loss."),
    _p("update_epochs", 1, "int", integer(1, 10_000),
       "Epochs of further fine-tuning in ``update(..., update_params=True)``."),
    _p("stride", None, "int or None", integer(1, optional=True),
       "Step between scoring windows; ``None`` uses ``context_length // 8``."),
    _p("score", "block", options(SCORES), choice(SCORES),
       "Anomaly score of a time step: the error of reconstructions that hid it -- four\n"
       "complementary masks hiding contiguous quarters of each window (``\"block\"``) or every\n"
       "fourth patch (``\"interleaved\"``), a forecast of the window's last 16 patches\n"
       "(``\"forecast\"``), or the unmasked reconstruction (``\"unmasked\"``, MOMENT's)."),
    _p("smoothing", "two-span", options(SMOOTHINGS), choice(SMOOTHINGS),
       "How step errors become scores. ``\"two-span\"``: the largest of two smoothings, each in\n"
       "units of its training level -- a ``score_window / 16``-step maximum of the ``/ 64``-step\n"
       "average (a spike stays narrow) and a ``score_window``-step maximum of the ``/ 4``-step\n"
       "average (an event is seen over its extent). ``\"multi-scale\"``: moving averages over 1,\n"
       "``score_window / 16``, ``/ 4`` and ``score_window`` steps, the largest in units of each\n"
       "span's training level. ``\"max\"``: the long span of ``\"two-span\"`` alone, in raw units."),
    _p("discords", "auto", '"auto" or bool', bool_or_auto,
       "Join discords to the reconstruction score: each 128-step subsequence's distance to\n"
       "its nearest neighbour, in the pretrained backbone's embedding space (a learned matrix\n"
       "profile, ``\"discord\"``) and as a z-normalised shape against neighbours at every step\n"
       "(``\"shape discord\"``); the largest score counts, each in units of its training top.\n"
       "They find anomalies that reconstruct well (a missing or repeated cycle). ``\"auto\"``\n"
       "joins them where the training data repeats its shapes (a subsequence's nearest\n"
       "neighbour at least 2.5 times closer than a random one; ``discord_contrast_``), not on\n"
       "irregular series, where every subsequence is a discord of sorts."),
    _p("spikes", False, '"auto" or bool', bool_or_auto,
       "Join a point-spike component to the score: each step's height as a local peak or\n"
       "trough (the smaller of its two steps to its neighbours); a peak higher than any in the\n"
       "training data scores above every training score. It sees single-step spikes that\n"
       "reconstruction misses where the context predicts little (AR(1) noise, a random walk).\n"
       "``\"auto\"`` joins it on channels whose training first differences are close to Gaussian\n"
       "(excess kurtosis at most 1), not on bursty ones, whose normal spikes it would rank first.\n"
       "Off by default until the anomaly suite's threshold tables are re-measured with it\n"
       "(``docs/benchmarks_anomaly_notes.md``, \"Point spikes\")."),
    _p("score_window", 128, "int", integer(1, 1_000_000),
       "Longest smoothing span in steps (see ``smoothing``; 1 = raw errors)."),
    _p("threshold", "auto", options(THRESHOLDS) + " or float", threshold,
       "Labelling rule: ``\"auto\"`` fits a tail model (peaks over threshold) to the\n"
       "training scores and flags scores exceeded with probability ``risk`` per step;\n"
       "``\"percentile\"`` a percentile of the training scores; ``\"contamination\"`` the top\n"
       "``contamination`` share of the scored series; a number is a fixed score."),
    _p("risk", 1e-4, "float", real(0.0, 1.0, low_open=True, high_open=True),
       'Per-step probability in (0, 1) that normal data exceeds the ``threshold="auto"`` level.'),
    _p("percentile", 99.0, "float", real(0.0, 100.0, low_open=True, high_open=True),
       'Percentile in (0, 100) of training scores used by ``threshold="percentile"``.'),
    _p("contamination", 0.01, "float", real(0.0, 1.0, low_open=True, high_open=True),
       'Share in (0, 1) of points flagged by ``threshold="contamination"``.'),
    _p("device", "auto", options(DEVICES[:3]), choice(DEVICES),
       '``"auto"`` trains on CUDA (bf16 mixed precision) when available.'),
    _p("trainer_kwargs", None, "dict or None", trainer_kwargs,
       "Lightning ``Trainer`` settings for distributed or mixed-precision training, from\n"
       '``accelerator``, ``devices``, ``strategy``, ``precision`` and ``num_nodes`` (e.g.\n'
       '``{"accelerator": "gpu", "devices": 4, "strategy": "ddp"}``); they override ``device``.\n'
       "Gated DSIC all-reduces its importance, so every process keeps the same modules."),
    _p("checkpoint_dir", None, "str, path or None", folder_or_none,
       "Folder for a resumable checkpoint of the fine-tune (``None``: none is written). A\n"
       "``fit`` whose folder holds the checkpoint of the same fit (same data, parameters and\n"
       "seed) resumes from it and ends as the uninterrupted fit would, bit for bit on a CPU;\n"
       "another fit's checkpoint there is replaced, with a warning."),
    _p("checkpoint_every", 100, "int or datetime.timedelta", checkpoint_every,
       "How often the checkpoint is written: every this many training steps, or this\n"
       "wall-clock interval (with ``checkpoint_dir``)."),
    _p("random_state", None, "int or None", seed,
       "Seed of the new weights, the window subsets, the shuffling and Gated DSIC's draws."),
    _p("verbose", False, "bool", boolean, "Show Lightning's progress bar and summaries."),
]

PARAMETERS: dict[str, Parameter] = {p.name: p for p in _TABLE}

def registered_parameters(function: Callable) -> tuple[str, ...]:
    """The registered parameters that ``function``'s signature takes (Darts' spellings
    mapped back): a front end's signature is the one list of what it accepts."""
    spelled = {v: k for k, v in DARTS_NAMES.items()}
    names = (spelled.get(name, name) for name in inspect.signature(function).parameters)
    return tuple(name for name in names if name in PARAMETERS)


def default(name: str) -> Any:
    """The one default of parameter ``name``."""
    return PARAMETERS[name].default


def validate(values: Mapping[str, Any]) -> None:
    """Check every known parameter in ``values`` (Darts spellings too) and the rules
    between parameters; raise :class:`ParameterError` naming the first bad one."""
    spelled = {v: k for k, v in DARTS_NAMES.items()}
    for key, value in values.items():
        param = PARAMETERS.get(spelled.get(key, key))
        if param is not None:
            param.check(value, key)
    warmup, final = values.get("dsic_warmup"), values.get("dsic_final")
    if warmup is not None and final is not None and final <= warmup:
        raise ParameterError(f"dsic_final ({final}) must come after dsic_warmup ({warmup})")


def check_context_length(context_length: int, patch_len: int, max_context: int, name: str = "context_length") -> None:
    """The one rule that needs the backbone: a positive multiple of its patch length, at
    most its context."""
    if not _is_int(context_length) or context_length <= 0 or context_length % patch_len or context_length > max_context:
        raise ParameterError(
            f"{name} must be a positive multiple of the backbone's patch length {patch_len} and at most its "
            f"context {max_context}, got {context_length!r}"
        )


_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)\{parameter:(?P<name>\w+)(?: as (?P<alias>\w+))?\}[ \t]*$", re.M)


def document(obj):
    """Replace ``{parameter:NAME}`` (or ``{parameter:NAME as ALIAS}``) lines of ``obj``'s
    docstring by the numpydoc entry from :data:`PARAMETERS` (a class or function decorator)."""

    def render(match: re.Match) -> str:
        indent = match["indent"]
        entry = PARAMETERS[match["name"]].numpydoc(match["alias"])
        return "\n".join(indent + line if line else "" for line in entry.splitlines())

    if obj.__doc__:
        obj.__doc__ = _PLACEHOLDER.sub(render, obj.__doc__)
    return obj
