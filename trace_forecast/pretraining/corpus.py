"""The real pretraining corpus: loaders for every source of ``../shared/data/pretraining``.

Each :class:`Source` names one folder or file of the pretraining data (its README lists
them), its sampling frequency and a loader that returns clean univariate series: float32,
inner gaps interpolated linearly, leading and trailing gaps dropped, constant and very
short series dropped. Capacity, theoretical, total, calendar and identifier columns are
not series and are skipped.

Held out from pretraining (:func:`split_heldout`), per source:

- a series of at least :data:`LONG_SERIES` values keeps its first 90 % for training and
  gives its last 10 % to the held-out set (so the held-out windows lie in an unseen period);
- of the shorter series, 5 % (at least one) are held out whole, chosen with a seeded draw.

Nothing under ``forecasting/`` or ``anomaly/`` is read. Two files of the fpp3 collection
are skipped because they overlap the small-data benchmark (``pelt``: the Hudson's Bay lynx
pelts, the source of sktime's lynx series; ``us_change``: US quarterly macro series, the
family of its US real GDP series).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from trace_forecast.errors import DataError

MIN_LENGTH = 16
LONG_SERIES = 4096
HELDOUT_TAIL = 0.1
HELDOUT_SERIES = 0.05
FPP3_SKIPPED = ("pelt.csv", "us_change.csv", "boston_marathon.csv", "olympic_running.csv")
TIME_COLUMNS = ("index", "Month", "Quarter", "Year", "year", "Week", "Date", "DateTime", "Date_Time", "date", "ds")


def clean(values: Iterable[float]) -> np.ndarray | None:
    """A float32 series with inner gaps interpolated linearly, or ``None`` when nothing usable
    is left. In numpy (pandas' per-call cost dominated loading the corpus's 32 k series)."""
    x = np.asarray(values).ravel()
    if x.dtype.kind in "biuf":
        x = x.astype(np.float64)
    else:                                   # text or objects: what parses as a number
        x = pd.to_numeric(pd.Series(x), errors="coerce").to_numpy(np.float64)
    finite = np.isfinite(x)
    valid = np.flatnonzero(finite)
    if len(valid) < MIN_LENGTH:
        return None
    x, finite = x[valid[0] : valid[-1] + 1], finite[valid[0] : valid[-1] + 1]
    if not finite.all():
        t = np.arange(len(x))
        x = np.interp(t, t[finite], x[finite])
    x = x.astype(np.float32)
    if float(np.std(x)) == 0.0:
        return None
    return x


def _columns(frame: pd.DataFrame, skip: Iterable[str] = ()) -> list[np.ndarray]:
    """Every numeric column of ``frame`` (in row order) except ``skip``, cleaned."""
    out = []
    for name in frame.columns:
        if name in skip or not pd.api.types.is_numeric_dtype(frame[name]):
            continue
        s = clean(frame[name].to_numpy())
        if s is not None:
            out.append(s)
    return out


def _long_format(frame: pd.DataFrame) -> list[np.ndarray]:
    """``series_id,step,value`` rows as one series per id, in step order."""
    out = []
    for _, group in frame.sort_values(["series_id", "step"]).groupby("series_id", sort=False):
        s = clean(group["value"].to_numpy())
        if s is not None:
            out.append(s)
    return out


def _keyed_table(frame: pd.DataFrame, time: str | None = None, skip: Iterable[str] = ()) -> list[np.ndarray]:
    """A table keyed by its text columns (tsibble style): one series per key and numeric column,
    in file order within each key."""
    skip = set(skip)
    time = time or next((c for c in TIME_COLUMNS if c in frame.columns and c not in skip), None)
    keys = [c for c in frame.columns if c != time and c not in skip and not pd.api.types.is_numeric_dtype(frame[c])]
    values = frame.drop(columns=[c for c in {*skip, time} if c in frame.columns])
    if not keys:
        return _columns(values)
    out = []
    for _, group in values.groupby(keys, sort=False):
        out.extend(_columns(group.drop(columns=keys)))
    return out


def read_tsf(path: Path) -> list[np.ndarray]:
    """The series of a Monash ``.tsf`` file (inside a zip or not): the last ``:``-field of
    each data line, comma-separated, ``?`` for missing. (sktime's ``load_tsf_to_dataframe``
    needs an unzipped file and builds a frame of every attribute; only the values are
    needed here, straight from the archive the data folder keeps.)"""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".tsf"))
            text = archive.read(name).decode("utf-8", errors="replace")
    else:
        text = path.read_text(encoding="utf-8", errors="replace")
    body = text.split("@data", 1)[-1]
    out = []
    for line in io.StringIO(body):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        raw = line.rsplit(":", 1)[-1].replace("?", "nan")
        s = clean(np.array(raw.split(","), dtype=float))
        if s is not None:
            out.append(s)
    return out


def _files(folder: Path, pattern: str) -> list[Path]:
    """The files of ``folder`` matching ``pattern``, sorted; FileNotFoundError when there are none."""
    files = sorted(folder.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no {pattern} in {folder}")
    return files


def load_m4_file(path: Path) -> dict[str, np.ndarray]:
    """M4 csv (id column then values, NaN-padded) as ``{id: values}``."""
    frame = pd.read_csv(path)
    values = frame.iloc[:, 1:].to_numpy(dtype=float)
    return {str(i): row[~np.isnan(row)] for i, row in zip(frame.iloc[:, 0], values, strict=True)}


def load_m4_weekly(root: Path) -> list[np.ndarray]:
    """M4 weekly: each train series followed by its test values."""
    train, test = load_m4_file(root / "M4/Weekly-train.csv"), load_m4_file(root / "M4/Weekly-test.csv")
    series = (clean(np.concatenate([v, test.get(k, np.empty(0))])) for k, v in train.items())
    return [s for s in series if s is not None]


def _sorted_by(frame: pd.DataFrame, column: str, fmt: str | None = None) -> pd.DataFrame:
    stamp = pd.to_datetime(frame[column], format=fmt, errors="coerce")
    return frame.assign(**{column: stamp}).dropna(subset=[column]).sort_values(column).drop_duplicates(column)


def load_pjm(root: Path) -> list[np.ndarray]:
    return [s for f in _files(root / "pjm", "*_hourly.csv") for s in _columns(_sorted_by(pd.read_csv(f), "Datetime"))]


def load_beijing(root: Path) -> list[np.ndarray]:
    out = []
    for f in _files(root / "beijing_prsa", "PRSA_Data_*.csv"):
        frame = pd.read_csv(f, low_memory=False).drop(columns=["No", "year", "month", "day", "hour", "wd", "station"])
        out.extend(_columns(frame.apply(pd.to_numeric, errors="coerce")))
    return out


def load_seattle(root: Path) -> list[np.ndarray]:
    out = []
    for f in _files(root / "seattle", "*.csv"):
        frame = _sorted_by(pd.read_csv(f), "Date", "%m/%d/%Y %I:%M:%S %p")
        out.extend(_columns(frame, skip=[c for c in frame.columns if "Total" in c]))
    return out


def load_los_loop(root: Path) -> list[np.ndarray]:
    return _columns(pd.read_csv(root / "los_loop/los_speed.csv"))


def load_wind_scada(root: Path) -> list[np.ndarray]:
    frame = pd.read_csv(root / "wind_scada/T1.csv", encoding="latin-1")
    return _columns(frame, skip=("TheoreticalPower",))


def load_tetouan(root: Path) -> list[np.ndarray]:
    return _columns(pd.read_csv(root / "tetouan/tetuan_city_power_consumption.csv").dropna(how="all"))


def load_weather_daily(root: Path) -> list[np.ndarray]:
    frame = pd.read_csv(root / "weather_daily/daily_weather.csv")
    return _keyed_table(frame.sort_values(["location", "date"], kind="stable"), time="date",
                        skip=("in_northern_hemisphere", "in_southern_hemisphere"))


def load_epf(root: Path) -> list[np.ndarray]:
    return _keyed_table(pd.read_csv(root / "epf/EPF_FR_BE.csv"), time="ds", skip=("week_day",))


def load_fpp3(root: Path) -> list[np.ndarray]:
    out = []
    for f in _files(root / "fpp3", "*.csv"):
        if f.name in FPP3_SKIPPED:
            continue
        frame = pd.read_csv(f, skipinitialspace=True)
        skip = ("Date", "Time") if f.name == "pedestrian.csv" else ()
        out.extend(_keyed_table(frame, skip=skip))
    return out


def _converted(name: str) -> Callable[[Path], list[np.ndarray]]:
    def load(root: Path) -> list[np.ndarray]:
        return _long_format(pd.read_csv(root / "converted" / name))

    load.__name__ = f"load_{name.split('.')[0]}"
    return load


def load_ukgrid(root: Path) -> list[np.ndarray]:
    frame = pd.read_csv(root / "converted/ukgrid_half_hourly.csv.gz")
    return _columns(frame.sort_values("TIMESTAMP"), skip=[c for c in frame.columns if "CAPACITY" in c])


@dataclass(frozen=True)
class Source:
    """One source of the pretraining corpus."""

    name: str
    frequency: str
    load: Callable[[Path], list[np.ndarray]]


SOURCES: tuple[Source, ...] = (
    Source("m4_weekly", "weekly", load_m4_weekly),
    Source("m4_yearly", "yearly", lambda root: read_tsf(root / "monash/m4_yearly_dataset.zip")),
    Source("kdd_cup_2018", "hourly",
           lambda root: read_tsf(root / "monash/kdd_cup_2018_dataset_without_missing_values.zip")),
    Source("pjm", "hourly", load_pjm),
    Source("beijing_prsa", "hourly", load_beijing),
    Source("seattle", "hourly", load_seattle),
    Source("los_loop", "5-minute", load_los_loop),
    Source("wind_scada", "10-minute", load_wind_scada),
    Source("tetouan", "10-minute", load_tetouan),
    Source("weather_daily", "daily", load_weather_daily),
    Source("epf", "hourly", load_epf),
    Source("fpp3", "5-minute to yearly", load_fpp3),
    Source("ukgrid", "half-hourly", load_ukgrid),
    Source("gefcom2012_load", "hourly", _converted("gefcom2012_load.csv.gz")),
    Source("gefcom2012_temp", "hourly", _converted("gefcom2012_temp.csv.gz")),
    Source("nn5", "daily", _converted("nn5.csv.gz")),
    Source("m3", "yearly to monthly", _converted("M3.csv.gz")),
    Source("tourism", "yearly to monthly", _converted("tourism.csv.gz")),
)
SOURCE_NAMES = tuple(s.name for s in SOURCES)


def load_corpus(data_dir: str | Path, names: Iterable[str] | None = None) -> dict[str, list[np.ndarray]]:
    """``{source name: series}`` for the named sources (default: all of :data:`SOURCES`)."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"pretraining data folder {root} does not exist")
    wanted = list(names) if names is not None else list(SOURCE_NAMES)
    unknown = sorted(set(wanted) - set(SOURCE_NAMES))
    if unknown:
        raise DataError(f"unknown pretraining sources {unknown}; known: {list(SOURCE_NAMES)}")
    corpus = {}
    for source in SOURCES:
        if source.name not in wanted:
            continue
        try:
            series = source.load(root)
        except FileNotFoundError as exc:
            raise DataError(f"pretraining source {source.name!r} is missing under {root}: {exc}") from exc
        if not series:
            raise DataError(f"pretraining source {source.name!r} gave no usable series under {root}")
        corpus[source.name] = series
    return corpus


def split_heldout(series: list[np.ndarray], seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(train, heldout)`` of one source (module docstring: tails of long series, 5 % of short ones)."""
    rng = np.random.default_rng(seed)
    short = [i for i, s in enumerate(series) if len(s) < LONG_SERIES]
    n_held = max(1, round(HELDOUT_SERIES * len(short))) if short else 0
    held_short = set(rng.permutation(short)[:n_held].tolist())
    train, heldout = [], []
    for i, s in enumerate(series):
        if len(s) >= LONG_SERIES:
            cut = int(len(s) * (1 - HELDOUT_TAIL))
            train.append(s[:cut])
            heldout.append(s[cut:])
        elif i in held_short and len(short) > 1:
            heldout.append(s)
        else:
            train.append(s)
    return train, heldout


def default_weights(corpus: dict[str, list[np.ndarray]]) -> dict[str, float]:
    """Mixing weight of each source: the square root of its number of values, so that large
    sources dominate less than in proportion (the T5/MOMENT temperature-sampling idea);
    normalised to sum to one."""
    raw = {name: float(np.sqrt(sum(len(s) for s in series))) for name, series in corpus.items()}
    total = sum(raw.values())
    return {name: w / total for name, w in raw.items()}
