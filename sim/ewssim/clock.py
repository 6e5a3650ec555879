"""The simulator's clock: real time, shifted, frozen, or running faster (time scale).

Sim time is what appointments, watermark timestamps and CalendarView windows use.
Durations the simulator waits on its own (heartbeats, ConnectionTimeout, subscription
expiry, slow-response faults) are sim durations and take duration/scale real seconds,
so a test at --time-scale 60 sees a 30-minute ConnectionTimeout end after 30 s.
"""

import asyncio
import time
from datetime import datetime, timezone


class Clock:
    def __init__(self, offset=0.0, frozen=None, scale=1.0):
        if scale <= 0:
            raise ValueError("time scale must be > 0")
        self._scale = float(scale)
        self._base_real = time.time()
        self._base_sim = self._base_real + offset
        self._frozen = frozen  # sim epoch seconds, or None

    def time(self):
        """Sim time in epoch seconds (float)."""
        if self._frozen is not None:
            return self._frozen
        return self._base_sim + (time.time() - self._base_real) * self._scale

    def now(self):
        return datetime.fromtimestamp(self.time(), tz=timezone.utc)

    @property
    def scale(self):
        return self._scale

    @property
    def frozen(self):
        return self._frozen is not None

    def _rebase(self):
        t = self.time()
        self._base_real = time.time()
        self._base_sim = t

    def set(self, epoch):
        """Jump to a sim instant; keeps frozen/running as it was."""
        if self._frozen is not None:
            self._frozen = float(epoch)
        else:
            self._base_real = time.time()
            self._base_sim = float(epoch)

    def shift(self, seconds):
        self.set(self.time() + seconds)

    def freeze(self, epoch=None):
        self._frozen = float(epoch) if epoch is not None else self.time()

    def unfreeze(self):
        if self._frozen is not None:
            self._base_real = time.time()
            self._base_sim = self._frozen
            self._frozen = None

    def set_scale(self, scale):
        if scale <= 0:
            raise ValueError("time scale must be > 0")
        self._rebase()
        self._scale = float(scale)

    def real(self, sim_seconds):
        """Real seconds that a sim duration takes."""
        return sim_seconds / self._scale

    async def sleep(self, sim_seconds):
        await asyncio.sleep(max(0.0, sim_seconds / self._scale))

    def describe(self):
        return {
            "now": self.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "epoch": self.time(),
            "frozen": self.frozen,
            "scale": self._scale,
            "offset_seconds": (self.time() - time.time()) if not self.frozen else self._frozen - time.time(),
        }
