#!/usr/bin/env python3
"""How long the gateway's admin endpoint takes to answer with 10,000 services that all have counters.

    python3 perf/metrics_render.py [--build DIR] [--agents 10] [--per-agent 1000] [--rounds 20] [--out FILE]

One gateway (2 cores, plaintext tunnels, a shared HTTP port, the admin endpoint on loopback), one local HTTP service
(200 "ok" with keep-alive, on one asyncio thread), and 10 agents with 1,000 http services each
(h<agent>-<i>.bench.test, from a JSON --config per agent). Per-service series only appear once a service has had a
connection, so one request goes to every host through the gateway's HTTP port first; the script then checks that
/api/v1/services counts every service and /metrics holds every series it should, and times (client side: request
sent to last body byte read, on one keep-alive connection, after one warm-up request that is not counted):

    GET /metrics, GET /api/v1/services?limit=100, GET /api/v1/services?filter=h7-999, GET /api/v1/agents

Memory: the gateway's VmRSS before any agent connects, once every service is registered, and after the requests
(so the per-service cost of the route table and of the counters can be told apart; the second also holds the
agents' tunnel connections). The machine's load average is printed with the results because this box is shared;
compare runs taken at the same load.

Every process started here runs in its own process group and is killed on exit, whatever the exit; every step has
a time limit and the whole run another (--timeout), so a hang fails with a message naming the step.
"""
import argparse
import asyncio
import atexit
import http.client
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HOST = '127.0.0.1'
TOKEN = 'metrics-bench'
DOMAIN = 'bench.test'
CHILDREN = []  # Popen objects, each the leader of its own process group


def kill_children():
    for p in CHILDREN:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass


def fail(message):
    raise SystemExit('metrics_render: ' + message)


T0 = time.monotonic()


def step(text):
    """A progress line on stderr, so a slow step shows which one it is."""
    print('[%6.1f s] %s' % (time.monotonic() - T0, text), file=sys.stderr, flush=True)


def load_average():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    fail('no VmRSS for pid %d' % pid)


def start(argv, log_path):
    log = open(log_path, 'w')
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    log.close()
    CHILDREN.append(p)
    return p


def wait_for(path, pattern, timeout, proc, what):
    """The first match of pattern in the log at path; fails if proc exits or timeout seconds pass first."""
    rx = re.compile(pattern, re.M)
    deadline = time.monotonic() + timeout
    while True:
        with open(path, errors='replace') as f:
            m = rx.search(f.read())
        if m:
            return m
        if proc.poll() is not None:
            fail('%s: %s exited (status %s) first; see %s' % (what, proc.args[0], proc.returncode, path))
        if time.monotonic() > deadline:
            fail('%s: no /%s/ in %s within %.0f s' % (what, pattern, path, timeout))
        time.sleep(0.02)


