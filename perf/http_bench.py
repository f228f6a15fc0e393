#!/usr/bin/env python3
"""Shared public ports: HTTP routed by Host and TLS routed by SNI, against ringtun's tcp: route and the peers.

    python3 perf/http_bench.py [--quick] [--rounds N] [--out DIR] [--build DIR] [--threads N] [--no-tls-tunnel]

Needs a release build of ringtun (default build-release: meson setup build-release -Dbuildtype=release -Db_lto=true
-Dwolfssl=system && ninja -C build-release), wrk, nginx (nginx-light), haproxy and openssl. frp's vhostHTTPPort is
measured only when FRPS_BIN and FRPC_BIN are set (reported and skipped otherwise).

What runs, all on 127.0.0.1:
  nginx          1 worker process (the other core is left to the load and the relays), a 1,024-byte page at /,
                 keep-alive with keepalive_requests 10,000,000; plain HTTP and TLS (self-signed P-256 certificate
                 for localhost, made with the openssl CLI in the temporary directory)
  direct         wrk -> nginx
  ringtun-tcp    gateway + agent, --expose tcp:PORT=127.0.0.1:NGINX (and one for nginx's TLS port)
  ringtun-http   the same processes: --expose http:bench.test=127.0.0.1:NGINX on the gateway's --http-listen
                 (a tunnel stream per request; the agent keeps idle keep-alive connections to nginx)
  ringtun-sni    the same processes: --expose tls:localhost=127.0.0.1:NGINX_TLS on the gateway's --tls-listen
  *-tlstun       the same three with the default TLS 1.3 tunnel instead of --insecure-plaintext (--no-tls-tunnel
                 leaves them out)
  haproxy-http   one haproxy in HTTP mode: acl on hdr(host) bench.test, use_backend, http-reuse safe; nbthread =
                 ringtun's --threads
  frp-vhost      frps vhostHTTPPort + frpc (type http, customDomains bench.test), when FRPS_BIN/FRPC_BIN are set
  gateway and agent run --threads N (default: RINGTUN_THREADS or the number of CPUs).

Scenarios, each a wrk run (-t1 -c32 --latency, 5 s; 2 s with --quick), every HTTP request with "Host: bench.test":
  keepalive      keep-alive HTTP/1.1
  close          a new connection per request (-H 'Connection: close')
  https          keep-alive HTTPS to https://localhost:PORT/ (wrk sends the SNI of the URL's host): direct,
                 ringtun-tcp (to nginx's TLS port), ringtun-sni
Rounds (3 by default, 2 with --quick) start every system afresh and run scenario by scenario, the systems in an
order rotated each round, so drift on a shared machine falls on all of them. The table gives medians (min-max).

Idle keep-alive memory: on each round's fresh processes, before any load, 2,000 client connections (--idle-conns)
to the gateway's HTTP port each send one request (Host: bench.test), read the response and stay open; the gateway's
VmRSS before and after, (after - before) / N in KiB. The same against haproxy-http. The agent's growth is listed too.

Route lookups: when the build has perf/micro/route_bench, its output (10,000 exact host names + 100 wildcards, ns
per find_host) is included.

Writes summary.md and results.json to --out (default docs/perf/results/<date>_http/) and prints the summary.
"""
import argparse
import datetime
import json
import os
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "lib"))
import report  # noqa: E402
import systems  # noqa: E402
from systems import Process, free_port, wait_for  # noqa: E402

HOST = "bench.test"
TLS_HOST = "localhost"
PAGE_BYTES = 1024
TOKEN = systems.TOKEN

PROFILES = {
    "quick": dict(rounds=2, seconds=2, idle_conns=500),
    "full": dict(rounds=3, seconds=5, idle_conns=2000),
}
SCENARIOS = ("keepalive", "close", "https")


