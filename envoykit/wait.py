"""Waiting on a condition with a bound (never a bare sleep), and free ports."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition was not reached in time (an AssertionError, so a test fails)."""


def wait_until(pred: Callable[[], T], timeout: float, interval: float = 0.1, what: str = "condition") -> T:
    """Poll `pred` until it returns something truthy (returned) or `timeout`
    seconds pass (then WaitTimeout naming `what` and the last value)."""
    deadline = time.monotonic() + timeout
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"{what} not reached within {timeout}s (last: {last!r})")
        time.sleep(interval)


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False
