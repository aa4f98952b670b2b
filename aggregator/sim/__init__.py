"""Local stand-ins for external platforms, speaking their real wire protocols.

Used by `backchannel demo` (no network) and by tests. Nothing here imports the rest of
the application: a simulator only knows the dataset and the wire.
"""

from __future__ import annotations

from aggregator.sim.clock import SimClock

__all__ = ["SimClock"]