def say(text):
    print(text, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def vm_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---- one HTTP exchange (readiness probes and the idle-connection test) ----

def read_response(sock):
    """Reads one HTTP/1.1 response with a Content-Length body; returns the status line, or '' on EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return ""
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return ""
        body += chunk
    return head.split(b"\r\n", 1)[0].decode(errors="replace")


def request(port, host=HOST, tls_name=None):
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=2)
        sock = raw
        if tls_name:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(raw, server_hostname=tls_name)
        with sock:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            return read_response(sock)
    except (OSError, ssl.SSLError, ValueError):
        return ""


def ok(port, host=HOST, tls_name=None):
    return " 200 " in request(port, host, tls_name) + " "


# ---- nginx ----

def start_nginx(workdir):
    www = os.path.join(workdir, "www")
    os.chmod(workdir, 0o755)  # nginx's worker drops root for nobody/www-data and must read the page
    for sub in ("www", "tmp", "logs"):
        os.makedirs(os.path.join(workdir, sub), exist_ok=True)
    with open(os.path.join(www, "index.html"), "wb") as f:
        f.write(bytes(ord("a") + (i % 26) for i in range(PAGE_BYTES)))
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    http, https = free_port(), free_port()
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1;
worker_rlimit_nofile 20000;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log warn;
events {{ worker_connections 16000; }}
http {{
  access_log off;
  tcp_nodelay on;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path {workdir}/tmp; proxy_temp_path {workdir}/tmp; fastcgi_temp_path {workdir}/tmp;
  uwsgi_temp_path {workdir}/tmp; scgi_temp_path {workdir}/tmp;
  server {{ listen 127.0.0.1:{http}; server_name {HOST} localhost; root {www}; }}
  server {{
    listen 127.0.0.1:{https} ssl; server_name localhost; root {www};
    ssl_certificate {cert}; ssl_certificate_key {key};
  }}
}}
""")
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    nginx = Process("nginx", [binary, "-p", workdir, "-c", conf, "-g", "daemon off;"], workdir)
    wait_for(lambda: (nginx.alive() or _raise(f"nginx exited: {nginx.text()}")) and ok(http) and
             ok(https, tls_name=TLS_HOST), 10, "nginx")
    return {"http": http, "https": https}, nginx


def _raise(text):
    raise RuntimeError(text)


# ---- the systems: each start returns (processes, {system: {scenario: (url, host_header)}}, pids to measure) ----

class Group:
    def __init__(self, name, processes, targets, version="", rss=None):
        self.name = name
        self.processes = processes
        self.targets = targets      # system -> scenario -> url
        self.version = version
        self.rss = rss or {}        # label -> (pid, http port to hold idle connections on, other pids to list)

    def check_alive(self):
        dead = [p.name for p in self.processes if not p.alive()]
        if dead:
            raise RuntimeError(f"{self.name}: {', '.join(dead)} exited (logs in "
                               f"{os.path.dirname(self.processes[0].log_path)})")

    def stop(self):
        for p in reversed(self.processes):
            p.stop()


def start_direct(local, workdir, cfg):
    return Group("direct", [], {"direct": {
        "keepalive": f"http://127.0.0.1:{local['http']}/", "close": f"http://127.0.0.1:{local['http']}/",
        "https": f"https://{TLS_HOST}:{local['https']}/"}})


