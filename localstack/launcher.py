"""Run LocalStack with every TCP listener bound to 127.0.0.1.

LocalStack ignores the host part of GATEWAY_LISTEN for IPv4 and listens on 0.0.0.0; its gateway is served by
twisted, so making TCP4ServerEndpoint's ``interface`` default to loopback keeps it off other interfaces.
"""

from __future__ import annotations

import runpy
from typing import Any

from twisted.internet import endpoints

_Original = endpoints.TCP4ServerEndpoint


class LoopbackTCP4ServerEndpoint(_Original):  # type: ignore[misc,valid-type]
    def __init__(self, reactor: Any, port: int, backlog: int = 50, interface: str = "") -> None:
        super().__init__(reactor, port, backlog, interface if interface not in ("", "0.0.0.0") else "127.0.0.1")  # noqa: S104


endpoints.TCP4ServerEndpoint = LoopbackTCP4ServerEndpoint  # type: ignore[misc]

if __name__ == "__main__":
    runpy.run_module("localstack.runtime.main", run_name="__main__", alter_sys=True)
