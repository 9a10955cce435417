"""Score variants for the anomaly suite, computed from one fit's cached arrays
(``benchmarks.anomaly_suite`` stage 1): smoothing, normalisation, embedding discords
and their combinations. Every variant goes through the package's own functions
(:mod:`trace_forecast.tasks.scoring`, :mod:`trace_forecast.tasks.discord`)."""

from __future__ import annotations

import numpy as np

from trace_forecast.parameters import default
from trace_forecast.tasks.anomaly import ScoreSettings, StepScores, calibrate_errors
from trace_forecast.tasks.discord import UNIT_FLOOR, WEIGHT
from trace_forecast.tasks.scoring import (
    ErrorScale,
    moving_average,
    smooth_errors,
    tail_level,
    tail_threshold,
)
from trace_forecast.tasks.shape_discord import SHAPE_WEIGHT

CONTEXT = 512
SCALES = (1, 8, 32, 128)
TAIL_Q = 0.99


def robust_z(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    center = np.median(reference)
    spread = 1.4826 * np.median(np.abs(reference - center))
    return (values - center) / max(spread, 1e-9 * max(abs(center), 1e-12), 1e-12)


def tail_calibrated(values: np.ndarray, train: np.ndarray, q: float = TAIL_Q) -> np.ndarray:
    """``values`` in units of the training scores' ``q`` quantile above their median
    (:func:`tail_level`: scores of different spread and tail compare at the level
    thresholds live at)."""
    center, unit = tail_level(np.asarray(train)[:, None], quantile=q)
    return (values - center[0]) / unit[0]


PACKAGE_VARIANTS = {  # name: (smoothing, discords, discord weight, discord unit floor, shape-discord weight)
    "package default": ("two-span", "auto", WEIGHT, UNIT_FLOOR, SHAPE_WEIGHT),
    "package, no shape discords": ("two-span", "auto", WEIGHT, UNIT_FLOOR, 0.0),
    "package, shape weight 5": ("two-span", "auto", WEIGHT, UNIT_FLOOR, 5.0),
    "package, shape weight 10": ("two-span", "auto", WEIGHT, UNIT_FLOOR, 10.0),
    "package, shape weight 20": ("two-span", "auto", WEIGHT, UNIT_FLOOR, 20.0),
    "package, shape weight 30": ("two-span", "auto", WEIGHT, UNIT_FLOOR, 30.0),
    "package, discords=True": ("two-span", True, WEIGHT, UNIT_FLOOR, SHAPE_WEIGHT),
    "package, discords=True, no shape discords (the previous default)": ("two-span", True, WEIGHT, UNIT_FLOOR, 0.0),
    "package, discords=False": ("two-span", False, WEIGHT, UNIT_FLOOR, 0.0),
    'package, smoothing="multi-scale"': ("multi-scale", "auto", WEIGHT, UNIT_FLOOR, SHAPE_WEIGHT),
    'package, smoothing="multi-scale", discord weight 1, floor 0.25, discords=True, no shape discords':
        ("multi-scale", True, 1.0, 0.25, 0.0),
    'package, smoothing="max"': ("max", "auto", WEIGHT, UNIT_FLOOR, SHAPE_WEIGHT),
    'package, smoothing="max", discords=False (the old default)': ("max", False, WEIGHT, UNIT_FLOOR, 0.0),
}


VARIANTS = (*PACKAGE_VARIANTS, "default", "no smoothing", "max 8 of mean 2", "multi-scale", "multi-scale (q99)", "default | raw (q99)",
            "discord", "default + discord (q99)", "multi-scale + discord (q99)", "default + discord (sum)",
            "multi-scale + discord (sum)", "default | raw + discord (sum)", "default + discord (q999)",
            "default + discord (max)", "multi-scale + discord (max)", "default | raw + discord (max)",
            "default + discord (max, floor 0.1)", "default + discord (max, floor 0.25)")


def package_steps(train: np.ndarray, arrays: dict, discord: dict, smoothing: str, discords: bool | str,
                  weight: float = WEIGHT, floor: float = UNIT_FLOOR, shape_weight: float = SHAPE_WEIGHT
                  ) -> tuple[StepScores, np.ndarray]:
    """The detector's scored steps and its training scores, from the training values
    (``discords="auto"`` reads their contrast), the cached errors and discord distances
    (``discord["shape"]``: the shape discord's),
    through the package's calibration (:func:`calibrate_errors`) and scoring
    (:meth:`ScoreSettings.from_errors`)."""
    scoring = ScoreSettings("block", CONTEXT // 8, default("score_window"), discords=discords, smoothing=smoothing,
                            discord_weight=weight, discord_floor=floor, shape_weight=shape_weight)
    train_d, shape = [discord["train_distances"][:, None]], discord["shape"]
    cal = calibrate_errors([arrays["train_errors"][:, None]], [train[:, None]], CONTEXT, scoring,
                           discord_distances=train_d, references=[(np.zeros((0, 1)), np.zeros(0, np.int64))],
                           shape_distances=[shape["train_distances"][:, None]])
    steps = scoring.from_errors(cal, arrays["errors"][:, None], discord["distances"][:, None],
                                shape_distances=shape["distances"][:, None])
    return steps, cal.train_scores


def package_scores(train: np.ndarray, arrays: dict, discord: dict, smoothing: str, discords: bool | str,
                   weight: float = WEIGHT, floor: float = UNIT_FLOOR, shape_weight: float = SHAPE_WEIGHT
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The detector's own score and its training scores (:func:`package_steps`)."""
    steps, train_scores = package_steps(train, arrays, discord, smoothing, discords, weight, floor, shape_weight)
    return steps.scores(), train_scores


def auto_threshold_steps(series: dict, arrays: dict, discord: dict, discords: bool | str
                         ) -> tuple[StepScores, float]:
    """The scored steps (default smoothing) and the default ``threshold="auto"``: the
    detector's ``predict`` flags ``steps.flags(threshold)``."""
    steps, train = package_steps(training_values(series), arrays, discord, default("smoothing"), discords)
    return steps, tail_threshold(train, default("risk"))


def training_values(series: dict) -> np.ndarray:
    """What the detector is fitted on: the series' prefix."""
    return series["values"][: series["train_end"]]


def trace_variants(series: dict, arrays: dict, discord: dict) -> dict[str, np.ndarray]:
    train = training_values(series)
    out = {name: package_scores(train, arrays, discord, *how)[0] for name, how in PACKAGE_VARIANTS.items()}
    e, e_train = arrays["errors"][:, None], arrays["train_errors"][:, None]
    scale = ErrorScale.fit([e_train], CONTEXT)
    z, z_train = scale.standardise(e)[:, 0], scale.standardise(e_train)[:, 0]
    default_, default_train = smooth_errors(z[:, None], 128)[:, 0], smooth_errors(z_train[:, None], 128)[:, 0]
    out.update({
        "default": default_,
        "no smoothing": z,
        "max 8 of mean 2": smooth_errors(z[:, None], 8)[:, 0],
        "multi-scale": np.max([robust_z(moving_average(z, s), moving_average(z_train, s)) for s in SCALES], axis=0),
    })
    multi = np.max([tail_calibrated(moving_average(z, s), moving_average(z_train, s)) for s in SCALES], axis=0)
    multi_train = np.max([tail_calibrated(moving_average(z_train, s), moving_average(z_train, s)) for s in SCALES],
                         axis=0)
    out["multi-scale (q99)"] = multi
    out["default | raw (q99)"] = np.maximum(tail_calibrated(default_, default_train), tail_calibrated(z, z_train))
    d = tail_calibrated(discord["distances"], discord["train_distances"])
    out["discord"] = d
    out["default + discord (q99)"] = np.maximum(tail_calibrated(default_, default_train), d)
    out["multi-scale + discord (q99)"] = np.maximum(tail_calibrated(multi, multi_train), d)
    out["default + discord (sum)"] = tail_calibrated(default_, default_train) + d
    out["multi-scale + discord (sum)"] = tail_calibrated(multi, multi_train) + d
    point = np.maximum(tail_calibrated(default_, default_train), tail_calibrated(z, z_train))
    point_train = np.maximum(tail_calibrated(default_train, default_train), tail_calibrated(z_train, z_train))
    out["default | raw + discord (sum)"] = tail_calibrated(point, point_train) + d
    dd, dt = discord["distances"], discord["train_distances"]
    out["default + discord (q999)"] = np.maximum(tail_calibrated(default_, default_train, 0.999),
                                                 tail_calibrated(dd, dt, 0.999))
    out["default + discord (max)"] = np.maximum(tail_calibrated(default_, default_train, 1.0),
                                                tail_calibrated(dd, dt, 1.0))
    out["multi-scale + discord (max)"] = np.maximum(tail_calibrated(multi, multi_train, 1.0),
                                                    tail_calibrated(dd, dt, 1.0))
    for floor in (0.1, 0.25):
        c = np.median(dt)
        unit = max(dt.max() - c, floor * c, 1e-12)
        out[f"default + discord (max, floor {floor})"] = np.maximum(tail_calibrated(default_, default_train, 1.0),
                                                                   (dd - c) / unit)
    out["default | raw + discord (max)"] = np.maximum(
        np.maximum(tail_calibrated(default_, default_train, 1.0), tail_calibrated(z, z_train, 1.0)),
        tail_calibrated(dd, dt, 1.0))
    return out
