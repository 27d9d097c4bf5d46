"""What a pinned core spent its time on, from /proc/stat (Linux): the end-to-end
processes use it to tell how much of their core something else took."""
from __future__ import annotations

import os


def core_times(core: int | None) -> tuple[float, float, float]:
    """Seconds ``core`` has spent running tasks (user + system), in interrupts (softirq:
    much of it the network stack's) and stolen by the hypervisor; zeros when ``core``
    is None (not pinned) or unknown."""
    if core is None:
        return 0.0, 0.0, 0.0
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith(f"cpu{core} "):
                    user, nice, system, _, _, irq, softirq, steal = map(
                        int, line.split()[1:9])
                    tick = os.sysconf("SC_CLK_TCK")
                    return (user + nice + system) / tick, (irq + softirq) / tick, steal / tick
    except OSError:
        pass
    return 0.0, 0.0, 0.0


def foreign_share(first: tuple[float, float, float], second: tuple[float, float, float],
                  own_cpu: float, wall: float) -> float:
    """The share of the core's time, between two ``core_times``, that other processes
    and the hypervisor took from a process that used ``own_cpu`` seconds of it."""
    tasks = second[0] - first[0]
    steal = second[2] - first[2]
    return (max(0.0, tasks - own_cpu) + steal) / wall if wall > 0 else 0.0
