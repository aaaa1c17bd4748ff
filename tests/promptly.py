"""``promptly(fn)``: run a call that must not block in a thread, so a regression that blocks fails its test
with a message instead of hanging the suite."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def promptly(fn: Callable[[], Any], timeout: float = 20.0) -> Any:
    """``fn()``'s result (or its exception, re-raised); fails when it has not returned within timeout s."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as err:  # handed to the test
            result["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{fn} blocked for {timeout} s"
    if "error" in result:
        raise result["error"]
    return result["value"]
