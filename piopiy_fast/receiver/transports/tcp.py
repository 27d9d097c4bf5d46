"""What the receiver asks of TCP for every accepted connection, whichever WebSocket
library serves it: keepalive probes on short timers, a bounded receive buffer, and a
look at whether the kernel has already closed a connection.

Keepalive is for a peer that is gone without a word: its host went down, or the network
or a NAT in between lost the connection. Nothing arrives, nothing is sent, and without
probes the connection would stay open until the WebSocket ping gives up (20 s idle,
then 20 s for the answer) or the silence timeout (60 s). Linux's own defaults (two
hours idle, then nine probes 75 s apart) would let it stay much longer.

The receive buffer bounds what one read can bring: a peer sending faster than the
server handles (a flood of large events) fills the kernel's buffer, which Linux grows
to megabytes by default, and picows' read buffer grows to match and stays that size for
the connection's life (20 flooding connections took a server from 115 MB to 430 MB).
A call needs far less: its heaviest stream (16 kHz, two channels) is 64 KB a second.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

# After KEEPALIVE_IDLE seconds without a packet from the peer, probe it every
# KEEPALIVE_INTERVAL seconds; KEEPALIVE_PROBES probes unanswered end the connection. A
# gone peer is let go 5 + 3 * 5 = 20 s after its last packet, sooner than the ping
# would find it. A streaming call sends 50 packets a second and is never probed; the
# kernel of a peer that is only quiet (a paused call) answers the probes itself, so it
# is never dropped for being quiet; and three probes 5 s apart ride out seconds of loss.
KEEPALIVE_IDLE = 5
KEEPALIVE_INTERVAL = 5
KEEPALIVE_PROBES = 3

# The receive buffer asked for (Linux doubles it for its own bookkeeping): 2 s of the
# heaviest stream, so a call catching up after a network stall is not slowed, and a
# window wide enough for 400 KB/s (six times that stream) at a 300 ms round trip.
RECEIVE_BUFFER_BYTES = 128 * 1024

_OPTIONS = [(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES),
            (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)] + [
    (socket.IPPROTO_TCP, getattr(socket, name), value)
    for name, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE),
                        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
                        ("TCP_KEEPCNT", KEEPALIVE_PROBES))
    if hasattr(socket, name)]  # the timers are per socket where the platform allows

# tcpi_state of a socket whose connection the kernel has ended: a reset arrived, or
# keepalive or retransmission gave up (TCP_CLOSE in Linux's tcp_states.h).
_TCP_CLOSE = 7


def tune(sock: Any) -> None:
    """Set an accepted connection's receive buffer and keepalive timers (above)."""
    if sock is None:
        return
    with contextlib.suppress(OSError):  # a connection already gone needs none
        for level, option, value in _OPTIONS:
            sock.setsockopt(level, option, value)


def ended_by_kernel(sock: Any) -> bool:
    """Whether the kernel has ended this socket's connection while it is still open
    here (Linux; False where TCP_INFO is unknown)."""
    if sock is None or not hasattr(socket, "TCP_INFO"):
        return False
    try:
        return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == _TCP_CLOSE)
    except OSError:
        return False
