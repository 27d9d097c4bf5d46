"""The console writer: a caller never waits on output nobody reads; what does not fit is
dropped, counted and said. (The command itself is tested in test_cli.py, with a
receiver whose stdout nobody reads.)"""

import io
import os
import threading

from piopiy_fast.cli._console import Console


def test_a_full_pipe_drops_and_counts_and_never_blocks(capfd):
    read_end, write_end = os.pipe()
    stream = io.TextIOWrapper(io.FileIO(write_end, "w"), write_through=True)
    console = Console(capacity=50)
    line = "x" * 1000 + "\n"
    results = []
    # 1,000 lines of 1 kB, ~15 times what the pipe holds: each put returns at once.
    putting = threading.Thread(target=lambda: results.extend(
        console.put(stream, line) for _ in range(1000)))
    putting.start()
    putting.join(10)
    assert not putting.is_alive()
    assert results.count(False) == console.dropped > 800
    # Read what reached the pipe: whole lines, then let the writer finish and say the
    # count of what it dropped.
    got = b""
    os.set_blocking(read_end, False)

    def drain():
        nonlocal got
        try:
            while chunk := os.read(read_end, 1 << 16):
                got += chunk
        except BlockingIOError:
            pass

    closer = threading.Thread(target=console.close)
    closer.start()
    while closer.is_alive():
        drain()
        closer.join(0.01)
    drain()
    os.close(read_end)
    stream.close()
    assert got == line.encode() * results.count(True)
    assert (f"piopiy-fast: {console.dropped} output line(s) dropped so far: the output was "
            "not read as fast as it was written\n") in capfd.readouterr().err


def test_in_order_across_streams(capfd):
    import sys
    console = Console()
    for n in range(100):
        console.put(sys.stdout if n % 2 else sys.stderr, f"{n}\n")
    console.close()
    captured = capfd.readouterr()
    assert captured.out == "".join(f"{n}\n" for n in range(1, 100, 2))
    assert captured.err == "".join(f"{n}\n" for n in range(0, 100, 2))
    assert console.dropped == 0