class OkService:
    """The local service behind every http service: 200 "ok" with Content-Length, keep-alive, on one asyncio thread.

    The agent keeps its connections to a local service open between requests, one or more per service, so after a
    request per service this holds some 10,000 idle connections: a thread per connection (http.server's threading
    mix-in) would mean 10,000 threads on a shared 2-core box, hence one event loop."""

    RESPONSE = b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok'

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self.serve, HOST, 0, backlog=1024, limit=64 * 1024))
        self.port = self.server.sockets[0].getsockname()[1]
        self.connections = 0  # accepted so far (read from the main thread: an int, good enough for a report)
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    async def serve(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b'\r\n\r\n')
                m = re.search(rb'(?im)^content-length:\s*(\d+)\s*$', head)
                if m:
                    await reader.readexactly(int(m.group(1)))
                writer.write(self.RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()


def admin_get(conn, path, timeout_s):
    """GET path on the keep-alive admin connection: (status, body, seconds from sending to the last byte, seconds
    to the response head). The gateway renders the whole body before it sends the head, so the second is close to
    the render time; the first adds moving the body over loopback and reading it here."""
    t0 = time.perf_counter()
    conn.request('GET', path)
    response = conn.getresponse()
    t_head = time.perf_counter()
    body = response.read()
    elapsed = time.perf_counter() - t0
    if elapsed > timeout_s:
        fail('GET %s took %.1f s (limit %.0f s)' % (path, elapsed, timeout_s))
    return response.status, body, elapsed, t_head - t0


def drive_requests(http_port, hosts, parallel, timeout_s):
    """One GET per host through the gateway's HTTP port, on `parallel` keep-alive connections. Returns failures."""
    failures = []
    lock = threading.Lock()
    chunks = [hosts[i::parallel] for i in range(parallel)]
    deadline = time.monotonic() + timeout_s

    def worker(chunk):
        conn = http.client.HTTPConnection(HOST, http_port, timeout=10)
        try:
            for host in chunk:
                if time.monotonic() > deadline:
                    with lock:
                        failures.append((host, 'out of time'))
                    return
                try:
                    conn.request('GET', '/', headers={'Host': host})
                    response = conn.getresponse()
                    body = response.read()
                    if response.status != 200 or body != b'ok':
                        with lock:
                            failures.append((host, '%d %r' % (response.status, body[:80])))
                    if response.will_close:
                        conn.close()
                except (OSError, http.client.HTTPException) as e:
                    with lock:
                        failures.append((host, repr(e)))
                    conn.close()
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 15)
    if any(t.is_alive() for t in threads):
        fail('requests through the HTTP port did not finish within %.0f s' % timeout_s)
    return failures


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--build', help='build directory holding src/gateway and src/edge-agent (default: the repo\'s '
                    'build-release, else build)')
    ap.add_argument('--agents', type=int, default=10)
    ap.add_argument('--per-agent', type=int, default=1000, help='http services per agent (at most 1024)')
    ap.add_argument('--rounds', type=int, default=20, help='timed requests per path')
    ap.add_argument('--parallel', type=int, default=4, help='client connections sending the per-host requests')
    ap.add_argument('--timeout', type=float, default=600, help='limit for the whole run, seconds')
    ap.add_argument('--out', help='also write the markdown table here')
    ap.add_argument('--keep-logs', action='store_true', help='keep the logs and configs after a run that passed')
    args = ap.parse_args()
    if not 1 <= args.agents <= 100 or not 8 <= args.per_agent <= 1000:
        fail('--agents 1..100 and --per-agent 8..1000 (the filtered query asks for h7-999 style names)')

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if args.build:
        build = os.path.abspath(args.build)
    else:
        build = next((os.path.join(root, d) for d in ('build-release', 'build')
                      if os.path.exists(os.path.join(root, d, 'src/gateway/ringtun-gateway'))), None)
        if build is None:
            fail('no build-release/ or build/ with the binaries under %s; give --build DIR' % root)
    gateway_bin = os.path.join(build, 'src/gateway/ringtun-gateway')
    agent_bin = os.path.join(build, 'src/edge-agent/ringtun-agent')
    for b in (gateway_bin, agent_bin):
        if not os.access(b, os.X_OK):
            fail('%s is missing; build it (ninja -C %s src/gateway/ringtun-gateway src/edge-agent/ringtun-agent)'
                 % (b, build))

    # A hang anywhere ends the run with a message rather than holding the machine; the children die with us.
    def on_alarm(signum, frame):
        fail('the run took longer than --timeout %.0f s' % args.timeout)

    def on_term(signum, frame):
        fail('stopped by signal %d' % signum)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    signal.alarm(int(args.timeout))
    atexit.register(kill_children)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    work = tempfile.mkdtemp(prefix='ringtun-metrics-render-')
    total_services = args.agents * args.per_agent
    load_before = load_average()
    print('build: %s' % build)
    print('logs: %s' % work)
    print('load average before: %s' % load_before)

    step('starting the local service and the gateway')
    service = OkService()
    local = '%s:%d' % (HOST, service.port)

    gw_log = os.path.join(work, 'gateway.log')
    gw = start([gateway_bin, '--listen', HOST + ':0', '--threads', '2', '--insecure-plaintext',
                '--token', TOKEN, '--allow-hosts', '*.' + DOMAIN,
                '--http-listen', HOST + ':0', '--admin-listen', HOST + ':0',
                '--state-dir', os.path.join(work, 'state')], gw_log)
    tunnel_port = int(wait_for(gw_log, r'listening for agents on \S+ \(port (\d+)\)', 15, gw, 'gateway start').group(1))
    http_port = int(wait_for(gw_log, r'shared HTTP port on \S+ \(port (\d+)\)', 5, gw, 'gateway start').group(1))
    admin_port = int(wait_for(gw_log, r'admin endpoint: http://[^/]*:(\d+)/', 5, gw, 'gateway start').group(1))
    admin = http.client.HTTPConnection(HOST, admin_port, timeout=60)
    deadline = time.monotonic() + 15
    while admin_get(admin, '/ready', 10)[0] != 200:
        if time.monotonic() > deadline:
            fail('gateway start: /ready is not 200 within 15 s; see %s' % gw_log)
        time.sleep(0.05)
    rss_start = rss_kib(gw.pid)

    step('starting %d agents' % args.agents)
    # Agents: every one starts at once (the gateway takes the claims concurrently), then each must report all served.
    agents = []
    t_register = time.monotonic()
    for a in range(args.agents):
        config = {'services': [{'name': 'h%d-%d' % (a, i), 'kind': 'http', 'host': 'h%d-%d.%s' % (a, i, DOMAIN),
                                'local': local} for i in range(args.per_agent)]}
        config_path = os.path.join(work, 'agent-%d.json' % a)
        with open(config_path, 'w') as f:
            json.dump(config, f)
        log = os.path.join(work, 'agent-%d.log' % a)
        agents.append((start([agent_bin, '--config', config_path, '--gateway', '%s:%d' % (HOST, tunnel_port),
                              '--token', TOKEN, '--agent-id', 'bench-%d' % a, '--threads', '1',
                              '--insecure-plaintext'], log), log))
    for p, log in agents:
        m = wait_for(log, r'(\d+) service\(s\) claimed in ([\d.]+) ms: (\d+) served', 60, p, 'agent registration')
        if int(m.group(1)) != args.per_agent or int(m.group(3)) != args.per_agent:
            fail('agent registration: %s of %s services served (%d expected); see %s'
                 % (m.group(3), m.group(1), args.per_agent, log))
    register_s = time.monotonic() - t_register
    status, body, _, _ = admin_get(admin, '/api/v1/services?limit=1', 30)
    if status != 200 or json.loads(body)['total'] != total_services:
        fail('/api/v1/services: status %d, total %s after registration (%d expected)'
             % (status, json.loads(body).get('total') if status == 200 else '?', total_services))
    time.sleep(0.5)  # let the allocator settle after the burst of claims before reading memory
    rss_registered = rss_kib(gw.pid)

    step('one request per host through the HTTP port')
    # One request per host, so that every service has counters (and so series in /metrics).
    hosts = ['h%d-%d.%s' % (a, i, DOMAIN) for a in range(args.agents) for i in range(args.per_agent)]
    t_requests = time.monotonic()
    failures = drive_requests(http_port, hosts, args.parallel, 300)
    requests_s = time.monotonic() - t_requests
    if failures:
        fail('%d of %d requests through the HTTP port failed, e.g. %s' % (len(failures), len(hosts), failures[:3]))
    time.sleep(0.5)
    rss_requests = rss_kib(gw.pid)

    step('checking /metrics and the services API')
    # Every service must show up: 4 per-service families + 2 bytes directions + the 2xx line of its http requests.
    status, body, _, _ = admin_get(admin, '/metrics', 60)
    text = body.decode()
    counts = {
        'ringtun_service_': (len(re.findall(r'^ringtun_service_\w+\{', text, re.M)), 6 * total_services),
        'ringtun_http_requests_total': (len(re.findall(r'^ringtun_http_requests_total\{[^}]*code="2xx"', text, re.M)),
                                        total_services),
        'ringtun_agent_bytes_total': (len(re.findall(r'^ringtun_agent_bytes_total\{', text, re.M)), 2 * args.agents),
    }
    for family, (got, want) in counts.items():
        if got != want:
            fail('/metrics: %d %s series, %d expected' % (got, family, want))
    opened = re.findall(r'^ringtun_service_streams_opened_total\{[^}]*\} (\d+)$', text, re.M)
    if sum(int(v) for v in opened) != total_services:
        fail('/metrics: %d streams opened over all services, %d expected' % (sum(int(v) for v in opened),
                                                                            total_services))
    series = sum(1 for line in text.splitlines() if line and not line.startswith('#'))
    status, body, _, _ = admin_get(admin, '/api/v1/services?filter=h7-999', 30)
    if args.agents > 7 and args.per_agent == 1000 and json.loads(body)['total'] != 1:
        fail('/api/v1/services?filter=h7-999: total %s, 1 expected' % json.loads(body)['total'])

    step('timing the admin endpoint')
    # The timed part.
    paths = ['/metrics', '/api/v1/services?limit=100', '/api/v1/services?filter=h7-999', '/api/v1/agents']
    rows = []
    for path in paths:
        admin_get(admin, path, 60)  # warm-up, not counted
        times, heads, size = [], [], 0
        for _ in range(args.rounds):
            status, body, elapsed, head = admin_get(admin, path, 60)
            if status != 200:
                fail('GET %s: status %d' % (path, status))
            times.append(elapsed * 1000)
            heads.append(head * 1000)
            size = len(body)
        rows.append((path, statistics.median(times), percentile(times, 0.9), min(times), max(times),
                     statistics.median(heads), size))
    if gw.poll() is not None:
        fail('the gateway exited during the run; see %s' % gw_log)
    load_after = load_average()

    per_service_registered = (rss_registered - rss_start) * 1024 / total_services
    per_service_counted = (rss_requests - rss_registered) * 1024 / total_services
    lines = [
        '%d services (%d agents x %d http services), every one with counters; gateway --threads 2, plaintext '
        'tunnels; %d requests per path after one warm-up, one keep-alive connection, client-side time.'
        % (total_services, args.agents, args.per_agent, args.rounds),
        '',
        '| request | median ms | p90 ms | min ms | max ms | head median ms | bytes |',
        '|---|---:|---:|---:|---:|---:|---:|',
    ]
    for path, med, p90, lo, hi, head, size in rows:
        lines.append('| `GET %s` | %.2f | %.2f | %.2f | %.2f | %.2f | %d |' % (path, med, p90, lo, hi, head, size))
    lines += [
        '',
        '| gateway VmRSS | KiB | per service |',
        '|---|---:|---:|',
        '| started, no agent | %d | |' % rss_start,
        '| %d services registered | %d | %.0f B |' % (total_services, rss_registered, per_service_registered),
        '| after one request per service | %d | +%.0f B |' % (rss_requests, per_service_counted),
        '',
        '/metrics: %d samples; registration of all agents %.1f s; %d requests through the HTTP port %.1f s '
        '(%d connections; the agents opened %d connections to the local service).'
        % (series, register_s, len(hosts), requests_s, args.parallel, service.connections),
        '"head": time to the response head, about the render time (the body is built before the head is sent).',
        'load average (1, 5, 15 min): before %s; after %s.' % (load_before, load_after),
    ]
    report = '\n'.join(lines) + '\n'
    print(report, end='')
    if args.out:
        with open(args.out, 'w') as f:
            f.write(report)
    step('done; stopping')
    admin.close()
    kill_children()
    if not args.keep_logs:
        shutil.rmtree(work, ignore_errors=True)  # a failed run keeps them: its message names the log to read
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    finally:
        kill_children()
