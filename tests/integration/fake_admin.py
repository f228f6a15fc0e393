#!/usr/bin/python3
"""A fake ringtun admin endpoint for developing and testing the dashboard page (src/ops/dashboard/index.html).

It serves the page at any path ending in "/" and the admin API of docs/dashboard.md at any path ending in
"api/v1/..." (so a path prefix such as /ringtun/ works as it would behind a reverse proxy). The counters are a
function of how many API requests were answered: every poll sees them grow, at rates that vary smoothly per service
(so the sparklines have a shape). One service is named with an HTML-injection string unless --no-injection.

  fake_admin.py [--port 0] [--token T] [--role gateway|agent] [--services N] [--agents N] [--no-injection]

Prints "fake_admin listening on http://127.0.0.1:PORT/" on stdout first (tests read the port from it).
POST /_fake/outage with body "on" makes every API request get its connection closed unanswered until "off".
Stdlib only.
"""
import argparse
import hmac
import json
import math
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PAGE = os.path.join(HERE, '..', '..', 'src', 'ops', 'dashboard', 'index.html')
INJECTION = '<img src=x onerror=alert(1)>'

AGENT_NAMES = ['edge-fra-1', 'edge-nyc-2', 'build-runner', 'home-lab', 'staging-eu', 'db-proxy', 'ci-mac-mini']
SERVICE_NAMES = [  # (name, kind)
    ('grafana', 'http'), ('api', 'http'), ('postgres-ro', 'tcp'), ('ssh-bastion', 'tcp'), ('webhook-relay', 'http'),
    ('minio', 'tls'), ('docs', 'http'), ('prometheus', 'tcp'), ('git', 'tls'), ('redis-cache', 'tcp'),
    ('mqtt', 'tcp'), ('status-page', 'http'),
]
REFUSAL_REASONS = ['no_agent_connection', 'unknown_host', 'stream_limit', 'agent_draining', 'no_sni']


def rate_curve(x, i):
    """Cumulative bytes after x polls for service i: derivative r + a*(1 + sin(...)) >= 0, so it never decreases."""
    r = 200 + (i * 7919) % 5000
    a = 300 + (i * 104729) % 20000
    phase = (i % 13) / 2.0
    return int(r * x + a * (x - 6.0 * math.cos(x / 6.0 + phase) + 6.0 * math.cos(phase)))


