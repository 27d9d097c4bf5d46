"""What one call may cost and how long it may last, and what a process can hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .call import CallStream

FDS_PER_CALL = 3  # its socket, and two recordings when a recorder runs
FD_HEADROOM = 64  # listening sockets, logs, the interpreter's own files


@dataclass(frozen=True, slots=True)
class CallLimits:
    """How long a call may go without audio, go silent, and last; None: no limit."""

    idle_timeout: float | None
    silence_timeout: float | None
    max_call_seconds: float | None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.idle_timeout, self.silence_timeout,
                                             self.max_call_seconds))

    def broken_by(self, call: CallStream, wall: float) -> str | None:
        """Why ``call`` must close now (``wall``: ``time.time()``), or None."""
        age = call.age
        if self.max_call_seconds is not None and age > self.max_call_seconds:
            return f"longer than {self.max_call_seconds:g} s"
        last = call.stats.last_frame_time
        if last is None:
            if self.idle_timeout is not None and age > self.idle_timeout:
                return f"no audio in {self.idle_timeout:g} s"
        elif (self.silence_timeout is not None and not call.paused
              and wall - max(last, call.resumed_at or last) > self.silence_timeout):
            return f"no audio for {self.silence_timeout:g} s"
        return None


def raise_fd_limit() -> None:
    """Raise this process's soft limit of open files to its hard limit, as servers do
    at start-up (``piopiy-fast serve`` does; an embedding application decides itself)."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20) if soft != resource.RLIM_INFINITY else soft
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def calls_the_fd_limit_allows() -> int:
    """The default ``max_calls``: what this process's file-descriptor limit holds now,
    with headroom (it does not change the limit: see :func:`raise_fd_limit`)."""
    try:
        import resource
    except ImportError:  # not on this platform: no limit to read
        return 10_000
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = 1 << 20 if soft == resource.RLIM_INFINITY else soft
    return max(1, (limit - FD_HEADROOM) // FDS_PER_CALL)


def ring_capacity(seconds: float, rate: int) -> int:
    """The smallest power of two holding ``seconds`` of audio at ``rate`` (at least 1024)."""
    need = max(1024, int(seconds * rate + 0.5))
    return 1 << (need - 1).bit_length()
