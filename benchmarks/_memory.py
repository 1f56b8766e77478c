"""Peak-memory measurements shared by the benchmark scripts.

``PeakMemory`` polls the resident (RSS) or proportional (PSS, over a process tree) set size
from a background thread; ``peak_rss_self`` reads the kernel's high-water mark.
"""

from __future__ import annotations

import resource
import sys
import threading


class PeakMemory:
    """Polls the memory of a process (and optionally its descendants) in a thread.

    ``tree=False``: RSS of the process (cheap, ``/proc/PID/statm``). ``tree=True``: sum of
    PSS over the process and all its descendants (``/proc/PID/smaps_rollup``), so pages
    shared by forked sampler processes are counted once. Peaks are kept per ``phase``.
    """

    def __init__(self, pid: int, interval: float, tree: bool) -> None:
        import psutil

        self._process = psutil.Process(pid)
        self._errors = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess)
        self._interval = interval
        self._tree = tree
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.phase = "start"
        self.peak: dict[str, int] = {}

    def current(self) -> int:
        if not self._tree:
            return self._process.memory_info().rss
        total = 0
        for process in [self._process, *self._process.children(recursive=True)]:
            try:
                total += process.memory_full_info().pss
            except self._errors:
                continue
        return total

    def sample(self) -> None:
        phase = self.phase
        try:
            value = self.current()
        except self._errors:
            return
        self.peak[phase] = max(self.peak.get(phase, 0), value)

    def enter(self, phase: str) -> None:
        self.sample()
        self.phase = phase
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def __enter__(self) -> PeakMemory:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def peak_rss_self() -> int:
    """Kernel high-water RSS of this process, in bytes (``ru_maxrss`` is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
