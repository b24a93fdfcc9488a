"""Waiting on a condition, the one way the tests do it: no fixed sleeps."""

import time


def wait_for(condition, timeout: float = 20.0, what: str = "condition", *, interval: float = 0.05, explain=None):
    """Poll ``condition`` until it is truthy and return its value, or fail after ``timeout``
    seconds saying ``what`` (and whatever ``explain()`` returns: a process's log, say).
    ``condition`` may raise to give up early (a process it waits on has died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    details = f"\n{explain()}" if explain else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{details}")
