"""The lock on torch's global random generator.

torch initialises new weights, and the masked-reconstruction loss draws its masks, from one
process-wide generator. Code that seeds it and then draws from it (network initialisation,
Gated DSIC's repeated loss passes) holds :data:`GLOBAL_RNG_LOCK`, so that estimators fitted
at the same time in several threads neither interleave their draws nor reseed each other.
"""

from __future__ import annotations

import threading

GLOBAL_RNG_LOCK = threading.RLock()