class Fake:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.polls = 0
        self.outage = False
        self.start_ms = int(time.time() * 1000) - (3 * 3600 + 12 * 60) * 1000
        n_agents = max(1, args.agents)
        self.agents = []
        for i in range(n_agents):
            aid = AGENT_NAMES[i] if i < len(AGENT_NAMES) else 'agent-%03d' % i
            self.agents.append({
                'id': aid, 'token': 'token%d' % (1 + i % 2), 'instance': '%016x' % (0x9f3a5c0de1 * (i + 7)),
                'remote': '198.51.100.%d:%d' % (10 + i, 40312 + 17 * i),
                'connected_since_ms': self.start_ms + (i * 977 + 60) * 1000,
                'connections_per_core': [1] * max(1, args.cores)})
        # Static part of every service, built once (10,000 of them are filtered on every request).
        self.services = []
        names = [] if args.no_injection else [(INJECTION, 'http')]
        for i in range(max(0, args.services - len(names))):
            names.append(SERVICE_NAMES[i] if i < len(SERVICE_NAMES) else
                         ('svc-%05d' % i, ('tcp', 'http', 'tls')[i % 3]))
        for i, (name, kind) in enumerate(names):
            agent = self.agents[i % len(self.agents)]
            self.services.append({
                'i': i, 'name': name, 'kind': kind, 'port': 10000 + i if kind == 'tcp' else 0,
                'host': '' if kind == 'tcp' else '%s.example.com' % name, 'agent': agent['id'],
                'token': agent['token']})
        self.services.sort(key=lambda s: s['name'])

    def tick(self):
        with self.lock:
            self.polls += 1
            return self.polls

    def status(self):
        return {'role': self.args.role, 'version': '0.1.0', 'started_ms': self.start_ms,
                'now_ms': int(time.time() * 1000), 'cores': self.args.cores, 'ready': True, 'draining': False}

    def service_json(self, s, x):
        i = s['i']
        out = {'name': s['name'], 'kind': s['kind'], 'port': s['port'], 'host': s['host'],
               'streams_open': (i * 7 + x) % 5, 'streams_total': 40 + i * 3 + x * (1 + i % 3),
               'bytes_in': 1000 + rate_curve(x, i), 'bytes_out': 5000 + 3 * rate_curve(x, i + 1)}
        if self.args.role == 'gateway':
            out.update(agent=s['agent'], token=s['token'], refused_total=(i * 3) % 4 + x // 50)
        else:
            out['local'] = '127.0.0.1:%d' % (8000 + i)
            out['state'], out['message'] = (('refused', "port_taken: taken by agent 'edge-nyc-2'") if i % 5 == 3 else
                                            ('pending', 'waiting for the gateway') if i % 7 == 5 else ('serving', ''))
        return out

    def services_page(self, query, x):
        q = urllib.parse.parse_qs(query)
        needle = (q.get('filter', [''])[0]).lower()
        offset = max(0, int(q.get('offset', ['0'])[0] or 0))
        limit = min(1000, max(1, int(q.get('limit', ['100'])[0] or 100)))
        rows = self.services
        if needle:
            rows = [s for s in rows if needle in s['name'].lower() or needle in s['host'].lower()
                    or (self.args.role == 'gateway' and needle in s['agent'].lower())
                    or (s['port'] and needle in str(s['port']))]
        return {'total': len(rows), 'offset': offset,
                'services': [self.service_json(s, x) for s in rows[offset:offset + limit]]}

    def agents_json(self, x):
        out = []
        for k, a in enumerate(self.agents):
            mine = [s for s in self.services[:2000] if s['agent'] == a['id']]
            out.append(dict(a, services=[s['name'] for s in mine][:50], streams_open=(k + x) % 9,
                            streams_total=500 + k * 77 + 3 * x, bytes_in=123456 + rate_curve(x, 100 + k) * 4,
                            bytes_out=654321 + rate_curve(x, 200 + k) * 9))
        return {'agents': out}

    def refusals_json(self, x):
        now = int(time.time() * 1000)
        out = []
        for k in range(min(64, 5 + x // 10)):
            s = self.services[(k * 7) % len(self.services)] if self.services and k % 3 else None
            out.append({'time_ms': now - k * 4100 - 900, 'listener': ('tcp:%d' % s['port']) if s and s['port'] else
                        (s['kind'] if s else 'tls'), 'client': '203.0.113.%d:%d' % (k + 1, 50000 + k),
                        'service': s['name'] if s else '', 'reason': REFUSAL_REASONS[k % len(REFUSAL_REASONS)]})
        return {'refusals': out}

    def disconnect(self, agent_id):
        for a in self.agents:
            if a['id'] == agent_id:
                a['connected_since_ms'] = int(time.time() * 1000)  # it reconnects at once, as a real agent would
                return 200, {'disconnected': agent_id, 'connections': len(a['connections_per_core'])}
        return 404, {'error': 'no agent %r' % agent_id}


def make_handler(fake, page_path):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, fmt, *a):
            if fake.args.verbose:
                sys.stderr.write('fake_admin: ' + (fmt % a) + '\n')

        def send(self, status, body, ctype='application/json', extra=()):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header('Content-Type', ctype)
            self.send_header('Content-Length', str(len(data)))
            self.send_header('Cache-Control', 'no-store')
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            if self.command != 'HEAD':
                self.wfile.write(data)

        def authorized(self):
            if not fake.args.token:
                return True
            got = self.headers.get('Authorization', '')
            return hmac.compare_digest(got.encode(), ('Bearer ' + fake.args.token).encode())

        def route(self, method):
            url = urllib.parse.urlsplit(self.path)
            path = url.path
            body = b''
            if method == 'POST':
                body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
            if path == '/_fake/outage' and method == 'POST':
                fake.outage = body.strip() == b'on'
                return self.send(200, {'outage': fake.outage})
            api = path.find('api/v1/')
            if api < 0:
                if path.endswith('/') and method in ('GET', 'HEAD'):
                    with open(page_path, 'rb') as f:
                        return self.send(200, f.read(), 'text/html; charset=utf-8')
                if path.endswith('/favicon.ico'):
                    return self.send(204, b'', 'image/x-icon')
                return self.send(404, {'error': 'not found'})
            if fake.outage:  # the endpoint "stops answering": no response at all
                self.close_connection = True
                return
            if not self.authorized():
                return self.send(401, {'error': 'admin token needed'}, extra=[('WWW-Authenticate', 'Bearer')])
            route = path[api + len('api/v1/'):]
            gateway = fake.args.role == 'gateway'
            if method == 'POST':
                parts = route.split('/')
                if gateway and len(parts) == 3 and parts[0] == 'agents' and parts[2] == 'disconnect':
                    if not fake.args.token:
                        return self.send(403, {'error': 'state-changing requests need a configured admin token'})
                    return self.send(*fake.disconnect(urllib.parse.unquote(parts[1])))
                return self.send(404, {'error': 'not found'})
            if route == 'status':
                return self.send(200, fake.status())
            if route == 'services':
                return self.send(200, fake.services_page(url.query, fake.tick()))
            if route == 'agents' and gateway:
                return self.send(200, fake.agents_json(fake.polls))
            if route == 'refusals' and gateway:
                return self.send(200, fake.refusals_json(fake.polls))
            return self.send(404, {'error': 'not found'})

        def do_GET(self):
            self.route('GET')

        def do_HEAD(self):
            self.route('HEAD')

        def do_POST(self):
            self.route('POST')

    return Handler


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--token', default='')
    p.add_argument('--role', choices=('gateway', 'agent'), default='gateway')
    p.add_argument('--services', type=int, default=13, help='how many services (the injection one included)')
    p.add_argument('--agents', type=int, default=4)
    p.add_argument('--cores', type=int, default=2)
    p.add_argument('--no-injection', action='store_true', help='no service named with an HTML-injection string')
    p.add_argument('--page', default=DEFAULT_PAGE)
    p.add_argument('--verbose', action='store_true')
    args = p.parse_args(argv)
    fake = Fake(args)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(fake, os.path.abspath(args.page)))
    server.daemon_threads = True
    print('fake_admin listening on http://%s:%d/' % (args.host, server.server_address[1]), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
