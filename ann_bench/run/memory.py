"""Peak resident memory of a worker's build and of its query phase.

In a container (the executor sets CGROUP_VARIABLE) the figure is the container's cgroup peak,
which counts every process of the worker (a database server it starts included) and the page
cache it fills: cgroup v2's memory.peak, or v1's memory.max_usage_in_bytes. A peak is reset
where the kernel lets the worker do so (v2 from Linux 6.12: a write to memory.peak resets what
that open file reads; v1: writing 0 to max_usage_in_bytes, which a read-only cgroup mount
refuses). Where it cannot be reset, the build's peak is read before the first query and each
query phase's figure is the peak since the container started, which `memory_measure` says.

Locally the figure is the worker process's own high-water mark (VmHWM, what ru_maxrss
reports), reset between phases by writing "5" to /proc/self/clear_refs; what the worker starts
in other processes is not counted.
"""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_VARIABLE = "ANN_BENCH_MEMORY_CGROUP"  # set to 1 by executors that give a worker its own cgroup
CGROUP_ROOT = Path("/sys/fs/cgroup")
V2_PEAK = CGROUP_ROOT / "memory.peak"
V1_PEAK = CGROUP_ROOT / "memory" / "memory.max_usage_in_bytes"
CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")
MB = 1 << 20


class PeakMemory:
    """reset() at the start of a phase, peak_mb() at its end; `measure` names what is read and
    whether phases are apart ("-overall" when each query phase's peak counts from the start)."""

    def __init__(self, cgroup: bool | None = None) -> None:
        if cgroup is None:
            cgroup = os.environ.get(CGROUP_VARIABLE) == "1"
        self._v2 = None
        if cgroup and V2_PEAK.exists():
            self._kind = "cgroup-v2"
            try:  # the reset and the reads must use one open file (Linux 6.12+)
                self._v2 = open(V2_PEAK, "r+b", buffering=0)
            except OSError:
                self._v2 = open(V2_PEAK, "rb", buffering=0)
        elif cgroup and V1_PEAK.exists():
            self._kind = "cgroup-v1"
        else:
            self._kind = "vmhwm"
        self.resettable = True

    @property
    def measure(self) -> str:
        return self._kind + ("" if self.resettable else "-overall")

    def reset(self) -> None:
        """Start a phase: the peak from now on, where the kernel allows it."""
        try:
            if self._kind == "vmhwm":
                CLEAR_REFS.write_text("5")
            elif self._v2 is not None:
                self._v2.write(b"reset")
            else:
                V1_PEAK.write_text("0")
        except OSError:
            self.resettable = False

    def peak_mb(self) -> float:
        """The peak of this phase in MB (2**20 bytes)."""
        if self._kind == "vmhwm":
            for line in STATUS.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
            raise OSError("VmHWM missing from /proc/self/status")
        if self._v2 is not None:
            self._v2.seek(0)
            return int(self._v2.read()) / MB
        return int(V1_PEAK.read_text()) / MB

    def close(self) -> None:
        if self._v2 is not None:
            self._v2.close()
