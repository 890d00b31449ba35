"""The tests talk to real Swift processes over TCP loopback; scripts/test.sh starts them and passes their endpoints:
a policy server of Push-T's dimensions (--server) and a lock-step simulated Push-T robot (--robot-state,
--robot-commands) that runs one episode."""

import pytest


def pytest_addoption(parser):
    parser.addoption("--server", help="endpoint of a running `flowpolicy serve` (Push-T dimensions)")
    parser.addoption("--robot-state", help="state endpoint of a running `flowpolicy robot --lock-step --episodes 1`")
    parser.addoption("--robot-commands", help="command endpoint of that robot")


def _required(config, name):
    value = config.getoption(name)
    if not value:
        pytest.fail(f"{name} is required: run these tests through scripts/test.sh, which starts the Swift processes")
    return value


@pytest.fixture
def server(request):
    return _required(request.config, "--server")


@pytest.fixture
def robot(request):
    return _required(request.config, "--robot-state"), _required(request.config, "--robot-commands")
