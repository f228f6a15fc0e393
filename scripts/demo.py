#!/usr/bin/env python3
"""The main job: a gateway, an agent and a demo service on loopback, with traffic going through the tunnel.

  service (echo, 127.0.0.1:S) <- agent <== tunnel (127.0.0.1:T) ==> gateway <- public client (127.0.0.1:P)
  web sites app/api (HTTP)    <-                                     gateway <- browser (HTTP port H, by Host)

Started by scripts/demo.sh after the build. Prints each step; exits 0 when every check passed.
  --forever   keep everything running after the demonstration, until Ctrl-C
"""
import hashlib
import http.client
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loopback_util import free_port, wait_for  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, os.environ.get("RINGTUN_BUILD", "build"))
GATEWAY = os.path.join(BUILD, "src/gateway/ringtun-gateway")
AGENT = os.path.join(BUILD, "src/edge-agent/ringtun-agent")
ECHO = os.path.join(BUILD, "perf/echo/ringtun-echo")
TOKEN = "demo-token"


def say(text):
    print(text, flush=True)


class Process:
    def __init__(self, name, argv, logdir):
        self.name = name
        self.log_path = os.path.join(logdir, name + ".log")
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def round_trip(port, payload):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.perf_counter()
        # Send from a thread: the echo must be read while sending, or flow control (rightly) stalls both.
        sender = threading.Thread(target=c.sendall, args=(payload,))
        sender.start()
        got = bytearray()
        while len(got) < len(payload):
            chunk = c.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        sender.join()
        return bytes(got), time.perf_counter() - start


