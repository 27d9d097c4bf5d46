import pytest
from stream_testing import TRANSPORTS

import piopiy_fast


def pytest_report_header(config):
    return f"piopiy_fast {piopiy_fast.__version__} from {piopiy_fast.__file__}"


@pytest.fixture(params=TRANSPORTS)
def transport(request):
    """The receiver's transport: every end-to-end test runs over each one."""
    if request.param == "picows":
        pytest.importorskip("picows")
    return request.param
