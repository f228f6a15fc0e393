#!/usr/bin/env python3
"""End-to-end tests of ringtun's operations surface: the admin endpoint (--admin-listen: /metrics, /healthz, /ready,
the JSON API, the dashboard page, the admin token), a real Prometheus server scraping it, the access log
(--access-log, --log-format, SIGHUP reopening) and systemd's sd_notify protocol. Real ringtun-gateway and
ringtun-agent processes on 127.0.0.1; clients: http.client and raw sockets, Debian's python3-prometheus-client
(the text-format parser), Debian's prometheus and headless chromium (dashboard_check.py).

Usage: test_ops.py SCENARIO | --list      (the harness is itest.py; the runner is test_tunnel.py's main)
Exit status 77 (skip): ops_prometheus without /usr/bin/prometheus, ops_dashboard without chromium.
"""
import json
import os
import random
import re
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tunnel as tt  # noqa: E402  (the scenario registry and the runner)
from itest import (  # noqa: E402
    GATEWAY_THREADS, HOST, KIB, MIB, TOKEN, Proc, admin_json, admin_request, connect, free_port, now, payload,
    raw_admin_exchange, recv_all, round_trip, say, sha, stream_chunks, stream_sha, wait_admin, wait_round_trip)

scenario = tt.scenario

SECRET = 'admin-s3cret'  # every --admin-token here
AGENT_ID = 'edge-1'


# ---------------------------------------------------------------------------------------------------- helpers

def admin_flags(token=SECRET):
    return ['--admin-listen', '%s:0' % HOST] + (['--admin-token', token] if token else [])


def echo_setup(h, gw_extra=(), agent_extra=(), name='echo', http=False, services=()):
    """An echo service, a gateway (with `gw_extra`) and agent edge-1 exposing it as tcp:NAME@PUB; returns
    (gateway, agent, public port) once a round trip works."""
    echo = h.service('echo', free_port())
    gw = h.gateway(extra=list(gw_extra), http=http, tokens=((TOKEN, None, '*.test'),))
    pub = free_port()
    agent = h.agent(gw.port, ['tcp:%s@%d=%s:%d' % (name, pub, HOST, echo.port)] + list(services), extra=agent_extra)
    h.wait_agent_ready(agent)
    wait_round_trip(pub, 10, 'service %s' % name)
    return gw, agent, pub


