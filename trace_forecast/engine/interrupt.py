"""Ctrl+C during a fit stays a ``KeyboardInterrupt``.

Lightning's trainer turns a ``KeyboardInterrupt`` into ``sys.exit(1)`` and ignores SIGINT
from then on (its "graceful shutdown" for training scripts). Inside a library that is
wrong: a user who stops one fit of a back-test in a notebook would lose the kernel's
Ctrl+C for good, or the whole process. :func:`interruptible` restores the SIGINT handler
that was in place before the fit and re-raises the interrupt as ``KeyboardInterrupt``, so
the estimator stays unfitted (sktime and Darts only mark it fitted when ``fit`` returns)
and a new ``fit`` works.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Run a Lightning fit so that Ctrl+C raises ``KeyboardInterrupt`` and SIGINT keeps
    its handler."""
    main_thread = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        yield
    except SystemExit as exit_:
        if isinstance(exit_.__context__, KeyboardInterrupt):  # Lightning's sys.exit(1) after Ctrl+C
            raise KeyboardInterrupt("fit interrupted; the estimator is left unfitted") from None
        raise
    finally:
        if main_thread and handler is not None and signal.getsignal(signal.SIGINT) is not handler:
            signal.signal(signal.SIGINT, handler)
