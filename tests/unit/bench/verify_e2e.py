#!/usr/bin/env python3
"""ringtun-bench end to end: its verification catches a relay that corrupts one byte.

  ringtun-bench client -> relay (this script; flips one byte when told to) -> ringtun-bench serve (echo, sink)

Checks: a clean relay passes throughput --verify, latency and hold; one flipped byte makes throughput --verify
report a hash mismatch and latency report a mismatched echo, each exiting 1. Usage: verify_e2e.py RINGTUN_BENCH
"""
import json
import socket
import subprocess
import sys
import threading


class Relay:
    """A loopback TCP relay; when `corrupt_at` is set, flips that byte offset of the first client's stream."""

    def __init__(self, target_port, corrupt_at=None):
        self.target_port = target_port
        self.corrupt_at = corrupt_at
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.first = True
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            corrupt = self.corrupt_at if self.first else None
            self.first = False
            threading.Thread(target=self.pump, args=(client, upstream, corrupt), daemon=True).start()
            threading.Thread(target=self.pump, args=(upstream, client, None), daemon=True).start()

    @staticmethod
    def pump(src, dst, corrupt_at):
        offset = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if corrupt_at is not None and offset <= corrupt_at < offset + len(data):
                    data = bytearray(data)
                    data[corrupt_at - offset] ^= 0x01
                    data = bytes(data)
                offset += len(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.listener.close()


def bench(binary, *args, timeout=60):
    out = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    record = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}
    return out.returncode, record, out.stderr


def main():
    binary = sys.argv[1]
    serve = subprocess.Popen([binary, "serve", "--echo", "127.0.0.1:0", "--sink", "127.0.0.1:0", "--max-seconds", "60"],
                             stdout=subprocess.PIPE, text=True)
    failures = []

    def check(name, ok, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}", flush=True)
        if not ok:
            failures.append(name)

    try:
        words = serve.stdout.readline().split()
        echo = int(words[words.index("echo") + 1].rsplit(":", 1)[1])
        sink = int(words[words.index("sink") + 1].rsplit(":", 1)[1])

        clean_sink, clean_echo = Relay(sink), Relay(echo)
        code, r, err = bench(binary, "throughput", "--target", f"127.0.0.1:{clean_sink.port}", "--streams", 3,
                             "--bytes", 3_000_001, "--verify")
        check("clean relay: throughput --verify passes", code == 0 and r.get("verify_failures") == 0
              and r.get("bytes") == 9_000_003, err.strip())
        code, r, err = bench(binary, "latency", "--target", f"127.0.0.1:{clean_echo.port}", "--requests", 200,
                             "--warmup", 20, "--size", 100)
        check("clean relay: latency passes", code == 0 and r.get("count") == 200 and r.get("mismatches") == 0,
              err.strip())
        code, r, err = bench(binary, "hold", "--target", f"127.0.0.1:{clean_echo.port}", "--connections", 20,
                             "--max-seconds", 0.5)
        check("clean relay: hold verifies and holds", code == 0 and r.get("opened") == 20, err.strip())

        bad_sink = Relay(sink, corrupt_at=16 + 1_234_567)  # past the 16-byte request header
        code, r, err = bench(binary, "throughput", "--target", f"127.0.0.1:{bad_sink.port}", "--streams", 1,
                             "--bytes", 3_000_000, "--verify")
        check("one flipped byte: throughput --verify fails with a hash mismatch",
              code == 1 and r.get("verify_failures") == 1 and "hash mismatch" in r.get("first_error", ""), err.strip())
        bad_echo = Relay(echo, corrupt_at=5 * 64 + 17)  # inside the sixth request
        code, r, err = bench(binary, "latency", "--target", f"127.0.0.1:{bad_echo.port}", "--requests", 100,
                             "--warmup", 0, "--size", 64)
        check("one flipped byte: latency reports a mismatched echo", code == 1 and r.get("mismatches") == 1,
              err.strip())
    finally:
        serve.terminate()
        serve.wait(10)
    print(f"{5 - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
