"""Exponential backoff shared by the reconnecting network source and sink."""

from __future__ import annotations

import threading


class Backoff:
    """Delays of ``initial * factor**n`` seconds, capped at ``maximum``; ``reset`` after a success.

    ``wait`` sleeps on an event so that ``close()`` of the owner interrupts it at once.
    """

    def __init__(self, initial: float = 0.25, maximum: float = 8.0, factor: float = 2.0) -> None:
        if initial <= 0 or maximum < initial or factor < 1:
            raise ValueError(f"bad backoff: initial={initial} maximum={maximum} factor={factor}")
        self.initial, self.maximum, self.factor = initial, maximum, factor
        self.attempts = 0

    def next_delay(self) -> float:
        delay = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self.attempts = 0

    def wait(self, stop: threading.Event) -> bool:
        """Sleep for the next delay; returns True if ``stop`` was set meanwhile."""
        return stop.wait(self.next_delay())
