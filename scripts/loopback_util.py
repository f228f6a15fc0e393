"""Small helpers shared by the scripts that start ringtun processes on 127.0.0.1 (scripts/demo.py, perf/lib)."""
import socket
import time


def free_port():
    """A port nothing listens on right now (the kernel's choice; racy by nature, fine on a test machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what):
    """Polls predicate() until it returns something true, and returns that; raises after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")
