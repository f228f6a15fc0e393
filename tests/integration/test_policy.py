#!/usr/bin/env python3
"""End-to-end tests of the access policy on public routes (--allow-from, --deny-from, --conn-rate, --max-conns,
--max-conns-per-client): real ringtun-gateway and ringtun-agent processes; the clients choose their source address in
127.0.0.0/8 (127.0.0.2, 127.0.0.3, ...), and ::1 for IPv6. Payloads are checked by SHA-256, not by length.

Usage: test_policy.py SCENARIO | --list      (the harness is itest.py; the runner is test_tunnel.py's main)
"""
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tunnel as tt  # noqa: E402  (the scenario registry and the runner)
from itest import HOST, KIB, TOKEN, free_port, now, say, sha  # noqa: E402

scenario = tt.scenario


# ---------------------------------------------------------------------------------------------------- helpers

class Client:
    """One public connection from `source`; echo() proves the service answers through the tunnel."""

    def __init__(self, port, source, family=socket.AF_INET, host=HOST):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((source, 0))
        self.sock.settimeout(5)
        self.sock.connect((host, port))
        self.source = source

    def echo(self, size=16 * KIB, seed=0):
        """'served' when the bytes come back intact, 'refused' when the gateway closes the connection instead."""
        data = hashlib.sha256(b'%d' % seed).digest() * (size // 32)
        try:
            self.sock.sendall(data)
            got = bytearray()
            while len(got) < len(data):
                chunk = self.sock.recv(64 * KIB)
                if not chunk:
                    break
                got += chunk
        except OSError:
            return 'refused'
        if not got:
            return 'refused'
        assert sha(bytes(got)) == sha(data), 'from %s: the echo differs from what was sent (%d of %d bytes)' % (
            self.source, len(got), len(data))
        return 'served'

    def close(self):
        self.sock.close()


def attempt(port, source, **kw):
    c = Client(port, source, **kw)
    try:
        return c.echo()
    finally:
        c.close()


def admin_metrics(gw):
    with urllib.request.urlopen(gw.admin_url + 'metrics', timeout=5) as r:
        return r.read().decode()


def refused_count(gw, reason):
    m = re.search(r'^ringtun_public_connections_refused_total\{reason="%s"\} (\d+)$' % reason, admin_metrics(gw),
                  re.M)
    assert m, 'no refused sample for reason %s in /metrics' % reason
    return int(m.group(1))


def tcp_setup(h, gateway_extra, agent_id='edge-policy'):
    echo = h.service('echo', free_port())
    gw = h.gateway(extra=list(gateway_extra) + ['--admin-listen', '%s:0' % HOST])
    pub = free_port()
    agent = h.agent(gw.port, [(pub, echo.port)], agent_id=agent_id)
    h.wait_agent_ready(agent)
    return gw, pub


def ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(('::1', 0))
        s.close()
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------------- scenarios

@scenario(budget_s=40)
def policy_allow_deny(h):
    """--allow-from / --deny-from on a TCP port: 127.0.0.2 served, 127.0.0.3 (not allowed) and 127.0.0.4 (allowed
    but denied) closed at accept; counted as denied; a log line names the client and the reason."""
    gw, pub = tcp_setup(h, ['--allow-from', '127.0.0.2, 127.0.0.4/32', '--deny-from', '127.0.0.4'])
    assert 'token1 access policy: allow 127.0.0.2/32,127.0.0.4/32, deny 127.0.0.4/32' in gw.text(), \
        'the start line does not show the policy'
    for i in range(4):
        assert attempt(pub, '127.0.0.2') == 'served', '127.0.0.2 (allowed) was refused'
    for source in ('127.0.0.3', '127.0.0.4'):
        for i in range(3):
            assert attempt(pub, source) == 'refused', '%s was served' % source
    say('127.0.0.2 served 4 times; 127.0.0.3 and 127.0.0.4 refused 3 times each')
    assert refused_count(gw, 'denied') == 6, 'refused{reason="denied"} is %d, not 6' % refused_count(gw, 'denied')
    line = gw.wait_log(r'client 127\.0\.0\.[34]:\d+ refused by the access policy of service \'svc%d\' '
                       r'\((denied|not_allowed)\)' % pub, 5)
    say('logged: %s' % line.group(0))
    assert attempt(pub, '127.0.0.2') == 'served', '127.0.0.2 refused after the others'


@scenario(budget_s=40)
def policy_service_lists(h):
    """Per-service lists from the agent's JSON config narrow the token's, never widen them: the token allows
    127.0.0.0/29 but 127.0.0.5; service A allows 127.0.0.2, .5 and .9 (only .2 gets in: .5 is denied and .9 outside
    the token's); service B denies 127.0.0.3 (.2 and .4 get in)."""
    echo = h.service('echo', free_port())
    gw = h.gateway(extra=['--allow-from', '127.0.0.0/29', '--deny-from', '127.0.0.5'])
    pub_a, pub_b = free_port(), free_port()
    while pub_b == pub_a:
        pub_b = free_port()
    config = os.path.join(h.dir, 'agent.json')
    with open(config, 'w') as f:
        json.dump({'services': [
            {'name': 'svc-a', 'kind': 'tcp', 'public_port': pub_a, 'local': '%s:%d' % (HOST, echo.port),
             'allow_from': ['127.0.0.2', '127.0.0.5', '127.0.0.9']},
            {'name': 'svc-b', 'kind': 'tcp', 'public_port': pub_b, 'local': '%s:%d' % (HOST, echo.port),
             'deny_from': '127.0.0.3'}]}, f)
    agent = h.agent(gw.port, [], agent_id='edge-lists', extra=['--config', config])
    h.wait_agent_ready(agent)
    expected = [(pub_a, '127.0.0.2', 'served'), (pub_a, '127.0.0.3', 'refused'), (pub_a, '127.0.0.5', 'refused'),
                (pub_a, '127.0.0.9', 'refused'), (pub_b, '127.0.0.2', 'served'), (pub_b, '127.0.0.3', 'refused'),
                (pub_b, '127.0.0.4', 'served'), (pub_b, '127.0.0.5', 'refused')]
    for pub, source, want in expected:
        for i in range(2):
            got = attempt(pub, source)
            assert got == want, 'service %s, client %s: %s, expected %s' % (
                'A' if pub == pub_a else 'B', source, got, want)
    say('service A: only 127.0.0.2; service B: all of 127.0.0.0/29 but .3 and .5')


@scenario(budget_s=40)
def policy_ipv6(h):
    """The lists hold IPv6 too: a gateway on [::1] with two tokens, one allowing ::1/128 and one denying ::/0: a
    client at ::1 is served by the first token's port and refused by the second's."""
    if not ipv6_loopback():
        raise tt.Skip('no IPv6 loopback here')
    echo = h.service('echo', free_port())
    gw = h.gateway(host='::1', tokens=(), extra=['--token', 'second-token-1234', '--deny-from', '::/0',
                                                 '--token', TOKEN, '--allow-from', '::1/128', '--deny-from', '10.0.0.0/8'])
    pub_ok, pub_denied = free_port(), free_port()
    a1 = h.agent(gw.port, [(pub_ok, echo.port)], agent_id='edge-v6-ok', gateway='[::1]:%d' % gw.port)
    a2 = h.agent(gw.port, [(pub_denied, echo.port)], agent_id='edge-v6-denied', token='second-token-1234',
                 gateway='[::1]:%d' % gw.port)
    h.wait_agent_ready(a1)
    h.wait_agent_ready(a2)
    for i in range(3):
        assert attempt(pub_ok, '::1', family=socket.AF_INET6, host='::1') == 'served', '::1 refused by ::1/128'
        assert attempt(pub_denied, '::1', family=socket.AF_INET6, host='::1') == 'refused', '::1 served despite ::/0'
    say('::1 served on port %d (allow ::1/128), refused on port %d (deny ::/0)' % (pub_ok, pub_denied))


@scenario(budget_s=40)
def policy_conn_rate(h):
    """--conn-rate 4: a burst of 24 connections from 127.0.0.2 is cut to about the rate, while 127.0.0.3 is served
    (twice: the burst one core gives an address); 1.5 s later 127.0.0.2 is served again."""
    gw, pub = tcp_setup(h, ['--conn-rate', '4'])
    t0 = now()
    results = [attempt(pub, '127.0.0.2') for _ in range(24)]
    took = now() - t0
    served = results.count('served')
    # A burst of 4 (2 per core), then 4 a second: what the burst's own duration allows, plus the rounding per core.
    bound = 4 + int(4 * took) + 2
    say('burst from 127.0.0.2: %d of 24 served in %.2f s (bound %d)' % (served, took, bound))
    assert 1 <= served <= bound, '%d of 24 served in %.2f s: the rate 4/s allows at most %d' % (served, took, bound)
    assert results.count('refused') >= 24 - bound
    # Each core allows an address a burst of rate/cores (2 here), and the kernel may send every connection of 127.0.0.3
    # to one core: 2 are sure to be served.
    for i in range(2):
        assert attempt(pub, '127.0.0.3') == 'served', '127.0.0.3 was refused: the limit is per client address'
    assert refused_count(gw, 'rate_limited') == results.count('refused')
    time.sleep(1.5)
    assert attempt(pub, '127.0.0.2') == 'served', '127.0.0.2 still refused 1.5 s after its burst'


@scenario(budget_s=40)
def policy_max_conns(h):
    """--max-conns 3 --max-conns-per-client 2: two held connections from 127.0.0.2, a third from it refused; one from
    127.0.0.3 fills the service; 127.0.0.4 refused until one closes, then served. Held connections keep working."""
    gw, pub = tcp_setup(h, ['--max-conns', '3', '--max-conns-per-client', '2'])
    held = [Client(pub, '127.0.0.2'), Client(pub, '127.0.0.2')]
    for i, c in enumerate(held):
        assert c.echo(seed=i) == 'served', 'held connection %d from 127.0.0.2 not served' % i
    assert attempt(pub, '127.0.0.2') == 'refused', 'a third connection from 127.0.0.2 was served (cap 2 per client)'
    held.append(Client(pub, '127.0.0.3'))
    assert held[-1].echo(seed=9) == 'served', '127.0.0.3 refused while the service had room'
    assert attempt(pub, '127.0.0.4') == 'refused', 'a fourth connection to the service was served (cap 3)'
    assert refused_count(gw, 'max_conns_per_client') == 1
    assert refused_count(gw, 'max_conns') == 1
    held.pop(0).close()
    # The count is given back when the stream ends, which follows the close by a tunnel round trip.
    deadline = now() + 5
    while True:
        result = attempt(pub, '127.0.0.4')
        if result == 'served':
            break
        assert now() < deadline, '127.0.0.4 still refused 5 s after a held connection closed'
        time.sleep(0.1)
    for i, c in enumerate(held):
        assert c.echo(seed=20 + i) == 'served', 'a held connection stopped working'
        c.close()
    say('caps held: per client 2, per service 3; a closed connection made room')


@scenario(budget_s=40)
def policy_http(h):
    """On the shared HTTP port (curl as the client): a denied address gets 403, a client over --conn-rate gets 429
    with Retry-After, an allowed one 200."""
    svc = h.service('http', free_port(), label='policy-web')
    gw = h.gateway(http=True, tokens=((TOKEN, None, 'web.test'),),
                   extra=['--deny-from', '127.0.0.3', '--conn-rate', '2', '--admin-listen', '%s:0' % HOST])
    agent = h.agent(gw.port, ['http:web.test=%s:%d' % (HOST, svc.port)], agent_id='edge-http-policy')
    h.wait_agent_ready(agent)

    def curl(source):
        out = subprocess.run(['curl', '-s', '-o', '/dev/null', '-D', '-', '--interface', source, '--max-time', '5',
                              '-H', 'Host: web.test', 'http://%s:%d/whoami' % (HOST, gw.http_port)],
                             capture_output=True, text=True, timeout=10)
        m = re.match(r'HTTP/1\.1 (\d+)', out.stdout)
        assert m, 'curl from %s: no response (%s)' % (source, out.stderr.strip())
        return int(m.group(1)), out.stdout

    status, head = curl('127.0.0.3')
    assert status == 403, 'a denied client got %d' % status
    statuses = []
    for _ in range(12):
        status, head = curl('127.0.0.2')
        statuses.append(status)
        if status == 429:
            assert re.search(r'^Retry-After: 1\r?$', head, re.M | re.I), '429 without Retry-After: %r' % head
    say('127.0.0.3: 403; 127.0.0.2 x12: %s' % statuses)
    assert statuses[0] == 200, 'the first request was not served: %s' % statuses
    assert 429 in statuses, 'no 429 in a burst of 12 over --conn-rate 2: %s' % statuses
    assert set(statuses) <= {200, 429}, statuses
    time.sleep(1.2)
    assert curl('127.0.0.4')[0] == 200


def _proxy_protocol(h, version):
    svc = h.service('proxy', free_port())
    gw = h.gateway()
    pub = free_port()
    agent = h.agent(gw.port, ['tcp:svc-pp@%d=%s:%d,proxy-protocol=%s' % (pub, HOST, svc.port, version)],
                    agent_id='edge-pp-' + version)
    h.wait_agent_ready(agent)
    agent.wait_log(r'svc-pp: gateway port %d -> %s:%d, PROXY protocol %s' % (pub, HOST, svc.port, version), 5)
    for i, size in enumerate((1, 300 * KIB, 2 * 1024 * KIB)):
        c = Client(pub, '127.0.0.2')
        client_port = c.sock.getsockname()[1]
        assert c.echo(size=max(size, 32), seed=i) == 'served', 'no echo through the PROXY service'
        c.close()
        m = svc.wait_log(r'proxy \S+: %s TCP4 127\.0\.0\.2:%d -> 0\.0\.0\.0:%d' % (version, client_port, pub), 5)
        say('the service saw: %s' % m.group(0))
    # The bytes after the header were the stream's own, whole and in order (the echo check above), and the header
    # was not counted as stream data: credit stayed exact, so a 2 MiB echo (beyond the initial window) went through.
    assert agent.alive() and gw.alive()


@scenario(budget_s=40)
def proxy_v1(h):
    """--expose tcp:...,proxy-protocol=v1: the local service reads "PROXY TCP4 127.0.0.2 0.0.0.0 CPORT PUBPORT" before
    the stream's bytes, then echoes 1 B, 300 KiB and 2 MiB intact (SHA-256)."""
    _proxy_protocol(h, 'v1')


@scenario(budget_s=40)
def proxy_v2(h):
    """proxy-protocol=v2: the binary header with AF_INET, 127.0.0.2 and the client's port, then an intact echo."""
    _proxy_protocol(h, 'v2')


@scenario(budget_s=40)
def proxy_http(h):
    """An http: service with proxy-protocol=v1, through the shared HTTP port with curl: each request's service
    connection starts with its own client's header (127.0.0.2, then 127.0.0.3, then 127.0.0.2 again): connections
    that name one client are never reused for another."""
    svc = h.service('proxy-http', free_port())
    gw = h.gateway(http=True, tokens=((TOKEN, None, 'pp.test'),))
    agent = h.agent(gw.port, ['http:pp.test=%s:%d,proxy-protocol=v1' % (HOST, svc.port)], agent_id='edge-pp-http')
    h.wait_agent_ready(agent)
    for source in ('127.0.0.2', '127.0.0.3', '127.0.0.2'):
        out = subprocess.run(['curl', '-s', '-S', '--interface', source, '--max-time', '5', '-H', 'Host: pp.test',
                              'http://%s:%d/who' % (HOST, gw.http_port)], capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, 'curl from %s failed: %s' % (source, out.stderr.strip())
        assert re.match(r'v1 TCP4 %s:\d+ -> 0\.0\.0\.0:%d$' % (re.escape(source), gw.http_port), out.stdout.strip()), \
            'from %s the service saw: %r' % (source, out.stdout)
        say('curl from %s: the service saw %s' % (source, out.stdout.strip()))


if __name__ == '__main__':
    sys.exit(tt.main(sys.argv[1:]))