class PacedEcho:
    """One connection through an echo service carrying the test stream (stream_chunks) at `rate` bytes/s, the echo
    read and hashed by a second thread. set_rate(None) lifts the pace; finish() checks length and SHA-256."""

    def __init__(self, port, total, rate):
        self.total = total
        self.rate = rate
        self.sent = 0
        self.received = 0
        self.error = []
        self.sock = connect(port, timeout=30)
        self._digest = None
        self._sender = threading.Thread(target=self._send, daemon=True)
        self._receiver = threading.Thread(target=self._receive, daemon=True)
        self._sender.start()
        self._receiver.start()

    def set_rate(self, rate):
        self.rate = rate

    def _send(self):
        t0 = now()
        base = 0
        try:
            for chunk in stream_chunks(self.total):
                self.sock.sendall(chunk)
                self.sent += len(chunk)
                rate = self.rate
                if rate:
                    ahead = (self.sent - base) / rate - (now() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
                else:
                    t0, base = now(), self.sent
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            self.error.append('send: %s' % e)

    def _receive(self):
        import hashlib
        h = hashlib.sha256()
        try:
            while True:
                data = self.sock.recv(256 * KIB)
                if not data:
                    break
                h.update(data)
                self.received += len(data)
        except OSError as e:
            self.error.append('receive: %s' % e)
        self._digest = h.hexdigest()

    def open(self):
        return self._receiver.is_alive()

    def finish(self, timeout):
        self._sender.join(timeout)
        self._receiver.join(timeout)
        self.sock.close()
        assert not self.error and not self._receiver.is_alive(), \
            'paced transfer: %s (sent %d, received %d of %d)' % (self.error or 'not done in time', self.sent,
                                                                 self.received, self.total)
        want = stream_sha(self.total)
        assert (self.received, self._digest) == (self.total, want), \
            'paced transfer: echo of %d bytes, sha256 %s; want %d, %s' % (self.received, self._digest, self.total, want)
        say('paced transfer: %d MiB echoed, sha256 matches' % (self.total // MIB))


def scrape(port, token=None):
    """GET /metrics, parsed by python3-prometheus-client: {family name as exposed (counters with _total): Metric}."""
    from prometheus_client.parser import text_string_to_metric_families
    status, headers, body = admin_request(port, '/metrics', token)
    assert status == 200, 'GET /metrics: %d %r' % (status, body[:200])
    assert headers.get('content-type', '').startswith('text/plain; version=0.0.4'), headers.get('content-type')
    families = {}
    for f in text_string_to_metric_families(body.decode()):
        # The parser names a counter family without its _total (OpenMetrics); the exposition has it.
        name = f.name + '_total' if f.type == 'counter' else f.name
        assert name not in families, 'family %s twice in /metrics' % name
        families[name] = f
    return families


def sample(families, name, **labels):
    """The value of the one sample of family `name` whose labels include `labels`."""
    f = families.get(name)
    assert f is not None, 'no family %s in /metrics (have: %s)' % (name, ' '.join(sorted(families)))
    found = [s for s in f.samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, '%s%r: %d samples match: %r' % (name, labels, len(found), f.samples)
    return found[0].value


def poll(what, fn, timeout, interval=0.1):
    """Calls fn() until it returns a true value (returned); fails after `timeout` with fn's last value."""
    deadline = now() + timeout
    while True:
        got = fn()
        if got:
            return got
        if now() >= deadline:
            raise AssertionError('%s: not within %.1f s (last: %r)' % (what, timeout, got))
        time.sleep(interval)


# The gateway's families as render_metrics() (src/gateway/admin.cpp) defines them: type and label names (no
# --http-listen: the http families are absent).
CORE = {'core'}
SERVICE = {'agent', 'token', 'service', 'kind'}
GATEWAY_FAMILIES = {
    'ringtun_agents_connected': ('gauge', set()),
    'ringtun_services': ('gauge', {'kind'}),
    'ringtun_tunnel_connections': ('gauge', CORE),
    'ringtun_streams_open': ('gauge', CORE),
    'ringtun_streams_opened_total': ('counter', CORE),
    'ringtun_loop_turns_total': ('counter', CORE),
    'ringtun_loop_cqes_total': ('counter', CORE),
    'ringtun_loop_submits_total': ('counter', CORE),
    'ringtun_loop_buffer_exhaustions_total': ('counter', CORE),
    'ringtun_loop_mailbox_depth': ('gauge', CORE),
    'ringtun_loop_sockets_open': ('gauge', CORE),
    'ringtun_public_connections_refused_total': ('counter', {'reason'}),
    'ringtun_handshake_failures_total': ('counter', {'reason'}),
    'ringtun_stream_first_byte_seconds': ('histogram', set()),
    'ringtun_service_streams_opened_total': ('counter', SERVICE),
    'ringtun_service_streams_open': ('gauge', SERVICE),
    'ringtun_service_refused_total': ('counter', SERVICE),
    'ringtun_service_resets_total': ('counter', SERVICE),
    'ringtun_service_bytes_total': ('counter', SERVICE | {'direction'}),
    'ringtun_agent_bytes_total': ('counter', {'agent', 'token', 'direction'}),
    'process_resident_memory_bytes': ('gauge', set()),
    'process_virtual_memory_bytes': ('gauge', set()),
    'process_open_fds': ('gauge', set()),
    'process_max_fds': ('gauge', set()),
    'process_start_time_seconds': ('gauge', set()),
    'process_cpu_seconds_total': ('counter', set()),
    'ringtun_build_info': ('gauge', {'version'}),
}
REFUSAL_REASONS = {'no_route', 'no_tunnel', 'stream_limit', 'tls_unknown_name', 'tls_malformed', 'tls_timeout',
                   'tls_over_limit', 'tls_no_tunnel', 'denied', 'rate_limited', 'max_conns', 'max_conns_per_client'}


def check_families(families, expected):
    for name, (typ, labels) in expected.items():
        f = families.get(name)
        assert f is not None, 'no family %s in /metrics' % name
        assert f.type == typ, '%s is a %s, want %s' % (name, f.type, typ)
        assert f.samples, '%s has no sample' % name
        for s in f.samples:
            got = set(s.labels) - ({'le'} if s.name.endswith('_bucket') else set())
            assert got == labels, '%s: labels %s, want %s' % (s.name, sorted(got), sorted(labels))
    untyped = [name for name, f in families.items() if f.type in ('untyped', 'unknown')]
    assert not untyped, 'families without a TYPE line: %s' % untyped


# ---------------------------------------------------------------------------------------------------- /metrics

@scenario(budget_s=50)
def ops_metrics(h):
    """/metrics during a 64 MiB echo paced over ~5 s through one connection: two scrapes while it is open, parsed by
    python3-prometheus-client; the service's bytes in (and out) grow between them; every family has the type and
    label names render_metrics() gives it; one agent, tunnel connections summing to the gateway's cores, resident
    memory, the first-byte histogram; the echo's SHA-256 at the end."""
    gw, agent, pub = echo_setup(h, admin_flags(token=None))
    total = 64 * MIB
    t = PacedEcho(pub, total, rate=12 * MIB)
    labels = {'agent': AGENT_ID, 'token': 'token1', 'service': 'echo', 'kind': 'tcp'}
    scrapes = []
    t0 = now()
    for at in (1.5, 3.5):
        time.sleep(max(0.0, t0 + at - now()))
        families = scrape(gw.admin_port)
        assert t.open() and t.sent < total, 'the paced transfer ended before scrape %d' % (len(scrapes) + 1)
        scrapes.append(families)
        say('scrape %d: %s bytes in, %s out, %s stream(s) open; transfer at %d MiB sent, %d MiB echoed'
            % (len(scrapes), sample(families, 'ringtun_service_bytes_total', direction='in', **labels),
               sample(families, 'ringtun_service_bytes_total', direction='out', **labels),
               sample(families, 'ringtun_service_streams_open', **labels), t.sent // MIB, t.received // MIB))
    first, second = scrapes
    for families in scrapes:
        check_families(families, GATEWAY_FAMILIES)
        assert sample(families, 'ringtun_service_streams_open', **labels) >= 1, 'the open stream is not counted'
        assert sample(families, 'ringtun_agents_connected') == 1
        tunnels = sum(s.value for s in families['ringtun_tunnel_connections'].samples)
        assert tunnels == GATEWAY_THREADS, 'ringtun_tunnel_connections sums to %s, want %d (one per core)' % (
            tunnels, GATEWAY_THREADS)
        cores = {s.labels['core'] for s in families['ringtun_tunnel_connections'].samples}
        assert cores == {str(c) for c in range(GATEWAY_THREADS)}, 'core labels %s' % sorted(cores)
        assert sample(families, 'process_resident_memory_bytes') > 0
        assert {s.labels['reason'] for s in families['ringtun_public_connections_refused_total'].samples} \
            == REFUSAL_REASONS
        assert sample(families, 'ringtun_services', kind='tcp') == 1
        hist = {s.name: s.value for s in families['ringtun_stream_first_byte_seconds'].samples
                if not s.name.endswith('_bucket')}
        assert hist.get('ringtun_stream_first_byte_seconds_count', 0) >= 1, 'first-byte histogram: %r' % hist
        inf = [s.value for s in families['ringtun_stream_first_byte_seconds'].samples
               if s.name.endswith('_bucket') and s.labels['le'] == '+Inf']
        assert inf == [hist['ringtun_stream_first_byte_seconds_count']], '+Inf bucket %r, count %r' % (inf, hist)
    for direction in ('in', 'out'):
        a = sample(first, 'ringtun_service_bytes_total', direction=direction, **labels)
        b = sample(second, 'ringtun_service_bytes_total', direction=direction, **labels)
        assert b > a, 'ringtun_service_bytes_total{direction="%s"} did not grow while the connection was open: ' \
                      '%s then %s' % (direction, a, b)
        agent_a = sample(first, 'ringtun_agent_bytes_total', agent=AGENT_ID, direction=direction)
        assert agent_a >= a, 'ringtun_agent_bytes_total %s < its service\'s %s' % (agent_a, a)
    t.set_rate(None)
    t.finish(30)
    # Once the connection is closed, its bytes are all counted: the round trips of echo_setup plus the 64 MiB.
    final = poll('stream counted closed', lambda: (lambda f: f if sample(
        f, 'ringtun_service_streams_open', **labels) == 0 else None)(scrape(gw.admin_port)), 5)
    got_in = sample(final, 'ringtun_service_bytes_total', direction='in', **labels)
    assert got_in >= total, 'bytes in after the transfer: %s < %d' % (got_in, total)
    assert gw.alive() and agent.alive()


# ---------------------------------------------------------------------------------------------------- Prometheus

PROMETHEUS = '/usr/bin/prometheus'


@scenario(budget_s=50)
def ops_prometheus(h):
    """A real Prometheus (Debian's) scrapes the gateway's admin endpoint every second with the admin token: the
    target is up and ringtun_agents_connected is 1 through its query API; a second job with a wrong token is down
    with a 401."""
    if not os.access(PROMETHEUS, os.X_OK):
        raise tt.Skip('%s is missing (apt-get install prometheus)' % PROMETHEUS)
    import urllib.parse
    import urllib.request
    gw, agent, pub = echo_setup(h, admin_flags())
    config = os.path.join(h.dir, 'prometheus.yml')
    with open(config, 'w') as f:
        f.write('''global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ringtun
    authorization: {credentials: %s}
    static_configs: [{targets: ['%s:%d']}]
  - job_name: wrong-token
    authorization: {credentials: not-the-token}
    static_configs: [{targets: ['%s:%d']}]
''' % (SECRET, HOST, gw.admin_port, HOST, gw.admin_port))
    web = free_port()
    prom = Proc(h, 'prometheus', [PROMETHEUS, '--config.file=' + config,
                              '--storage.tsdb.path=' + os.path.join(h.dir, 'tsdb'),
                              '--web.listen-address=%s:%d' % (HOST, web), '--log.level=warn'])
    base = 'http://%s:%d' % (HOST, web)

    def api(path):
        try:
            with urllib.request.urlopen(base + path, timeout=3) as r:
                return json.loads(r.read())
        except OSError:
            if not prom.alive():
                raise AssertionError('prometheus exited (status %s)' % prom.p.returncode)
            return None

    def targets():
        got = api('/api/v1/targets')
        if not got or got.get('status') != 'success':
            return None
        by_job = {t['labels']['job']: t for t in got['data']['activeTargets']}
        if by_job.get('ringtun', {}).get('health') != 'up' or by_job.get('wrong-token', {}).get('health') != 'down':
            return None
        return by_job

    by_job = poll('prometheus: the ringtun target up, the wrong-token one down', targets, 30, 0.5)
    say('prometheus targets: ringtun %s, wrong-token %s (%s)' % (
        by_job['ringtun']['health'], by_job['wrong-token']['health'], by_job['wrong-token']['lastError']))
    assert '401' in by_job['wrong-token']['lastError'], by_job['wrong-token']

    def agents_connected():
        got = api('/api/v1/query?' + urllib.parse.urlencode({'query': 'ringtun_agents_connected{job="ringtun"}'}))
        result = (got or {}).get('data', {}).get('result', [])
        return result if result and result[0]['value'][1] == '1' else None

    result = poll('prometheus: ringtun_agents_connected == 1', agents_connected, 30, 0.5)
    say('prometheus query ringtun_agents_connected: %s' % result)
    assert len(result) == 1 and result[0]['metric'].get('instance') == '%s:%d' % (HOST, gw.admin_port), result
    assert gw.alive()


# ---------------------------------------------------------------------------------------------------- dashboard

@scenario(budget_s=90)
def ops_dashboard(h):
    """The dashboard page in headless Chromium against a real gateway with --admin-token: with #token=SECRET the
    agent's row and the service's row are there, and the service's bytes-in counter is larger in a second dump a few
    seconds later (a slow transfer runs meanwhile); without the token (or with a wrong one) the page shows the 401
    message and no data."""
    import dashboard_check as dc
    if not dc.find_chromium():
        raise tt.Skip('chromium is not installed and could not be installed (apt-get install chromium)')
    gw, agent, pub = echo_setup(h, admin_flags())
    t = PacedEcho(pub, 48 * MIB, rate=512 * KIB)
    doms = []
    for i in range(2):
        if i:
            time.sleep(2)
        dom = dc.dump_dom(gw.admin_url + '#token=' + SECRET, 3000)
        with open(os.path.join(h.dir, 'dom-%d.html' % (i + 1)), 'w') as f:
            f.write(dom)
        root = dc.parse(dom)
        rows = dc.service_rows(root)
        say('dump %d: agents %s, services %s' % (i + 1, dc.agent_ids(root),
                                                 {k: (v['in'], v['out']) for k, v in rows.items()}))
        assert dc.visible_text(root, 'role') == 'gateway', 'role: %r' % dc.visible_text(root, 'role')
        assert AGENT_ID in dc.agent_ids(root), 'no data-agent="%s" row in #agents' % AGENT_ID
        assert 'echo' in rows and rows['echo']['in'] is not None, 'no service row "echo" with data-bytes: %r' % rows
        assert dc.visible_text(root, 'auth') is None, 'the 401 message shows with the token'
        doms.append(rows)
        assert t.open(), 'the slow transfer ended before dump %d' % (i + 1)
    a, b = doms[0]['echo']['in'], doms[1]['echo']['in']
    assert b > a, 'the service row\'s bytes-in did not grow between the dumps: %d then %d' % (a, b)
    root = dc.parse(dc.dump_dom(gw.admin_url, 2000))
    msg = dc.visible_text(root, 'auth') or ''
    say('without the token: %r' % msg.strip())
    assert 'needs its admin token' in msg, 'without #token: %r' % msg
    assert not dc.service_rows(root) and not dc.agent_ids(root), 'data shown without the token'
    root = dc.parse(dc.dump_dom(gw.admin_url + '#token=wrong', 2000))
    msg = dc.visible_text(root, 'auth') or ''
    assert 'refused' in msg and not dc.service_rows(root), 'with a wrong #token: %r' % msg
    t.set_rate(None)
    t.finish(30)
    assert gw.alive()


# ---------------------------------------------------------------------------------------------------- JSON API

@scenario(budget_s=60)
def ops_admin_api(h):
    """The gateway's admin API: JSON shapes of status, agents, one agent, services (filter, paging) and refusals (an
    HTTP request for an unknown host); the token (401 without or wrong, 200 with; /healthz and /ready open); POST
    disconnect (the agent reconnects and serves again), 403 without a configured token, 404/405; malformed requests
    431, 400, 414; a non-loopback --admin-listen without --admin-token exits 2; the gateway serves throughout."""
    ports = {name: free_port() for name in ('alpha', 'beta')}
    more = ['tcp:%s@%d=%s:%d' % (name, port, HOST, free_port()) for name, port in ports.items()]
    gw, agent, pub = echo_setup(h, admin_flags(), name='gamma', http=True, services=more)
    port = gw.admin_port

    # The token.
    for path in ('/api/v1/status', '/api/v1/agents', '/metrics', '/api/v1/services', '/nope'):
        for token in (None, 'wrong', SECRET[:-1], SECRET + 'x'):
            status, headers, _ = admin_request(port, path, token)
            assert status == 401, 'GET %s with token %r: %d, want 401' % (path, token, status)
            assert headers.get('www-authenticate', '').startswith('Bearer'), headers
    for path in ('/healthz', '/ready', '/'):
        status, headers, body = admin_request(port, path)
        assert status == 200, 'GET %s without a token: %d %r' % (path, status, body[:200])
    status, headers, body = admin_request(port, '/')
    assert headers['content-type'].startswith('text/html') and b'<html' in body.lower(), headers
    say('401 without or with a wrong token; /healthz, /ready and / open')

    st = admin_json(port, '/api/v1/status', SECRET)
    assert st['role'] == 'gateway' and st['cores'] == GATEWAY_THREADS and st['ready'] is True \
        and st['draining'] is False and isinstance(st['version'], str) and st['version'], st
    assert 0 < st['started_ms'] <= st['now_ms'] and abs(st['now_ms'] / 1000 - time.time()) < 60, st

    agent_keys = {'id', 'token', 'instance', 'remote', 'connected_since_ms', 'connections_per_core', 'services',
                  'streams_open', 'streams_total', 'bytes_in', 'bytes_out'}
    agents = admin_json(port, '/api/v1/agents', SECRET)
    assert set(agents) == {'agents'} and len(agents['agents']) == 1, agents
    a = agents['agents'][0]
    assert set(a) == agent_keys, 'agent keys: %s' % sorted(a)
    assert a['id'] == AGENT_ID and a['token'] == 'token1' and TOKEN not in json.dumps(agents), a
    assert re.fullmatch(r'127\.0\.0\.1:\d+', a['remote']), a['remote']
    assert a['connections_per_core'] == [1] * GATEWAY_THREADS, a['connections_per_core']
    assert sorted(a['services']) == ['alpha', 'beta', 'gamma'], a['services']
    assert a['streams_total'] >= 1 and a['bytes_in'] >= 16 * KIB and a['streams_open'] == 0, a
    assert admin_json(port, '/api/v1/agents/' + AGENT_ID, SECRET) == a
    err = admin_json(port, '/api/v1/agents/edge-9', SECRET, status=404)
    assert isinstance(err.get('error'), str), err
    say('status and agents: %s' % a)

    svc_keys = {'name', 'kind', 'port', 'host', 'agent', 'token', 'group', 'members', 'members_up', 'streams_open',
                'streams_total', 'bytes_in', 'bytes_out', 'refused_total'}
    s = admin_json(port, '/api/v1/services', SECRET)
    assert s['total'] == 3 and s['offset'] == 0 and [x['name'] for x in s['services']] == ['alpha', 'beta', 'gamma'], s
    for x in s['services']:
        assert set(x) == svc_keys, 'service keys: %s' % sorted(x)
        assert x['kind'] == 'tcp' and x['host'] == '' and x['agent'] == AGENT_ID and x['token'] == 'token1', x
        assert x['group'] == '' and x['members'] == 1 and x['members_up'] == 1, x
    gamma = s['services'][2]
    assert gamma['port'] == pub and gamma['streams_total'] >= 1 and gamma['bytes_in'] >= 16 * KIB, gamma
    for query, total, names in (('?offset=1&limit=1', 3, ['beta']), ('?offset=3', 3, []), ('?limit=2', 3,
                                ['alpha', 'beta']), ('?filter=ALP', 1, ['alpha']), ('?filter=%d' % pub, 1, ['gamma']),
                                ('?filter=Edge-1', 3, ['alpha', 'beta', 'gamma']), ('?filter=zzz', 0, [])):
        got = admin_json(port, '/api/v1/services' + query, SECRET)
        assert (got['total'], [x['name'] for x in got['services']]) == (total, names), '%s: %s' % (query, got)
    say('services: shapes, filter and paging')

    # A refusal: an HTTP request for a host nobody serves.
    with connect(gw.http_port) as c:
        c.sendall(b'GET / HTTP/1.1\r\nHost: nobody.test\r\nConnection: close\r\n\r\n')
        answer = recv_all(c)
        client = '%s:%d' % c.getsockname()
    assert answer.startswith(b'HTTP/1.1 404'), answer[:100]
    refusals = poll('the refusal listed', lambda: admin_json(port, '/api/v1/refusals', SECRET)['refusals'], 5)
    r = refusals[0]
    assert set(r) == {'time_ms', 'listener', 'client', 'service', 'reason'}, r
    assert (r['listener'], r['client'], r['service'], r['reason']) == ('http', client, '', 'unknown_host'), r
    assert abs(r['time_ms'] / 1000 - time.time()) < 60, r
    say('refusals: %s' % r)

    # Methods, unknown paths.
    for method, path, want in (('POST', '/api/v1/status', 405), ('GET', '/api/v1/agents/%s/disconnect' % AGENT_ID,
                               405), ('GET', '/api/v2/status', 404), ('GET', '/metricsx', 404),
                               ('POST', '/api/v1/agents/%s/disconnect' % AGENT_ID, 401)):
        status, headers, body = admin_request(port, path, None if want == 401 else SECRET, method)
        assert status == want, '%s %s: %d, want %d (%r)' % (method, path, status, want, body[:200])
        if want == 405:
            assert 'allow' in headers, '405 without Allow: %s' % headers
    err = admin_json(port, '/api/v1/agents/edge-9/disconnect', SECRET, 'POST', status=404)
    assert 'error' in err

    # Disconnect: the agent reconnects and serves again.
    since = agent.size()
    got = admin_json(port, '/api/v1/agents/%s/disconnect' % AGENT_ID, SECRET, 'POST')
    assert got == {'disconnected': AGENT_ID, 'connections': GATEWAY_THREADS}, got
    h.wait_agent_ready(agent, since=since, timeout=15)
    wait_round_trip(pub, 10, 'after the disconnect')
    round_trip(pub, size=1 * MIB)
    a2 = poll('the agent back in /api/v1/agents', lambda: [x for x in admin_json(
        port, '/api/v1/agents', SECRET)['agents'] if x['connections_per_core'] == [1] * GATEWAY_THREADS], 10)
    say('disconnect: %s; the agent reconnected (%s) and serves again' % (got, a2[0]['remote']))

    # Malformed requests: an answer from the server itself and the connection closed.
    big_head = b'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'a' * (8 * KIB + 512) + b'\r\n\r\n'
    long_line = b'GET /' + b'a' * (5 * KIB) + b' HTTP/1.1\r\nHost: x\r\n\r\n'
    for what, data, want in (('a head over 8 KiB', big_head, 431), ('garbage', b'\x16\x03\x01\x02\x00garbage\r\n\r\n',
                             400), ('a 5 KiB request line', long_line, 414), ('a bare LF head',
                             b'GET /healthz HTTP/1.1\nHost: x\n\n', 400)):
        status, headers, body, closed = raw_admin_exchange(port, data)
        say('%s: %d %r, closed %s' % (what, status, body[:60], closed))
        assert status == want, '%s: %d, want %d' % (what, status, want)
        assert closed and headers.get('connection', '').lower() == 'close', '%s: not closed: %s' % (what, headers)

    # POST needs a configured token: a second gateway without --admin-token answers 403.
    gw2 = h.gateway(extra=admin_flags(token=None))
    assert admin_request(gw2.admin_port, '/api/v1/status')[0] == 200
    for token in (None, SECRET):
        status, _, body = admin_request(gw2.admin_port, '/api/v1/agents/%s/disconnect' % AGENT_ID, token, 'POST')
        assert status == 403, 'POST without a configured token (Bearer %r): %d %r' % (token, status, body[:200])
    say('a gateway without --admin-token: GET 200, POST 403')

    # A non-loopback admin address without a token is refused at start-up.
    import subprocess
    r = subprocess.run([h.gateway_bin, '--listen', '%s:0' % HOST, '--threads', '1', '--token', TOKEN, '--state-dir',
                        os.path.join(h.dir, 'state'), '--admin-listen', '0.0.0.0:0'], capture_output=True, timeout=15)
    out = (r.stdout + r.stderr).decode(errors='replace')
    say('--admin-listen 0.0.0.0:0 without --admin-token: exit %d: %s' % (r.returncode, out.strip()[-200:]))
    assert r.returncode == 2 and '--admin-token' in out, (r.returncode, out)

    assert gw.alive() and agent.alive()
    assert admin_request(port, '/healthz')[0] == 200
    assert admin_json(port, '/api/v1/status', SECRET)['ready'] is True
    round_trip(pub, size=256 * KIB)
    round_trip(pub, size=3 * KIB)

    # Every byte from the echo's clients came back to them, on connections all closed now: out == in.
    def gamma_closed():
        x = admin_json(port, '/api/v1/services?filter=gamma', SECRET)['services'][0]
        return x if x['streams_open'] == 0 else None
    gamma = poll('gamma\'s streams closed', gamma_closed, 5)
    say('gamma at the end: %s' % gamma)
    assert gamma['bytes_out'] == gamma['bytes_in'], \
        'echo service: bytes_in %d but bytes_out %d (every byte came back to the clients)' % (
            gamma['bytes_in'], gamma['bytes_out'])


# ---------------------------------------------------------------------------------------------------- sd_notify

@scenario(budget_s=30)
def ops_sd_notify(h):
    """NOTIFY_SOCKET (a datagram socket in the scenario dir): READY=1 arrives once the gateway listens (its log says
    so by then) and /ready is 200; SIGTERM: STOPPING=1 arrives, the gateway exits 0."""
    path = os.path.join(h.dir, 'notify.sock')
    if len(path) >= 100:  # sun_path holds 108 bytes
        path = os.path.join(tempfile.mkdtemp(prefix='ringtun-notify-'), 'notify.sock')
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    log_path = os.path.join(h.dir, 'gateway.log')
    messages = []

    def receive():
        sock.settimeout(30)
        try:
            while True:
                data = sock.recv(4096)
                with open(log_path, 'rb') as f:
                    log = f.read().decode(errors='replace')
                messages.append((now(), data.decode(errors='replace'), log))
        except OSError:
            pass
    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    gw = h.gateway(extra=admin_flags(token=None), env=dict(os.environ, NOTIFY_SOCKET=path))
    poll('READY=1', lambda: messages, 10)
    t, text, log = messages[0]
    say('notify: %r' % text)
    assert 'READY=1' in text.split('\n'), 'first message: %r' % text
    assert re.search(r'listening for agents on', log), 'READY=1 before the gateway logged that it listens'
    assert admin_request(gw.admin_port, '/ready')[0] == 200
    gw.signal(signal.SIGTERM)
    poll('STOPPING=1', lambda: any('STOPPING=1' in m[1].split('\n') for m in messages), 10)
    say('notify: %r' % [m[1] for m in messages])
    status = gw.wait_exit(15)
    assert status == 0, 'the gateway exited %r after SIGTERM' % status
    assert len([m for m in messages if 'READY=1' in m[1].split('\n')]) == 1, 'READY=1 more than once'
    sock.close()


# ---------------------------------------------------------------------------------------------------- access log

TEXT_LINE = re.compile(
    r'^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?P<client>\S+) (?P<listener>\S+) (?P<service>\S+) '
    r'(?P<host>\S+) (?P<agent>\S+) "(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\S+) (?P<bytes_in>\d+) '
    r'(?P<bytes_out>\d+) (?P<duration_ms>\d+)ms (?P<outcome>\S+)(?: "(?P<reason>(?:[^"\\]|\\.)*)")?$')
JSON_KEYS = {'time', 'client', 'listener', 'service', 'host', 'agent', 'method', 'target', 'status', 'bytes_in',
             'bytes_out', 'duration_ms', 'outcome', 'reason'}
REPLY = 3000  # the halfclose service's reply: REPLY bytes of the test stream + the request's SHA-256 (32 bytes)


def access_lines(path, fmt):
    """The access log's lines, parsed ({field: value}, numbers as int; '-' and null as None)."""
    try:
        with open(path, 'rb') as f:
            text = f.read().decode('utf-8')
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        if fmt == 'json':
            rec = json.loads(line)
            assert set(rec) == JSON_KEYS, 'json line keys: %s' % sorted(rec)
        else:
            m = TEXT_LINE.match(line)
            assert m, 'access log line does not parse: %r' % line
            rec = {k: (None if v == '-' else v) for k, v in m.groupdict().items()}
            rec['method'], _, rec['target'] = (rec.pop('request') or '').partition(' ')
            rec['method'] = rec['method'] or None
            rec['target'] = rec['target'] or None
            for k in ('status', 'bytes_in', 'bytes_out', 'duration_ms'):
                rec[k] = int(rec[k]) if rec[k] is not None else None
        out.append(rec)
    return out


def tcp_clients(pub, sizes):
    """One connection per size through the halfclose service: sends `size` bytes, reads the reply (checked by
    SHA-256); returns [(client address 'IP:PORT', bytes sent, bytes received)]."""
    import hashlib
    done = []
    for i, size in enumerate(sizes):
        data = payload(random.Random(i), size)
        with connect(pub) as s:
            client = '%s:%d' % s.getsockname()
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = recv_all(s)
        want = b''.join(stream_chunks(REPLY)) + hashlib.sha256(data).digest()
        assert got == want, 'halfclose reply: %d bytes sha256 %s, want %d %s' % (len(got), sha(got)[:16], len(want),
                                                                               sha(want)[:16])
        done.append((client, size, len(got)))
    return done


def check_access_log(h, fmt, wrong_bytes):
    """A gateway with --access-log (format `fmt`) and --http-listen: tcp and HTTP lines checked. Byte counts that
    differ from what the client sent and received are appended to `wrong_bytes` (reported at the end of the scenario,
    so that the checks after them still run); returns (gateway, log path, tcp port)."""
    svc = h.service('halfclose', free_port(), size=REPLY)
    web = h.service('http', free_port(), label='web')
    path = os.path.join(h.dir, 'access-%s.log' % fmt)
    gw = h.gateway(http=True, tokens=((TOKEN, None, '*.test'),),
                   extra=['--access-log', path, '--log-format', fmt])
    pub = free_port()
    agent = h.agent(gw.port, ['tcp:half@%d=%s:%d' % (pub, HOST, svc.port), 'http:web@a.test=%s:%d' % (HOST, web.port)],
                    agent_id='edge-' + fmt)
    h.wait_agent_ready(agent)
    agent.wait_log(r"service 'web' \(http a\.test -> [^)]*\) is served by the gateway", 5)
    poll('tcp service up', lambda: served(pub), 10)

    def check_tcp(clients, recs):
        by_client = {r['client']: r for r in recs if r['listener'] == 'tcp:%d' % pub}
        for client, sent, received in clients:
            r = by_client.get(client)
            assert r is not None, 'no access log line for %s: %s' % (client, recs)
            want = {'listener': 'tcp:%d' % pub, 'service': 'half', 'agent': 'edge-' + fmt, 'outcome': 'ok',
                    'host': None, 'method': None, 'target': None, 'status': None, 'reason': None}
            got = {k: r[k] for k in want}
            assert got == want, 'access log line for %s: %s, want %s' % (client, got, want)
            if (r['bytes_in'], r['bytes_out']) != (sent, received):
                wrong_bytes.append('%s tcp line of %s: bytes in %d, out %d; the client sent %d and received %d' % (
                    fmt, client, r['bytes_in'], r['bytes_out'], sent, received))
            assert r['duration_ms'] >= 0 and re.match(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$', r['time']), r

    clients = tcp_clients(pub, [1, 10 * KIB, 100 * KIB + 3, 1 * MIB, 7])
    # Wait for these clients' own lines: the probe connections of served() above are logged too, and may be flushed
    # only now (lines are written at most every 200 ms), so counting lines is not enough.
    wanted = {c for c, _, _ in clients}
    recs = poll('%d tcp lines' % len(clients), lambda: (lambda rs: rs if wanted <= {r['client'] for r in rs} else None)(
        access_lines(path, fmt)), 5)
    check_tcp(clients, recs)
    say('%s: %d tcp lines' % (fmt, len(clients)))

    request = b'GET /whoami?x=1 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n'
    with connect(gw.http_port) as c:
        c.sendall(request)
        answer = recv_all(c)
        client = '%s:%d' % c.getsockname()
    assert answer.startswith(b'HTTP/1.1 200') and answer.endswith(b'web'), answer[:200]
    recs = poll('the http line', lambda: [r for r in access_lines(path, fmt) if r['listener'] == 'http'], 5)
    r = recs[-1]
    want = {'client': client, 'service': 'web', 'host': 'a.test', 'agent': 'edge-' + fmt, 'method': 'GET',
            'target': '/whoami?x=1', 'status': 200, 'outcome': 'ok'}
    assert {k: r[k] for k in want} == want, 'http line %s, want %s' % (r, want)
    say('%s: http line %s' % (fmt, r))
    # bytes_in / bytes_out: what came from the client / went to it (src/ops/access_log.hpp), not what the service got.
    if (r['bytes_in'], r['bytes_out']) != (len(request), len(answer)):
        wrong_bytes.append('%s http line: bytes in %d, out %d; the client sent %d and received %d' % (
            fmt, r['bytes_in'], r['bytes_out'], len(request), len(answer)))
    # A host nobody serves: the gateway answers 404 itself and logs the request as refused, with why.
    with connect(gw.http_port) as c:
        c.sendall(b'GET /x HTTP/1.1\r\nHost: nobody.test\r\nConnection: close\r\n\r\n')
        answer = recv_all(c)
        client = '%s:%d' % c.getsockname()
    assert answer.startswith(b'HTTP/1.1 404'), answer[:200]
    recs = poll('the refused line', lambda: [r for r in access_lines(path, fmt) if r['client'] == client], 5)
    r = recs[-1]
    want = {'listener': 'http', 'host': 'nobody.test', 'status': 404, 'outcome': 'refused', 'bytes_out': len(answer)}
    assert {k: r[k] for k in want} == want and r['reason'], 'refused line %s, want %s' % (r, want)
    say('%s: refused line %s' % (fmt, r))
    return gw, path, pub


def served(pub):
    try:
        with connect(pub, timeout=1) as s:
            s.shutdown(socket.SHUT_WR)
            return len(recv_all(s)) == REPLY + 32
    except OSError:
        return False


@scenario(budget_s=50)
def ops_access_log(h):
    """--access-log FILE (text): one line per tcp connection through the tunnel (client address, tcp:PORT, service,
    agent id, bytes in and out as the client sent and received, ok) and per HTTP request (method, target, host,
    200); after mv FILE FILE.1 and SIGHUP new lines go to a new FILE and none to FILE.1. --log-format json: every
    line is a JSON object with the same fields."""
    wrong_bytes = []
    gw, path, pub = check_access_log(h, 'text', wrong_bytes)
    rotated = path + '.1'
    os.rename(path, rotated)
    size = os.path.getsize(rotated)
    since = gw.size()
    gw.signal(signal.SIGHUP)
    gw.wait_log(r'reload', 5, since=since)
    time.sleep(0.3)
    clients = tcp_clients(pub, [5 * KIB, 6 * KIB, 7 * KIB])
    recs = poll('lines in the new file', lambda: (lambda rs: rs if len(rs) >= len(clients) else None)(
        access_lines(path, 'text')), 5)
    assert {r['client'] for r in recs} == {c for c, _, _ in clients}, recs
    time.sleep(0.5)  # more than a flush interval: nothing late reaches the old file either
    assert os.path.getsize(rotated) == size, 'lines were added to the rotated file after SIGHUP'
    say('after mv and SIGHUP: %d lines in the new file, none added to the old one' % len(recs))
    assert gw.alive()
    check_access_log(h, 'json', wrong_bytes)
    for line in wrong_bytes:
        say(line)
    assert not wrong_bytes, '%d access log line(s) with wrong byte counts, first: %s' % (len(wrong_bytes),
                                                                                       wrong_bytes[0])


# ---------------------------------------------------------------------------------------------------- the agent's

AGENT_SERVICE_KEYS = {'name', 'kind', 'port', 'host', 'local', 'state', 'message', 'streams_open', 'streams_total',
                      'bytes_in', 'bytes_out'}


@scenario(budget_s=40)
def ops_agent_admin(h):
    """The agent's admin endpoint (--admin-listen, --admin-token): /healthz open; /ready 200 with every tunnel
    connection up, 503 once the gateway is gone; status (role agent, connected), services (shape, state serving,
    counters after a 1 MiB echo), /metrics (ringtun_service_bytes_total, ringtun_tunnel_connections by core); the
    token; /api/v1/agents is 404 on an agent."""
    echo = h.service('echo', free_port())
    gw = h.gateway()
    pub = free_port()
    agent = h.agent(gw.port, ['tcp:echo@%d=%s:%d' % (pub, HOST, echo.port)], extra=admin_flags())
    port = wait_admin(agent, timeout=5)  # (it serves within 0.2 s of its start)
    h.wait_agent_ready(agent)
    wait_round_trip(pub, 10, 'service echo')
    assert admin_request(port, '/healthz')[0] == 200
    poll('/ready 200', lambda: admin_request(port, '/ready')[0] == 200, 5)
    for path in ('/api/v1/status', '/api/v1/services', '/metrics'):
        status, headers, _ = admin_request(port, path, 'wrong')
        assert status == 401 and admin_request(port, path)[0] == 401, '%s without the token: %d' % (path, status)

    st = admin_json(port, '/api/v1/status', SECRET)
    assert st['role'] == 'agent' and st['connected'] is True, st
    size = 1 * MIB
    round_trip(pub, size=size)
    s = admin_json(port, '/api/v1/services', SECRET)
    assert s['total'] == 1 and s['offset'] == 0 and len(s['services']) == 1, s
    x = s['services'][0]
    assert set(x) == AGENT_SERVICE_KEYS, 'service keys: %s' % sorted(x)
    want = {'name': 'echo', 'kind': 'tcp', 'port': pub, 'host': '', 'local': '%s:%d' % (HOST, echo.port),
            'state': 'serving', 'message': ''}
    assert {k: x[k] for k in want} == want, x
    assert x['streams_total'] >= 2 and x['bytes_in'] >= size and x['bytes_out'] >= size, x
    say('agent services: %s' % x)
    status, _, _ = admin_request(port, '/api/v1/agents', SECRET)
    assert status == 404, '/api/v1/agents on an agent: %d' % status

    families = scrape(port, SECRET)
    f = families.get('ringtun_service_bytes_total')
    assert f is not None and f.type == 'counter', 'ringtun_service_bytes_total: %r' % f
    for direction in ('in', 'out'):
        value = sample(families, 'ringtun_service_bytes_total', service='echo', kind='tcp', direction=direction)
        assert value >= size, 'agent ringtun_service_bytes_total{direction="%s"} = %s < %d' % (direction, value, size)
    f = families.get('ringtun_tunnel_connections')
    assert f is not None and f.type == 'gauge' and all('core' in s.labels for s in f.samples), f
    tunnels = sum(s.value for s in f.samples)
    assert tunnels == GATEWAY_THREADS, 'agent ringtun_tunnel_connections sums to %s, want %d' % (tunnels,
                                                                                                 GATEWAY_THREADS)
    assert sample(families, 'process_resident_memory_bytes') > 0

    gw.kill_group()
    poll('/ready 503 without the gateway', lambda: admin_request(port, '/ready')[0] == 503, 10)
    st = admin_json(port, '/api/v1/status', SECRET)
    assert st['connected'] is False, st
    assert agent.alive() and admin_request(port, '/healthz')[0] == 200
    say('the gateway gone: /ready 503, connected false, /healthz 200')


# ---------------------------------------------------------------------------------------------------- main

if __name__ == '__main__':
    sys.exit(tt.main(sys.argv[1:]))
