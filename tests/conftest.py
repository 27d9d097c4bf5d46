import pytest
from stream_testing import TRANSPORTS

import piopiy_fast

# The picows transport once more with its frame path in Python: what runs when the
# compiled listener cannot load.
PICOWS_IN_PYTHON = "picows-python-frames"


def pytest_report_header(config):
    return f"piopiy_fast {piopiy_fast.__version__} from {piopiy_fast.__file__}"


@pytest.fixture(params=[*TRANSPORTS, PICOWS_IN_PYTHON])
def transport(request):
    """The receiver's transport: every end-to-end test runs over each one."""
    if request.param == "websockets":
        return request.param
    pytest.importorskip("picows")
    if request.param == PICOWS_IN_PYTHON:
        from piopiy_fast.receiver.transports import picows
        monkeypatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setattr(picows, "frame_listener",
                            lambda compiled=True: picows.PythonFrameListener)
    return "picows"
