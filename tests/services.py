"""Programs a test needs beside Python (nginx, nats-server): found, or the test skipped
with the reason; or failed, where the run says the program must be there.

A developer's machine may lack nginx, and ``pytest`` must still pass there: the test
skips and says what to install. CI installs every such program and sets
``PIOPIY_FAST_REQUIRE`` (a comma-separated list of names, or ``all``): a test needing a
program named there fails instead of skipping, so a broken install step cannot turn
into a quietly skipped test.
"""

import os
import shutil

import pytest

REQUIRE_ENV = "PIOPIY_FAST_REQUIRE"
# Where system daemons live when the PATH of a non-root shell omits them.
SYSTEM_DIRS = "/usr/sbin:/usr/local/sbin:/sbin"


def required(name):
    """True when the environment says ``name`` must be present (so its absence fails)."""
    wanted = {w.strip() for w in os.environ.get(REQUIRE_ENV, "").split(",") if w.strip()}
    return name in wanted or "all" in wanted


def program(name, install):
    """The path of the program ``name``; when it is missing, skip the calling test
    saying how to get it (``install``), or fail when ``PIOPIY_FAST_REQUIRE`` names it."""
    found = shutil.which(name) or shutil.which(name, path=SYSTEM_DIRS)
    if found is not None:
        return found
    reason = f"{name} is not installed ({install})"
    if required(name):
        pytest.fail(f"{reason}, and {REQUIRE_ENV} requires it", pytrace=False)
    pytest.skip(reason)
