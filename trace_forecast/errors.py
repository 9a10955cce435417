"""Exceptions with specific, user-facing messages."""


class TraceError(Exception):
    """Base class of trace_forecast errors."""


class CheckpointError(TraceError, ValueError):
    """A backbone checkpoint is missing, corrupt, or not a MOMENT checkpoint."""


class DataError(TraceError, ValueError):
    """Input data cannot be used (NaN, non-numeric, too short, ...)."""


class ParameterError(TraceError, ValueError):
    """A parameter value is outside its documented range or type."""


class UncalibratedIntervalsWarning(UserWarning):
    """Some series held out too few windows to calibrate prediction intervals on the
    model's own errors: theirs use the naive forecast's errors instead."""


class ShortSeriesWarning(UserWarning):
    """The series are shorter than ``horizon + 8``: training windows have less than a full
    patch of context, and the forecast is unreliable."""


class SmallUnitsWarning(UserWarning):
    """Darts' ``TraceModel`` got a series in tiny units (a spread below ``2**-6``): it sees
    Darts' windows, not whole series, so it cannot bring them into range, and RevIN's
    absolute ``1e-5`` floor flattens them. Scale the series first (Darts' ``Scaler``)."""


class MemoryRetryWarning(UserWarning):
    """The GPU ran out of memory; the fit is being retried once with half the batch."""


class ResourceError(TraceError, MemoryError):
    """A fit would exhaust the memory where it runs (checked before allocating), or ran
    out of GPU memory even at half the batch size."""


class AdapterFileError(CheckpointError):
    """An adapter folder is missing, damaged, of a newer format, or made for another
    backbone or network (nothing is changed when it is refused)."""