def web_site(label):
    """A tiny HTTP/1.1 site on a free loopback port (a thread of this process): answers every GET with its label
    and the X-Forwarded-For the gateway added."""
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = f"{label}: you asked for {self.path} (X-Forwarded-For {self.headers.get('X-Forwarded-For')})\n"
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    forever = "--forever" in sys.argv[1:]
    for path in (GATEWAY, AGENT, ECHO):
        if not os.access(path, os.X_OK):
            say(f"error: {path} is missing: build first (bash scripts/demo.sh does)")
            return 1
    logdir = tempfile.mkdtemp(prefix="ringtun-demo-")
    service_port, public_port = free_port(), free_port()
    procs = []
    try:
        say(f"1. demo service: an echo server on 127.0.0.1:{service_port}")
        procs.append(Process("service", [ECHO, "serve", "--listen", f"127.0.0.1:{service_port}"], logdir))

        say("2. ringtun-gateway: tunnel port for agents on 127.0.0.1 (a free port), 2 cores, TLS 1.3 with a")
        say("   self-signed certificate it generates on its first run")
        say("   and a shared HTTP port (--http-listen) where requests are routed by their Host header,")
        say("   and its admin endpoint (--admin-listen): Prometheus /metrics, the admin API and a live dashboard")
        gateway = Process("gateway", [GATEWAY, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
                                      "--admin-listen", "127.0.0.1:0",
                                      "--token", TOKEN, "--allow-hosts", "*.demo.test", "--threads", "2",
                                      "--state-dir", os.path.join(logdir, "gateway-state")], logdir)
        procs.append(gateway)
        tunnel_port = int(wait_for(lambda: (re.search(r"for agents on \S+ \(port (\d+)\)", gateway.text()) or
                                            [None, None])[1], 10, "the gateway to listen"))
        http_port = int(re.search(r"shared HTTP port on \S+ \(port (\d+)\)", gateway.text()).group(1))
        fingerprint = re.search(r"fingerprint (sha256:[0-9a-f]{64})", gateway.text()).group(1)
        admin_url = re.search(r"admin endpoint: (http://\S+)", gateway.text()).group(1)
        tls_line = re.search(r"TLS 1\.3 with (wolfSSL \S+ \([^)]*\))", gateway.text())
        say(f"   listening for agents on 127.0.0.1:{tunnel_port}, {tls_line.group(1) if tls_line else 'TLS'}")
        say(f"   certificate fingerprint {fingerprint}")

        sites = {name: web_site(name) for name in ("app.demo.test", "api.demo.test")}
        say(f"3. ringtun-agent: exposes the service as public port {public_port} of the gateway, and two web sites")
        say(f"   (127.0.0.1:{sites['app.demo.test'].server_port} and 127.0.0.1:{sites['api.demo.test'].server_port})"
            f" as app.demo.test and api.demo.test on the HTTP port {http_port}")
        say("   it verifies the gateway by that fingerprint (--gateway-fingerprint)")
        agent = Process("agent", [AGENT, "--gateway", f"127.0.0.1:{tunnel_port}", "--token", TOKEN,
                                  "--agent-id", "demo-edge", "--threads", "2", "--gateway-fingerprint", fingerprint,
                                  "--expose", f"tcp:demo@{public_port}=127.0.0.1:{service_port}"] +
                        [arg for name, site in sites.items()
                         for arg in ("--expose", f"http:{name}=127.0.0.1:{site.server_port}")], logdir)
        procs.append(agent)
        wait_for(lambda: agent.text().count(" ready") >= 2, 10, "the agent's two tunnel connections")
        cipher = re.search(r"(TLSv1\.3 [A-Z0-9_-]+)", agent.text())
        say(f"   two tunnel connections up (one per gateway core), {cipher.group(1) if cipher else 'TLS'}")

        say(f"4. a public client talks to 127.0.0.1:{public_port}; every byte crosses the tunnel and back")
        for i, text in enumerate(["hello through the tunnel", "multiplexed over io_uring", "and back again"]):
            payload = f"{text} #{i + 1}".encode()
            got, seconds = round_trip(public_port, payload)
            ok = got == payload
            say(f"   sent {payload.decode()!r:34} echoed {got.decode(errors='replace')!r:34} "
                f"{'ok' if ok else 'MISMATCH'}  {seconds * 1e6:7.0f} us")
            if not ok:
                return 1
        blob = os.urandom(32 * 1024 * 1024)
        got, seconds = round_trip(public_port, blob)
        same = hashlib.sha256(got).digest() == hashlib.sha256(blob).digest()
        say(f"   32 MiB of random bytes: SHA-256 {'equal' if same else 'DIFFERENT'} after the round trip, "
            f"{2 * len(blob) / seconds / 1e6:.0f} MB/s both ways (Python client)")
        if not same:
            return 1

        say(f"5. two host names on one HTTP port ({http_port}), on one keep-alive connection:")
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        for name in ("app.demo.test", "api.demo.test", "app.demo.test", "nobody.demo.test"):
            conn.request("GET", "/hello", headers={"Host": name})
            response = conn.getresponse()
            text = response.read().decode(errors="replace").strip()
            say(f"   Host: {name:17} -> {response.status} {text}")
            expected = 404 if name.startswith("nobody") else 200
            if response.status != expected or (expected == 200 and not text.startswith(name)):
                return 1
            if response.will_close:
                conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        say(f"   (try it: curl -H 'Host: app.demo.test' http://127.0.0.1:{http_port}/ with --forever)")

        say(f"6. what the gateway counted, from its admin endpoint {admin_url}metrics (dashboard: {admin_url}):")
        with urllib.request.urlopen(admin_url + "metrics", timeout=10) as response:
            metrics = response.read().decode()
        shown = 0
        for line in metrics.splitlines():
            if re.match(r"ringtun_(agents_connected|service_bytes_total|http_requests_total)", line):
                say("   " + line)
                shown += 1
        demo_in = re.search(r'ringtun_service_bytes_total\{[^}]*service="demo"[^}]*direction="in"\} (\d+)', metrics)
        if shown == 0 or not demo_in or int(demo_in.group(1)) < len(blob):
            say("   the counters do not show the traffic that went through")
            return 1

        say("7. latency through the tunnel (64-byte ping-pong, ringtun-echo latency):")
        out = subprocess.run([ECHO, "latency", "--target", f"127.0.0.1:{public_port}", "--requests", "5000",
                              "--warmup", "500"], capture_output=True, text=True, timeout=60)
        for line in out.stdout.strip().splitlines():
            say("   " + line)
        if out.returncode != 0:
            say(out.stderr)
            return 1

        if forever:
            say(f"\nRunning until Ctrl-C. Try: python3 -c \"import socket; c=socket.create_connection(('127.0.0.1',"
                f"{public_port})); c.sendall(b'hi'); print(c.recv(9))\"   (logs in {logdir})")
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        say("8. stopping: agent, gateway and service get SIGTERM and drain")
        codes = {p.name: p.stop() for p in reversed(procs)}
        procs = []
        say("   exit codes: " + ", ".join(f"{name} {code}" for name, code in codes.items()))
        if codes["agent"] != 0 or codes["gateway"] != 0:
            return 1
        say(f"done: the tunnel carried every byte intact. Logs: {logdir}")
        return 0
    except Exception as error:  # a readable failure, with the logs that explain it
        say(f"demo failed: {error}")
        for p in procs:
            say(f"--- {p.name} log (last lines) ---")
            say("\n".join(p.text().splitlines()[-15:]))
        return 1
    finally:
        for p in procs:
            p.stop()


if __name__ == "__main__":
    sys.exit(main())
