"""The ``piopiy-fast`` command run as a subprocess, its output read line by line: for the
command-line, worker and load-balancer tests."""

import queue
import re
import subprocess
import sys
import threading
import time
import wave

import numpy as np
from stream_testing import UNIT

COMMAND = [sys.executable, "-m", "piopiy_fast"]


def read_wav(path):
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), np.frombuffer(wav.readframes(wav.getnframes()), "<i2")


class Running:
    """A command running in the background, its stdout read line by line."""

    def __init__(self, *args, env=None):
        self.proc = subprocess.Popen([*COMMAND, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.lines = []
        self._queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern, timeout=15):
        """Read lines until one matches ``pattern``; return the match."""
        deadline = time.monotonic() + timeout * UNIT
        while True:
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s; "
                                     f"the lines: {self.lines}") from None
            if line is None:
                raise AssertionError(f"exited before {pattern!r}: {self.lines}")
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def wait_for_count(self, pattern, count, timeout=15):
        """Read lines until ``count`` of all the lines so far match ``pattern``, those
        read by earlier waits included; return every match."""
        while True:
            found = [m for line in self.lines if (m := re.search(pattern, line))]
            if len(found) >= count:
                return found
            self.wait_for(pattern, timeout)

    def read_waiting(self):
        """Every line printed so far, without waiting for more."""
        try:
            while (line := self._queue.get_nowait()) is not None:
                self.lines.append(line)
            self._queue.put(None)  # the end stays for the next reader
        except queue.Empty:
            pass
        return self.lines

    def finish(self, sig, timeout=15):
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout * UNIT)
        while (line := self._queue.get(timeout=5 * UNIT)) is not None:
            self.lines.append(line)
        return code


def run_command(*args, timeout=40, env=None):
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True,
                          timeout=timeout * UNIT, env=env)