def start_ringtun(local, workdir, cfg, tls_tunnel):
    bins = cfg["ringtun"]
    suffix = "-tlstun" if tls_tunnel else ""
    threads = str(cfg["threads"])
    control, http_port, tls_port = free_port(), free_port(), free_port()
    state = os.path.join(workdir, "ringtun-state" + suffix)
    security = ["--state-dir", state] if tls_tunnel else ["--insecure-plaintext"]
    gateway = Process("ringtun-gateway" + suffix, [
        bins["gateway"], "--listen", f"127.0.0.1:{control}", "--token", TOKEN, "--allow-hosts", "*.test,localhost",
        "--threads", threads, "--log-level", "info", "--http-listen", f"127.0.0.1:{http_port}",
        "--tls-listen", f"127.0.0.1:{tls_port}"] + security, workdir)
    procs = [gateway]
    try:
        wait_for(lambda: (gateway.alive() or _raise(f"gateway exited: {gateway.text()}")) and
                 f"(port {http_port})" in gateway.text() and systems.port_open(control), 10, "ringtun-gateway")
        if tls_tunnel:
            security = ["--gateway-fingerprint", systems._cert_fingerprint(os.path.join(state, "gateway-cert.pem"))]
        pub_http, pub_https = free_port(), free_port()
        agent = Process("ringtun-agent" + suffix, [
            bins["agent"], "--gateway", f"127.0.0.1:{control}", "--token", TOKEN, "--threads", threads,
            "--agent-id", "bench", "--log-level", "warn",
            "--expose", f"tcp:{pub_http}=127.0.0.1:{local['http']}",
            "--expose", f"tcp:{pub_https}=127.0.0.1:{local['https']}",
            "--expose", f"http:{HOST}=127.0.0.1:{local['http']}",
            "--expose", f"tls:{TLS_HOST}=127.0.0.1:{local['https']}"] + security, workdir)
        procs.append(agent)
        group = Group("ringtun" + suffix, procs, {
            "ringtun-tcp" + suffix: {"keepalive": f"http://127.0.0.1:{pub_http}/",
                                     "close": f"http://127.0.0.1:{pub_http}/",
                                     "https": f"https://{TLS_HOST}:{pub_https}/"},
            "ringtun-http" + suffix: {"keepalive": f"http://127.0.0.1:{http_port}/",
                                      "close": f"http://127.0.0.1:{http_port}/"},
            "ringtun-sni" + suffix: {"https": f"https://{TLS_HOST}:{tls_port}/"},
        }, systems._version([bins["gateway"], "--version"]) + f", --threads {threads}" +
            (", TLS 1.3 tunnel" if tls_tunnel else ", plaintext tunnel"),
            {"ringtun-http" + suffix: (gateway.pid, http_port, {"agent": agent.pid})})
        wait_for(lambda: (group.check_alive() is None) and ok(pub_http) and ok(http_port) and
                 ok(pub_https, tls_name=TLS_HOST) and ok(tls_port, tls_name=TLS_HOST), 15,
                 f"ringtun{suffix} to relay every route")
        return group
    except Exception:
        for p in procs:
            p.stop()
        raise


def start_haproxy(local, workdir, cfg):
    binary = cfg["haproxy"]
    port = free_port()
    path = os.path.join(workdir, "haproxy-http.cfg")
    with open(path, "w") as f:
        f.write(f"""global
  maxconn 8000
  nbthread {cfg['threads']}
  log stdout format raw local0 err
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
  option dontlognull
frontend public
  bind 127.0.0.1:{port}
  acl h hdr(host) -i {HOST}
  use_backend nginx if h
backend nginx
  http-reuse safe
  server s1 127.0.0.1:{local['http']}
""")
    proc = Process("haproxy-http", [binary, "-db", "-f", path], workdir)
    group = Group("haproxy-http", [proc], {"haproxy-http": {"keepalive": f"http://127.0.0.1:{port}/",
                                                            "close": f"http://127.0.0.1:{port}/"}},
                  systems._version([binary, "-v"]) + f", nbthread {cfg['threads']}",
                  {"haproxy-http": (proc.pid, port, {})})
    try:
        wait_for(lambda: (group.check_alive() is None) and ok(port), 10, "haproxy")
    except Exception:
        group.stop()
        raise
    return group


