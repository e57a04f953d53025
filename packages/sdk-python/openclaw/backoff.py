"""Exponential backoff with full jitter, for reconnections and transparent call retries."""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass

#: Doubling stops here: the cap has long reached any sane maximum, and a larger power of two would
#: overflow the float multiplication.
_MAX_EXPONENT = 64


@dataclass(frozen=True)
class Backoff:
    """The bounds of an exponential backoff, in seconds.

    Example::

        Backoff(0.1, 10.0).cap(3)  # 0.8
    """

    #: The cap of the first attempt (attempt 0).
    initial_delay: float
    #: The largest cap.
    max_delay: float

    def cap(self, attempt: int) -> float:
        """The upper bound of the delay before attempt ``attempt`` (0-based): ``min(max, initial * 2**attempt)``."""
        exponent = min(max(0, attempt), _MAX_EXPONENT)
        return min(self.max_delay, self.initial_delay * (1 << exponent))

    def delay(self, attempt: int, random: Callable[[], float] = _random.random) -> float:
        """The delay before attempt ``attempt`` (0-based), with full jitter: uniform in ``[0, cap(attempt))``.

        Full jitter spreads the clients of a restarting replica over the whole window, so they do not
        come back in waves.
        """
        return random() * self.cap(attempt)
