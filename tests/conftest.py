import piopiy_fast


def pytest_report_header(config):
    return f"piopiy_fast {piopiy_fast.__version__} from {piopiy_fast.__file__}"