def start_frp(local, workdir, cfg):
    bins = cfg["frp"]
    version = systems._version([bins["frps"], "--version"])
    control, vhost = free_port(), free_port()
    if systems._frp_uses_ini(version):
        server = ["[common]", "bind_addr = 127.0.0.1", f"bind_port = {control}", "proxy_bind_addr = 127.0.0.1",
                  f"vhost_http_port = {vhost}", f"token = {TOKEN}", "tcp_mux = true", "log_file = console",
                  "log_level = warn"]
        client = ["[common]", "server_addr = 127.0.0.1", f"server_port = {control}", f"token = {TOKEN}",
                  "tcp_mux = true", "login_fail_exit = true", "log_file = console", "log_level = warn", "",
                  "[web]", "type = http", "local_ip = 127.0.0.1", f"local_port = {local['http']}",
                  f"custom_domains = {HOST}"]
        ext = "ini"
    else:
        server = ['bindAddr = "127.0.0.1"', f"bindPort = {control}", 'proxyBindAddr = "127.0.0.1"',
                  f"vhostHTTPPort = {vhost}", 'auth.method = "token"', f'auth.token = "{TOKEN}"',
                  "transport.tcpMux = true", 'log.to = "console"', 'log.level = "warn"']
        client = ['serverAddr = "127.0.0.1"', f"serverPort = {control}", 'auth.method = "token"',
                  f'auth.token = "{TOKEN}"', "transport.tcpMux = true", "loginFailExit = true", 'log.to = "console"',
                  'log.level = "warn"', "", "[[proxies]]", 'name = "web"', 'type = "http"', 'localIP = "127.0.0.1"',
                  f"localPort = {local['http']}", f'customDomains = ["{HOST}"]']
        ext = "toml"
    paths = [os.path.join(workdir, f"frp{side}.{ext}") for side in "sc"]
    for path, lines in zip(paths, (server, client)):
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    frps = Process("frps", [bins["frps"], "-c", paths[0]], workdir)
    procs = [frps, systems.start_after_listen(frps, control, ["frpc", bins["frpc"], "-c", paths[1]], workdir)]
    group = Group("frp-vhost", procs, {"frp-vhost": {"keepalive": f"http://127.0.0.1:{vhost}/",
                                                     "close": f"http://127.0.0.1:{vhost}/"}}, "frp " + version,
                  {"frp-vhost": (frps.pid, vhost, {"frpc": procs[1].pid})})
    try:
        wait_for(lambda: (group.check_alive() is None) and ok(vhost), 15, "frp to route bench.test")
    except Exception:
        group.stop()
        raise
    return group


# ---- wrk ----

_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}
_BYTES = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def _micros(text):
    for unit in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * _UNITS[unit]
    return float(text)


def parse_wrk(stdout):
    out = {"rps": 0.0, "errors": 0, "non2xx": 0}
    lines = [l.strip() for l in stdout.splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("Requests/sec:"):
            out["rps"] = float(line.split()[1])
        elif line.startswith("Socket errors:"):
            out["errors"] = sum(int(w) for w in line.replace(",", " ").split() if w.isdigit())
        elif line.startswith("Non-2xx or 3xx responses:"):
            out["non2xx"] = int(line.split()[-1])
        elif line == "Latency Distribution":
            for l in lines[i + 1:i + 5]:
                pct, value = l.split()
                out["p" + pct.rstrip("%")] = _micros(value)
        elif " requests in " in line and line.endswith(" read"):
            words = line.replace(",", "").split()
            out["requests"] = int(words[0])
            size = words[-2]
            unit = next(u for u in sorted(_BYTES, key=len, reverse=True) if size.endswith(u))
            out["bytes_read"] = float(size[:-len(unit)]) * _BYTES[unit]
            out["bytes_per_request"] = out["bytes_read"] / max(out["requests"], 1)
    return out


def run_wrk(url, scenario, seconds, connections, logdir):
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"Host: {HOST}"]
    if scenario == "https":
        argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]  # Host from the URL: localhost
    if scenario == "close":
        argv += ["-H", "Connection: close"]
    argv.append(url)
    load = loadavg()[0]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    with open(os.path.join(logdir, "wrk.log"), "a") as log:
        log.write(" ".join(argv) + "\n" + out.stdout + out.stderr + "\n")
    record = parse_wrk(out.stdout)
    record.update(exit_code=out.returncode, argv=" ".join(argv), load_before=load, load_after=loadavg()[0])
    return record


# ---- idle keep-alive connections ----

def hold_idle(label, pid, port, others, n, logdir):
    """n client connections each send one request and stay open; VmRSS growth of `pid` (and `others`)."""
    for _ in range(20):  # warm: lazy one-time allocations of the first requests are not per connection
        request(port)
    time.sleep(0.3)
    base = vm_rss_kb(pid)
    base_others = {k: vm_rss_kb(p) for k, p in others.items()}
    socks, failed = [], 0
    req = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    try:
        for _ in range(n):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                socks.append(s)
                s.sendall(req)
                if " 200 " not in read_response(s) + " ":
                    failed += 1
            except OSError:
                failed += 1
        time.sleep(1.0)
        held = vm_rss_kb(pid)
        held_others = {k: vm_rss_kb(p) for k, p in others.items()}
    finally:
        for s in socks:
            s.close()
    if not base or not held:
        raise RuntimeError(f"{label}: the process exited while holding idle connections")
    record = {"scenario": "idle", "system": label, "connections": n, "failed": failed, "rss_before_kb": base,
              "rss_held_kb": held, "kib_per_conn": (held - base) / n}
    for k in others:
        record[f"{k}_kib_per_conn"] = (held_others[k] - base_others[k]) / n
    with open(os.path.join(logdir, "idle.log"), "a") as log:
        log.write(json.dumps(record) + "\n")
    return record


