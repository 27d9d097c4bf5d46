import pytest
from nats_testing import NatsServer


@pytest.fixture
def nats_server(tmp_path):
    """A nats-server with JetStream of this test's own."""
    pytest.importorskip("nats", reason="needs nats-py (the nats extra)")
    server = NatsServer(tmp_path / "jetstream")
    yield server
    server.stop()