# ---- summary ----

def stat(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(value, digits=0):
    if value is None:
        return "-"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def cell(s, digits=0, spread=True):
    if not s:
        return "-"
    if spread and s["n"] > 1:
        return f"{fmt(s['median'], digits)} ({fmt(s['min'], digits)}-{fmt(s['max'], digits)})"
    return fmt(s["median"], digits)


RATIOS = [
    # label, (system, scenario), (system, scenario)
    ("http route / tcp route, keep-alive", ("ringtun-http", "keepalive"), ("ringtun-tcp", "keepalive")),
    ("http route / tcp route, new connection per request", ("ringtun-http", "close"), ("ringtun-tcp", "close")),
    ("http route / haproxy HTTP mode, keep-alive", ("ringtun-http", "keepalive"), ("haproxy-http", "keepalive")),
    ("http route / haproxy HTTP mode, new connection per request", ("ringtun-http", "close"),
     ("haproxy-http", "close")),
    ("TLS SNI route / tcp route to nginx TLS, keep-alive", ("ringtun-sni", "https"), ("ringtun-tcp", "https")),
    ("http route / frp vhost, keep-alive", ("ringtun-http", "keepalive"), ("frp-vhost", "keepalive")),
    ("tcp route / direct, keep-alive", ("ringtun-tcp", "keepalive"), ("direct", "keepalive")),
    ("http route / direct, keep-alive", ("ringtun-http", "keepalive"), ("direct", "keepalive")),
    ("TLS tunnel: http route / tcp route, keep-alive", ("ringtun-http-tlstun", "keepalive"),
     ("ringtun-tcp-tlstun", "keepalive")),
    ("TLS tunnel: http route / tcp route, new connection per request", ("ringtun-http-tlstun", "close"),
     ("ringtun-tcp-tlstun", "close")),
    ("TLS tunnel: SNI route / tcp route, keep-alive", ("ringtun-sni-tlstun", "https"),
     ("ringtun-tcp-tlstun", "https")),
]


def summarize(raw, system_order):
    # A run counts when wrk exited cleanly and completed requests; the others are listed as failed runs.
    runs = [r for r in raw if r.get("scenario") in SCENARIOS and r["exit_code"] == 0 and r.get("requests")]
    table = {}
    for r in runs:
        table.setdefault((r["system"], r["scenario"]), []).append(r)
    summary = {"wrk": [], "ratios": [], "idle": []}
    for scenario in SCENARIOS:
        for system in system_order:
            rows = table.get((system, scenario))
            if not rows:
                continue
            failed_runs = sum(1 for r in raw if r.get("scenario") == scenario and r.get("system") == system and
                              not (r["exit_code"] == 0 and r.get("requests")))
            summary["wrk"].append({
                "system": system, "scenario": scenario, "runs": len(rows), "failed_runs": failed_runs,
                "rps": stat([r["rps"] for r in rows]), "p50_us": stat([r.get("p50") for r in rows]),
                "p99_us": stat([r.get("p99") for r in rows]),
                "errors": sum(r["errors"] + r["non2xx"] for r in rows),
                "bytes_per_request": stat([r.get("bytes_per_request") for r in rows]),
            })
    for label, a, b in RATIOS:
        ra, rb = table.get(a), table.get(b)
        if not ra or not rb:
            continue
        by_round_b = {r["round"]: r["rps"] for r in rb}
        per_round = [r["rps"] / by_round_b[r["round"]] for r in ra if by_round_b.get(r["round"])]
        summary["ratios"].append({
            "label": label, "a": a, "b": b,
            "of_medians": statistics.median(r["rps"] for r in ra) / statistics.median(r["rps"] for r in rb),
            "per_round": stat(per_round)})
    idle = {}
    for r in raw:
        if r.get("scenario") == "idle":
            idle.setdefault(r["system"], []).append(r)
    for system, rows in idle.items():
        entry = {"system": system, "connections": rows[0]["connections"],
                 "failed": sum(r["failed"] for r in rows),
                 "kib_per_conn": stat([r["kib_per_conn"] for r in rows])}
        for k in rows[0]:
            if k.endswith("_kib_per_conn") and k != "kib_per_conn":
                entry[k] = stat([r[k] for r in rows])
        summary["idle"].append(entry)
    return summary


SCENARIO_TITLES = {
    "keepalive": "HTTP keep-alive (wrk -t1 -c32, Host: bench.test)",
    "close": "HTTP, a new connection per request (Connection: close)",
    "https": "HTTPS keep-alive to nginx's TLS port (SNI localhost)",
}


def markdown(summary, info, route_text, command):
    out = [f"# Shared HTTP/TLS ports: {info['date']}", "", "Command: `" + command + "`", ""]
    out += [f"- machine: {info['cpus']} CPUs, {info['cpu']}, kernel {info['kernel']}",
            f"- build: {info['build']}", f"- ringtun: {info.get('ringtun_version', '')}",
            f"- peers: {'; '.join(f'{k}: {v}' for k, v in info['versions'].items() if v)}",
            f"- {info['rounds']} rounds x {info['seconds']} s per wrk run; nginx 1 worker; wrk -t1 -c32; "
            f"ringtun --threads {info['threads']}, haproxy nbthread {info['threads']}",
            f"- load average (1 min) during the wrk runs: {info['load_min']:.2f}-{info['load_max']:.2f} "
            f"(median {info['load_median']:.2f}); at the end: {info['loadavg_end']}"]
    for skip in info["skipped"]:
        out.append(f"- skipped: {skip}")
    for failure in info["failures"]:
        out.append(f"- FAILED: {failure}")
    out.append("")
    for scenario in SCENARIOS:
        rows = [w for w in summary["wrk"] if w["scenario"] == scenario]
        if not rows:
            continue
        out += [f"## {SCENARIO_TITLES[scenario]}", "", "| system | req/s median (min-max) | p50 us | p99 us | "
                "bytes/req | runs | socket errors + non-2xx |", "|---|---|---|---|---|---|---|"]
        for w in rows:
            out.append(f"| {w['system']} | {cell(w['rps'])} | {cell(w['p50_us'], 0, False)} | "
                       f"{cell(w['p99_us'], 0, False)} | {cell(w['bytes_per_request'], 0, False)} | "
                       f"{w['runs']}" + (f" (+{w['failed_runs']} failed)" if w["failed_runs"] else "") +
                       f" | {w['errors']} |")
        out.append("")
    out += ["## Ratios (req/s)", "", "| ratio | of medians | per round, median (min-max) |", "|---|---|---|"]
    for r in summary["ratios"]:
        out.append(f"| {r['label']} | **{r['of_medians']:.2f}** | {cell(r['per_round'], 2)} |")
    out += ["", f"## RSS per idle keep-alive client connection", "",
            "| system | connections | KiB per connection, median (min-max) | growth of the other side | failed |", "|---|---|---|---|---|"]
    for e in summary["idle"]:
        also = ", ".join(f"{k.replace('_kib_per_conn', '')} {cell(v, 1)}" for k, v in e.items()
                         if k.endswith("_kib_per_conn") and k != "kib_per_conn")
        out.append(f"| {e['system']} | {e['connections']} | {cell(e['kib_per_conn'], 1)} | {also or '-'} | "
                   f"{e['failed']} |")
    if route_text:
        out += ["", "## Route lookups (perf/micro/route_bench)", "", "```", route_text.strip(), "```"]
    return "\n".join(out) + "\n"


def machine_info(build):
    flags = "unknown"
    try:
        opts = json.loads(subprocess.run(["meson", "introspect", build, "--buildoptions"], capture_output=True,
                                         text=True, timeout=30).stdout)
        want = ("buildtype", "b_lto", "b_ndebug", "optimization", "wolfssl", "cpp_args")
        flags = ", ".join(f"{o['name']}={o['value']}" for o in opts if o["name"] in want)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass
    info = report.machine_basics()
    info.update(build=f"{os.path.relpath(build, ROOT)} ({flags})", nginx=report.first_line(["nginx", "-v"]),
                wrk=report.first_line(["wrk", "--version"]))
    return info


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s runs, 500 idle connections")
    parser.add_argument("--rounds", type=int, help="override the profile's number of rounds")
    parser.add_argument("--seconds", type=int, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (default 32)")
    parser.add_argument("--idle-conns", type=int, help="idle keep-alive connections held (default 2000)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("RINGTUN_THREADS", os.cpu_count() or 1)),
                        help="ringtun --threads and haproxy nbthread (default RINGTUN_THREADS or CPUs)")
    parser.add_argument("--build", default=os.path.join(ROOT, "build-release"), help="ringtun release build")
    parser.add_argument("--no-tls-tunnel", action="store_true", help="leave out the TLS-tunnel variants")
    parser.add_argument("--out", help="output directory (default docs/perf/results/<date>_http/)")
    args = parser.parse_args()

    profile = dict(PROFILES["quick" if args.quick else "full"])
    for key in ("rounds", "seconds", "idle_conns"):
        if getattr(args, key):
            profile[key] = getattr(args, key)
    build = os.path.abspath(args.build)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H%M%S")
    outdir = args.out or os.path.join(ROOT, "docs", "perf", "results", stamp + ("_http-quick" if args.quick
                                                                                 else "_http"))
    os.makedirs(outdir, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 2,000 held connections here and in the relays

    cfg = {"threads": args.threads}
    for tool in ("wrk", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"http_bench: {tool} not found")
    gateway = os.path.join(build, "src/gateway/ringtun-gateway")
    agent = os.path.join(build, "src/edge-agent/ringtun-agent")
    if not (os.access(gateway, os.X_OK) and os.access(agent, os.X_OK)):
        sys.exit(f"http_bench: ringtun is not built in {build}")
    cfg["ringtun"] = {"gateway": gateway, "agent": agent}
    starters, skipped = [("direct", start_direct),
                         ("ringtun", lambda l, w, c: start_ringtun(l, w, c, False))], []
    if not args.no_tls_tunnel:
        starters.append(("ringtun-tlstun", lambda l, w, c: start_ringtun(l, w, c, True)))
    cfg["haproxy"] = os.environ.get("HAPROXY_BIN") or shutil.which("haproxy")
    if cfg["haproxy"]:
        starters.append(("haproxy-http", start_haproxy))
    else:
        skipped.append("haproxy-http: haproxy not found (HAPROXY_BIN)")
    if os.environ.get("FRPS_BIN") and os.environ.get("FRPC_BIN"):
        cfg["frp"] = {"frps": os.environ["FRPS_BIN"], "frpc": os.environ["FRPC_BIN"]}
        starters.append(("frp-vhost", start_frp))
    else:
        skipped.append("frp-vhost: FRPS_BIN and FRPC_BIN are not set (frp is not installed here)")
    for s in skipped:
        say(s)

    workdir = tempfile.mkdtemp(prefix="ringtun-http-bench-")
    say(f"http_bench: {profile['rounds']} round(s) x {profile['seconds']} s, {profile['idle_conns']} idle conns; "
        f"workdir {workdir}; load average {loadavg()}")
    local, nginx = start_nginx(workdir)
    started = time.time()
    raw, versions, system_order = [], {}, []
    try:
        for rnd in range(profile["rounds"]):
            logdir = os.path.join(workdir, f"r{rnd}")
            os.makedirs(logdir, exist_ok=True)
            groups = []
            if not nginx.alive():  # killed from outside (it happened once on the shared machine): a fresh one
                say(f"  round {rnd + 1}: nginx had exited; starting it again")
                local, nginx = start_nginx(os.path.join(workdir, f"nginx-r{rnd}"))
            try:
                for name, start in starters:
                    try:
                        groups.append(start(local, logdir, cfg))
                    except Exception as e:  # reported; the others still run
                        say(f"  round {rnd + 1} {name}: FAILED to start: {e}")
                        raw.append({"round": rnd, "system": name, "scenario": "failure", "error": str(e)})
                for g in groups:
                    versions[g.name] = g.version
                    for system in g.targets:
                        if system not in system_order:
                            system_order.append(system)
                # Idle connections first, on fresh processes.
                for g in groups:
                    for label, (pid, port, others) in g.rss.items():
                        try:
                            r = hold_idle(label, pid, port, others, profile["idle_conns"], logdir)
                        except RuntimeError as e:
                            say(f"  round {rnd + 1} idle {label}: FAILED: {e}")
                            raw.append({"round": rnd, "system": label, "scenario": "failure", "error": str(e)})
                            continue
                        r["round"] = rnd
                        raw.append(r)
                        say(f"  round {rnd + 1} idle {label:22} {r['kib_per_conn']:7.1f} KiB/conn"
                            f" (failed {r['failed']})")
                targets = [(system, g, urls) for g in groups for system, urls in g.targets.items()]
                shift = rnd % len(targets)
                targets = targets[shift:] + targets[:shift]
                dead = set()
                for scenario in SCENARIOS:
                    for system, g, urls in targets:
                        if scenario not in urls or g.name in dead:
                            continue
                        try:
                            g.check_alive()
                            if not nginx.alive():
                                raise RuntimeError("nginx exited")
                        except RuntimeError as e:  # reported; the others go on (a shared machine: see below)
                            say(f"  round {rnd + 1} {g.name}: FAILED: {e}")
                            raw.append({"round": rnd, "system": g.name, "scenario": "failure", "error": str(e)})
                            dead.add(g.name)
                            continue
                        r = run_wrk(urls[scenario], scenario, profile["seconds"], args.connections, logdir)
                        r.update(round=rnd, system=system, scenario=scenario)
                        raw.append(r)
                        say(f"  round {rnd + 1} {scenario:9} {system:22} {r['rps']:10,.0f} req/s  p50 "
                            f"{r.get('p50', 0):7.0f} us  p99 {r.get('p99', 0):7.0f} us  errors "
                            f"{r['errors'] + r['non2xx']}  load {r['load_after']:.2f}")
            finally:
                for g in groups:
                    g.stop()
    finally:
        nginx.stop()

    route_text = ""
    route_bin = os.path.join(build, "perf/micro/route_bench")
    if os.access(route_bin, os.X_OK):
        say("route_bench ...")
        out = subprocess.run([route_bin] + (["--quick"] if args.quick else []), capture_output=True, text=True,
                             timeout=600)
        route_text = out.stdout
    else:
        skipped.append(f"route_bench: not built in {build} (ninja -C {os.path.relpath(build, ROOT)} "
                       "perf/micro/route_bench)")

    info = machine_info(build)
    loads = [r[k] for r in raw if r.get("scenario") in SCENARIOS for k in ("load_before", "load_after")]
    info.update(rounds=profile["rounds"], seconds=profile["seconds"], idle_conns=profile["idle_conns"],
                threads=args.threads, connections=args.connections, versions=versions, skipped=skipped,
                ringtun_version=versions.get("ringtun", ""),
                failures=[f"round {r['round'] + 1} {r['system']}: {r['error']}" for r in raw
                          if r.get("scenario") == "failure"], workdir=workdir, elapsed_s=round(time.time() - started),
                load_min=min(loads, default=0), load_max=max(loads, default=0),
                load_median=statistics.median(loads) if loads else 0, loadavg_end=" ".join(map(str, loadavg())))
    summary = summarize(raw, system_order)
    command = "python3 perf/http_bench.py " + " ".join(sys.argv[1:])
    text = markdown(summary, info, route_text, command.strip())
    with open(os.path.join(outdir, "summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"info": info, "summary": summary, "raw": raw, "route_bench": route_text}, f, indent=1)
    say("")
    say(text)
    say(f"written: {os.path.relpath(outdir, ROOT)}/summary.md, results.json")
    failures = [r for r in raw if r.get("scenario") == "failure"]
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
