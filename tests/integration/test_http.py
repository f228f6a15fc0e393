#!/usr/bin/env python3
"""End-to-end tests of the gateway's shared ports: the HTTP port (--http-listen: requests routed by Host, rewritten
with X-Forwarded-*, strict framing, keep-alive both ways, WebSocket upgrades) and the TLS port (--tls-listen: routed
by the ClientHello's SNI, passed through untouched). Real ringtun-gateway and ringtun-agent processes on 127.0.0.1,
real clients: curl, openssl s_client, python3-websockets, http.client, and raw sockets for what no client sends.

Local services are itest.py's `--serve http` (keep-alive HTTP/1.1, counts its TCP connections) and `--serve ws`
(WebSocket echo), and `openssl s_server -www` for TLS.

Usage: test_http.py SCENARIO | --list      (the harness is itest.py; the runner is test_tunnel.py's main)
"""
import asyncio
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tunnel as tt  # noqa: E402  (the scenario registry and the runner)
from itest import (  # noqa: E402
    HOST, KIB, MIB, TOKEN, Proc, connect, expect_closed, free_port, now, say, stream_chunks, stream_sha)

scenario = tt.scenario

ALLOW = '*.test'  # every token's --allow-hosts here


# ---------------------------------------------------------------------------------------------------- helpers

def http_gateway(h, extra=(), tls=False, http=True):
    return h.gateway(tokens=((TOKEN, None, ALLOW),), http=http, tls=tls, extra=extra)


def http_agent(h, gw, exposes, agent_id='edge-1', extra=()):
    """An agent exposing `exposes` ({'kind:host': local_port}); returns once the gateway serves every one of them."""
    a = h.agent(gw.port, ['%s=%s:%d' % (what, HOST, port) for what, port in exposes.items()], agent_id=agent_id,
                extra=extra)
    h.wait_agent_ready(a)
    for what in exposes:
        kind, host = what.split(':', 1)
        a.wait_log(r"service '[^']*' \(%s %s -> [^)]*\) is served by the gateway" % (kind, re.escape(host)), 5)
    return a


def curl(h, url, args=(), timeout=30, stdin=None, out=None):
    """curl `url` (-sS); returns (status, body bytes, stderr text). out: a file for the body (then body is b'')."""
    path = out or os.path.join(h.dir, 'curl.out')
    argv = ['curl', '-sS', '--max-time', str(timeout), '-o', path, '-w', '%{http_code}'] + list(args) + [url]
    r = subprocess.run(argv, stdin=stdin or subprocess.DEVNULL, capture_output=True, timeout=timeout + 5)
    assert r.returncode == 0, 'curl %s failed (exit %d): %s' % (url, r.returncode, r.stderr.decode(errors='replace'))
    body = b''
    if out is None:
        with open(path, 'rb') as f:
            body = f.read()
    return int(r.stdout.decode()), body, r.stderr.decode(errors='replace')


def get(port, host, path, timeout=10):
    """One request on its own connection (http.client); returns (status, headers, body)."""
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request('GET', path, headers={'Host': host})
        r = c.getresponse()
        return r.status, r.headers, r.read()
    finally:
        c.close()


def read_response(f, head_request=False):
    """One response from the buffered reader `f`: (status, {lowercase name: value}, body). Content-Length framing
    (every response here has one); None at EOF before a status line."""
    line = f.readline()
    if not line:
        return None
    m = re.match(rb'HTTP/1\.[01] (\d{3})', line)
    assert m, 'not a status line: %r' % line
    status = int(m.group(1))
    headers = {}
    while True:
        line = f.readline()
        assert line, 'EOF inside a response head'
        if line in (b'\r\n', b'\n'):
            break
        name, _, value = line.decode('latin-1').partition(':')
        headers[name.strip().lower()] = value.strip()
    length = 0 if head_request or status in (101, 204, 304) or status < 200 else int(headers.get('content-length', 0))
    body = f.read(length) if length else b''
    assert len(body) == length, 'EOF inside a response body (%d of %d bytes)' % (len(body), length)
    return status, headers, body


def raw_exchange(port, data, timeout=5, close_wait=1.0):
    """Sends `data` on a new connection and reads one response; returns (status, headers, body, closed): closed is
    True if the gateway closed the connection after it (within `close_wait` seconds)."""
    with connect(port, timeout) as s:
        s.sendall(data)
        f = s.makefile('rb')
        resp = read_response(f)
        assert resp is not None, 'the connection closed without a response to %r' % data[:80]
        s.settimeout(close_wait)
        try:
            closed = f.read(1) == b''
        except socket.timeout:
            closed = False
        except OSError:  # reset
            closed = True
        return resp + (closed,)


def served_connections(svc):
    """TCP connections the `--serve http` service has accepted so far (from its log)."""
    return len(re.findall(r'^\S+ http connection \d+ from', svc.text(), re.M))


def good_request(port, host='a.test', want=b'a'):
    status, _, body = get(port, host, '/whoami')
    assert (status, body) == (200, want), 'GET /whoami at %s: %d %r' % (host, status, body[:200])


# ---------------------------------------------------------------------------------------------------- routing by Host

@scenario(budget_s=40)
def http_two_hosts(h):
    """Two agents (different ids, one token with --allow-hosts '*.test') serve a.test and b.test on one shared HTTP
    port: curl with either Host reaches its own service (the Host's port and letter case do not matter); an unknown
    host is 404 with a page that says so."""
    svc_a = h.service('http', free_port(), label='a')
    svc_b = h.service('http', free_port(), label='b')
    gw = http_gateway(h)
    http_agent(h, gw, {'http:a.test': svc_a.port}, agent_id='edge-a')
    http_agent(h, gw, {'http:b.test': svc_b.port}, agent_id='edge-b')
    url = 'http://%s:%d/whoami' % (HOST, gw.http_port)
    for host, want in (('a.test', b'a'), ('b.test', b'b'), ('A.Test', b'a'), ('b.test:%d' % gw.http_port, b'b')):
        status, body, _ = curl(h, url, ['-H', 'Host: ' + host])
        assert (status, body) == (200, want), 'Host %s: %d %r, want 200 %r' % (host, status, body[:200], want)
        say('Host %s: 200 %r' % (host, body))
    # As a browser would: the name resolved to the gateway, "Host: a.test:PORT".
    status, body, _ = curl(h, 'http://a.test:%d/whoami' % gw.http_port,
                           ['--resolve', 'a.test:%d:%s' % (gw.http_port, HOST)])
    assert (status, body) == (200, b'a'), (status, body)
    for host in ('c.test', 'a.test.evil', 'test'):
        status, body, _ = curl(h, url, ['-H', 'Host: ' + host])
        assert status == 404, 'Host %s: %d %r, want 404' % (host, status, body[:200])
        assert b'no service for this host' in body, 'the 404 page does not say why: %r' % body
        say('Host %s: 404 %r' % (host, body.strip()))
    good_request(gw.http_port, 'b.test', b'b')
    assert gw.alive()


@scenario(budget_s=40)
def http_keepalive_alternating(h):
    """Keep-alive: 50 sequential requests on one client connection reach the service over at most 4 TCP connections
    (the agent's idle pool: per core, reused); 20 requests alternating a.test / b.test on one connection each reach
    their own service; 3 pipelined requests (one write) for different hosts are answered in order."""
    svc_a = h.service('http', free_port(), label='a')
    svc_b = h.service('http', free_port(), label='b')
    gw = http_gateway(h)
    http_agent(h, gw, {'http:a.test': svc_a.port, 'http:b.test': svc_b.port})

    c = http.client.HTTPConnection(HOST, gw.http_port, timeout=10)
    c.connect()
    lport = c.sock.getsockname()[1]

    def request(method, host, path, want_body=None):
        c.request(method, path, headers={'Host': host})
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, '%s %s%s: %d %r' % (method, host, path, r.status, body[:200])
        if want_body is not None:
            assert body == want_body, '%s %s%s answered %r, want %r' % (method, host, path, body[:200], want_body)
        assert c.sock is not None and c.sock.getsockname()[1] == lport, \
            'the client connection was closed after %s %s%s' % (method, host, path)
        return r, body

    for i in range(50):
        request('GET', 'a.test', '/whoami', b'a')
    upstream = served_connections(svc_a)
    say('50 requests on one client connection: the service accepted %d connection(s)' % upstream)
    assert 1 <= upstream <= 4, 'the agent opened %d connections to the service for 50 sequential requests' % upstream

    for i in range(20):
        host, want = ('a.test', b'a') if i % 2 == 0 else ('b.test', b'b')
        r, _ = request('GET', host, '/whoami', want)
        assert r.headers['X-Service'] == want.decode()
    # Bodies of other sizes in between: a response never leaks into the next one.
    for size in (0, 1, 65536, 300 * KIB + 7):
        _, body = request('GET', 'b.test' if size % 2 else 'a.test', '/bytes/%d' % size)
        assert len(body) == size and body == b''.join(stream_chunks(size))
        request('GET', 'a.test', '/whoami', b'a')
    c.close()
    say('20 alternating requests and 4 downloads on one connection: each from its own service')

    with connect(gw.http_port) as s:
        hosts = ['a.test', 'b.test', 'a.test', 'b.test']
        s.sendall(b''.join(b'GET /whoami HTTP/1.1\r\nHost: %s\r\n\r\n' % x.encode() for x in hosts))
        f = s.makefile('rb')
        got = []
        for _ in hosts:
            resp = read_response(f)
            assert resp is not None, 'the connection closed after %d pipelined responses' % len(got)
            got.append((resp[0], resp[2]))
    assert got == [(200, b'a'), (200, b'b'), (200, b'a'), (200, b'b')], 'pipelined responses: %s' % got
    say('pipelined: %s' % got)
    total = served_connections(svc_a) + served_connections(svc_b)
    say('the services accepted %d + %d connections in all' % (served_connections(svc_a), served_connections(svc_b)))
    assert served_connections(svc_a) <= 4 and served_connections(svc_b) <= 4, \
        'the services accepted %d connections for ~100 sequential requests' % total


@scenario(budget_s=30)
def http_headers(h):
    """What the service sees: X-Forwarded-For with the client's own values kept (every field, in order) and
    127.0.0.1 appended; X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host set by the gateway (client values replaced);
    Connection, Keep-Alive, Proxy-Connection, TE and every field named in Connection dropped; other fields
    kept as sent."""
    svc = h.service('http', free_port(), label='a')
    gw = http_gateway(h)
    http_agent(h, gw, {'http:a.test': svc.port})
    request = (b'GET /headers HTTP/1.1\r\n'
               b'Host: a.test\r\n'
               b'X-Forwarded-For: 203.0.113.7\r\n'
               b'X-Custom: kept as sent\r\n'
               b'X-Forwarded-For: 198.51.100.1, 198.51.100.2\r\n'
               b'X-Real-IP: 6.6.6.6\r\n'
               b'X-Forwarded-Proto: https\r\n'
               b'X-Forwarded-Host: evil.example\r\n'
               b'Connection: keep-alive, X-Secret-Hop\r\n'
               b'Connection: X-Other-Hop\r\n'
               b'X-Secret-Hop: 1\r\n'
               b'X-Other-Hop: 2\r\n'
               b'Keep-Alive: timeout=5\r\n'
               b'Proxy-Connection: keep-alive\r\n'
               b'TE: trailers\r\n'
               b'\r\n')
    status, headers, body, closed = raw_exchange(gw.http_port, request)
    assert status == 200, (status, body[:300])
    seen = json.loads(body)
    say('the service saw: %s' % seen)
    fields = {}
    for name, value in seen:
        fields.setdefault(name.lower(), []).append(value)

    def one(name):
        values = fields.get(name.lower(), [])
        assert len(values) == 1, '%s: %r (want exactly one)' % (name, values)
        return values[0]
    assert one('X-Forwarded-For') == '203.0.113.7, 198.51.100.1, 198.51.100.2, 127.0.0.1', fields
    assert one('X-Real-IP') == '127.0.0.1', fields
    assert one('X-Forwarded-Proto') == 'http', fields
    assert one('X-Forwarded-Host') == 'a.test', fields
    assert one('Host') == 'a.test', fields
    assert one('X-Custom') == 'kept as sent', fields
    for gone in ('x-secret-hop', 'x-other-hop', 'keep-alive', 'proxy-connection', 'te'):
        assert gone not in fields, '%s reached the service: %r' % (gone, fields)
    # The gateway's own hop to the service is keep-alive; nothing of the client's Connection fields is left.
    assert fields.get('connection', []) in ([], ['keep-alive']), fields
    assert 'x-service' in headers and not closed

    # The Host with a port is forwarded as sent; HTTP/1.0 requests get one response and a close.
    status, _, body = get(gw.http_port, 'a.test:%d' % gw.http_port, '/headers')
    seen = {k.lower(): v for k, v in json.loads(body)}
    assert status == 200 and seen['x-forwarded-host'] == 'a.test:%d' % gw.http_port, seen
    status, _, body, closed = raw_exchange(gw.http_port, b'GET /whoami HTTP/1.0\r\nHost: a.test\r\n\r\n')
    assert (status, body, closed) == (200, b'a', True), (status, body, closed)


# ---------------------------------------------------------------------------------------------------- bodies

def _write_stream_file(path, size):
    with open(path, 'wb') as f:
        for chunk in stream_chunks(size):
            f.write(chunk)


@scenario(budget_s=55)
def http_large(h):
    """64 MiB each way through the shared HTTP port, checked by SHA-256: an upload with Content-Length, a chunked
    upload (curl -T -), and a download; then the keep-alive connection still serves."""
    size = 64 * MIB
    svc = h.service('http', free_port(), label='a')
    gw = http_gateway(h)
    http_agent(h, gw, {'http:a.test': svc.port})
    want = stream_sha(size)
    up = os.path.join(h.dir, 'upload.bin')
    _write_stream_file(up, size)
    url = 'http://%s:%d/sha' % (HOST, gw.http_port)

    t0 = now()
    status, body, _ = curl(h, url, ['-H', 'Host: a.test', '-H', 'Expect:', '-H', 'Content-Type: application/octet-stream',
                                    '--data-binary', '@' + up])
    got = json.loads(body)
    assert status == 200 and (got['sha256'], got['bytes'], got['chunked']) == (want, size, False), (status, got)
    say('64 MiB upload (Content-Length): sha256 ok in %.1f s' % (now() - t0))

    t0 = now()
    with open(up, 'rb') as f:
        status, body, _ = curl(h, url, ['-H', 'Host: a.test', '-H', 'Expect:', '-X', 'POST', '-T', '-'], stdin=f)
    got = json.loads(body)
    assert status == 200 and (got['sha256'], got['bytes']) == (want, size), (status, got)
    assert got['chunked'], 'curl -T - sends chunked; the service saw %s' % got
    say('64 MiB upload (chunked): sha256 ok in %.1f s' % (now() - t0))
    os.unlink(up)

    t0 = now()
    down = os.path.join(h.dir, 'download.bin')
    status, _, _ = curl(h, 'http://%s:%d/bytes/%d' % (HOST, gw.http_port, size), ['-H', 'Host: a.test'], out=down)
    import hashlib
    d = hashlib.sha256()
    n = 0
    with open(down, 'rb') as f:
        for piece in iter(lambda: f.read(MIB), b''):
            d.update(piece)
            n += len(piece)
    os.unlink(down)
    assert status == 200 and (n, d.hexdigest()) == (size, want), (status, n, d.hexdigest())
    say('64 MiB download: sha256 ok in %.1f s' % (now() - t0))

    # A large download and upload on one keep-alive connection, then a small request on it.
    c = http.client.HTTPConnection(HOST, gw.http_port, timeout=20)
    c.request('GET', '/bytes/%d' % (8 * MIB + 3), headers={'Host': 'a.test'})
    r = c.getresponse()
    d = hashlib.sha256()
    while True:
        piece = r.read(MIB)
        if not piece:
            break
        d.update(piece)
    assert r.status == 200 and d.hexdigest() == stream_sha(8 * MIB + 3)
    c.request('POST', '/sha', body=b''.join(stream_chunks(8 * MIB)), headers={'Host': 'a.test'})
    r = c.getresponse()
    got = json.loads(r.read())
    assert got['sha256'] == stream_sha(8 * MIB), got
    c.request('GET', '/whoami', headers={'Host': 'a.test'})
    assert c.getresponse().read() == b'a'
    c.close()


@scenario(budget_s=30)
def http_expect_continue(h):
    """Expect: 100-continue passes through: curl's 1 MiB upload gets the service's 100 Continue (no waiting out
    curl's one-second fallback) and the body arrives intact."""
    size = MIB
    svc = h.service('http', free_port(), label='a')
    gw = http_gateway(h)
    http_agent(h, gw, {'http:a.test': svc.port})
    up = os.path.join(h.dir, 'upload.bin')
    _write_stream_file(up, size)
    for attempt in range(2):
        t0 = now()
        status, body, err = curl(h, 'http://%s:%d/sha' % (HOST, gw.http_port),
                                 ['-v', '-H', 'Host: a.test', '-H', 'Expect: 100-continue', '--expect100-timeout', '5',
                                  '--data-binary', '@' + up])
        took = now() - t0
        got = json.loads(body)
        assert status == 200 and (got['sha256'], got['bytes']) == (stream_sha(size), size), (status, got)
        assert got['expect'].lower() == '100-continue', 'the service did not see the Expect field: %s' % got
        assert re.search(r'^< HTTP/1\.1 100', err, re.M), 'curl got no 100 Continue:\n%s' % err[-2000:]
        assert took < 4, 'the upload took %.1f s: the 100 Continue came late' % took
        say('1 MiB upload with Expect: 100-continue: 100 seen, sha256 ok in %.2f s' % took)


# ---------------------------------------------------------------------------------------------------- WebSocket

async def _ws_session(port, host, sizes):
    import websockets
    uri = 'ws://%s/echo' % host
    async with websockets.connect(uri, host=HOST, port=port, max_size=None, open_timeout=5,
                                  close_timeout=5) as ws:
        for i, size in enumerate(sizes):
            if i % 2:
                message = ('%d:' % i + 'x' * size)[:max(size, 1)]
            else:
                message = b''.join(stream_chunks(size)) if size else b''
            await ws.send(message)
            echo = await asyncio.wait_for(ws.recv(), 10)
            assert type(echo) is type(message) and echo == message, \
                'message %d (%d bytes, %s) came back different (%d bytes)' % (i, size, type(message).__name__,
                                                                             len(echo))
        await ws.close()
        return ws.close_code


@scenario(budget_s=40)
def http_websocket(h):
    """WebSocket through the shared HTTP port (101, then a byte pipe): python3-websockets client and echo server;
    text and binary messages from 0 bytes to 4 MiB come back intact, 8 sessions at once, and the close handshake
    completes (1000) on both sides. The keep-alive HTTP service on the same gateway still serves."""
    import importlib.util
    if importlib.util.find_spec('websockets') is None:
        print('python3-websockets is not installed: skipping')
        sys.exit(77)
    ws_svc = h.service('ws', free_port())
    svc = h.service('http', free_port(), label='a')
    gw = http_gateway(h)
    http_agent(h, gw, {'http:ws.test': ws_svc.port, 'http:a.test': svc.port})
    sizes = [0, 1, 125, 126, 65535, 65536, 256 * KIB, 4 * MIB]
    code = asyncio.run(_ws_session(gw.http_port, 'ws.test:%d' % gw.http_port, sizes))
    assert code == 1000, 'close code %s' % code
    ws_svc.wait_log(r'ws closed after %d message\(s\): code 1000' % len(sizes), 5)
    line = ws_svc.wait_log(r'^.*ws connection from.*$', 1).group(0)
    assert 'Host ws.test:%d' % gw.http_port in line and 'X-Forwarded-For 127.0.0.1' in line, line
    say('one session: %d messages echoed, closed 1000' % len(sizes))

    async def many():
        return await asyncio.gather(*[_ws_session(gw.http_port, 'ws.test', [i, 1000 + i, 70000 + i])
                                      for i in range(8)])
    codes = asyncio.run(many())
    assert codes == [1000] * 8, codes
    deadline = now() + 5
    while len(re.findall(r'ws closed after 3 message\(s\): code 1000', ws_svc.text())) < 8:
        assert now() < deadline, 'the service did not see 8 clean closes:\n%s' % ws_svc.text()[-2000:]
        time.sleep(0.05)
    say('8 sessions at once: all echoed and closed 1000')
    good_request(gw.http_port)


# ---------------------------------------------------------------------------------------------------- errors

def _expect_error(port, data, want, what, closed=True):
    status, headers, body, was_closed = raw_exchange(port, data)
    assert status == want, '%s: %d %r, want %d' % (what, status, body[:200], want)
    if closed:
        assert was_closed, '%s: the connection stayed open after the %d' % (what, status)
    say('%s: %d %s' % (what, status, body.decode(errors='replace').strip()))
    return body


@scenario(budget_s=45)
def http_errors(h):
    """The gateway's own answers: 400 for every smuggling shape (CL+TE, differing Content-Lengths, obs-fold, space
    before the colon, Host against an absolute-form target) and for garbage and a missing Host, 431, 414, 405
    CONNECT, 408 for a head not finished in time (--http-head-timeout-ms 500), an idle keep-alive connection closed
    (--http-idle-timeout-ms), 502 when nothing listens at the service's local port, 404 once the agent of a claimed
    host is gone. The gateway keeps serving throughout."""
    svc = h.service('http', free_port(), label='a')
    dead_port = free_port()  # nothing listens there
    gw = http_gateway(h, extra=['--http-head-timeout-ms', '500', '--http-idle-timeout-ms', '1500'])
    http_agent(h, gw, {'http:a.test': svc.port, 'http:down.test': dead_port})
    port = gw.http_port
    good_request(port)

    body5 = b'hello'
    cases = [
        ('CL and TE', b'POST /sha HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'
                      b'0\r\n\r\n'),
        ('TE and CL', b'POST /sha HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n'
                      b'0\r\n\r\n'),
        ('differing Content-Lengths', b'POST /sha HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n'
                                      b'Content-Length: 6\r\n\r\n' + body5),
        ('a Content-Length list', b'POST /sha HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5, 6\r\n\r\n' + body5),
        ('obs-fold', b'GET /whoami HTTP/1.1\r\nHost: a.test\r\nX-Folded: one\r\n two\r\n\r\n'),
        ('space before the colon', b'GET /whoami HTTP/1.1\r\nHost: a.test\r\nX-Odd : 1\r\n\r\n'),
        ('space before the colon of Host', b'GET /whoami HTTP/1.1\r\nHost : a.test\r\n\r\n'),
        ('Host against the absolute-form target', b'GET http://b.test/whoami HTTP/1.1\r\nHost: a.test\r\n\r\n'),
        ('two Hosts', b'GET /whoami HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n'),
        ('no Host', b'GET /whoami HTTP/1.1\r\n\r\n'),
        ('a chunked encoding that is not last', b'POST /sha HTTP/1.1\r\nHost: a.test\r\n'
                                                b'Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n'),
        ('garbage', b'hello there\r\n\r\n'),
    ]
    for what, data in cases:
        _expect_error(port, data, 400, what)
    status, _, body, _ = raw_exchange(port, b'GET http://a.test/whoami HTTP/1.1\r\nHost: a.test\r\n\r\n')
    assert (status, body) == (200, b'a'), 'absolute-form agreeing with Host: %d %r' % (status, body)

    _expect_error(port, b'GET /whoami HTTP/1.1\r\nHost: a.test\r\n' +
                  b''.join(b'X-Pad-%d: %s\r\n' % (i, b'p' * 1000) for i in range(20)) + b'\r\n', 431,
                  'a 20 KiB head')
    _expect_error(port, b'GET /' + b'u' * (9 * KIB) + b' HTTP/1.1\r\nHost: a.test\r\n\r\n', 414,
                  'a 9 KiB request line')
    _expect_error(port, b'CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n', 405, 'CONNECT')

    # 408: half a head, then nothing.
    with connect(port, timeout=5) as s:
        t0 = now()
        s.sendall(b'GET /whoami HTTP/1.1\r\nHost: a.test\r\n')
        resp = read_response(s.makefile('rb'))
        took = now() - t0
    assert resp is not None and resp[0] == 408, 'a stalled head got %s' % (resp,)
    assert 0.3 <= took <= 3, 'the 408 came after %.2f s (--http-head-timeout-ms 500)' % took
    say('a stalled head: 408 after %.2f s' % took)
    # An idle keep-alive connection is closed after --http-idle-timeout-ms.
    with connect(port, timeout=5) as s:
        s.sendall(b'GET /whoami HTTP/1.1\r\nHost: a.test\r\n\r\n')
        f = s.makefile('rb')
        assert read_response(f)[2] == b'a'
        took, how = expect_closed(s, 4, 'an idle keep-alive connection')
    assert took >= 1.0, 'the idle connection was closed after %.2f s (--http-idle-timeout-ms 1500)' % took
    say('an idle keep-alive connection: closed (%s) after %.2f s' % (how, took))

    body = _expect_error(port, b'GET /whoami HTTP/1.1\r\nHost: down.test\r\n\r\n', 502, 'nothing at the local port',
                         closed=False)
    assert b'refused the connection' in body, 'the 502 page does not say why: %r' % body

    # A host whose agent is gone: its claim goes with its session (404), never another agent's service.
    gone_svc = h.service('http', free_port(), label='gone')
    gone = http_agent(h, gw, {'http:gone.test': gone_svc.port}, agent_id='edge-gone')
    good_request(port, 'gone.test', b'gone')
    gone.signal(signal.SIGKILL)
    gone.wait_exit(5)
    gw.wait_log(r"agent 'edge-gone': tunnel connection from .* closed", 5)
    deadline = now() + 3
    while True:
        status, _, body = get(port, 'gone.test', '/whoami')
        if status == 404 or now() > deadline:
            break
        assert status == 502, 'gone.test right after its agent died: %d %r' % (status, body)
        time.sleep(0.05)
    assert status == 404 and b'no service for this host' in body, 'gone.test: %d %r' % (status, body)
    say('gone.test after its agent was killed: 404')

    for _ in range(5):
        good_request(port)
    assert gw.alive(), 'the gateway died (status %s)' % gw.p.returncode
    for status in ('408', '502'):  # (the burst of 400s may be past the log's lines per second)
        assert re.search(r'http 127\.0\.0\.1 \S+: %s ' % status, gw.text()), 'no log line for the %s' % status


# ---------------------------------------------------------------------------------------------------- TLS by SNI

def _make_cert(h, name):
    """A self-signed P-256 certificate for `name` (CN and SAN) in the scenario directory: (cert, key)."""
    stem = os.path.join(h.dir, name.replace('*', 'wildcard'))
    r = subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
                        '-nodes', '-days', '2', '-subj', '/O=ringtun tests/CN=%s' % name,
                        '-addext', 'subjectAltName=DNS:%s' % name, '-keyout', stem + '-key.pem',
                        '-out', stem + '.pem'], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, 'openssl req: %s' % r.stderr
    return stem + '.pem', stem + '-key.pem'


def _tls_service(h, name):
    cert, key = _make_cert(h, name)
    port = free_port()
    s = Proc(h, 'tls-' + name.replace('*', 'wildcard'),
             ['openssl', 's_server', '-accept', '%s:%d' % (HOST, port), '-cert', cert, '-key', key, '-www', '-quiet'])
    deadline = now() + 10
    while True:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            break
        except OSError:
            assert s.alive() and now() < deadline, 'openssl s_server on %d did not start:\n%s' % (port, s.text())
            time.sleep(0.05)
    s.port = port
    return s


def s_client(port, servername):
    """openssl s_client to the shared TLS port (servername None: no SNI at all); returns (exit status, output)."""
    argv = ['openssl', 's_client', '-connect', '%s:%d' % (HOST, port)]
    argv += ['-servername', servername] if servername else ['-noservername']
    r = subprocess.run(argv, input=b'', capture_output=True, timeout=15)
    return r.returncode, (r.stdout + r.stderr).decode(errors='replace')


@scenario(budget_s=45)
def tls_sni(h):
    """The shared TLS port routes by SNI and passes TLS through: s_client to x.test sees x.test's own certificate
    (the service's, not the gateway's), y.test sees y's, deep.a.w.test reaches the *.w.test service; an unknown
    name and a ClientHello without SNI get an unrecognized_name alert (112); curl https://x.test works end to end;
    a silent client is closed after --tls-hello-timeout-ms, and plaintext on the port is closed."""
    x = _tls_service(h, 'x.test')
    y = _tls_service(h, 'y.test')
    w = _tls_service(h, '*.w.test')
    gw = http_gateway(h, tls=True, http=False, extra=['--tls-hello-timeout-ms', '800'])
    http_agent(h, gw, {'tls:x.test': x.port, 'tls:y.test': y.port, 'tls:*.w.test': w.port})
    port = gw.tls_port

    for name, want in (('x.test', 'x.test'), ('y.test', 'y.test'), ('deep.a.w.test', '*.w.test'),
                       ('X.TEST', 'x.test')):
        status, out = s_client(port, name)
        m = re.search(r'^subject=.*CN\s*=\s*(\S+)\s*$', out, re.M)
        assert m and m.group(1) == want, 'SNI %s: subject %s, want CN %s:\n%s' % (
            name, m and m.group(0), want, out[-2000:])
        assert 'Verify return code: 18' in out or 'self-signed' in out or 'self signed' in out, out[-1500:]
        say('SNI %s: %s' % (name, m.group(0)))

    for name in ('unknown.test', 'w.test', None):
        status, out = s_client(port, name)
        assert status != 0 and re.search(r'unrecognized name|alert number 112', out), \
            'SNI %s: no unrecognized_name alert (exit %d):\n%s' % (name, status, out[-2000:])
        say('SNI %s: alert unrecognized_name' % name)

    status, body, _ = curl(h, 'https://x.test:%d/' % port, ['-k', '--resolve', 'x.test:%d:%s' % (port, HOST)])
    assert status == 200 and b'x.test.pem' in body, 'curl https://x.test: %d %r' % (status, body[:300])
    say('curl https://x.test: 200 from openssl s_server -www')

    # A client that sends nothing is closed after the hello timeout; plaintext HTTP is closed at once.
    with connect(port) as s:
        took, how = expect_closed(s, 5, 'a silent client on the TLS port')
    assert 0.5 <= took <= 4, 'a silent client was closed after %.2f s (--tls-hello-timeout-ms 800)' % took
    with connect(port) as s:
        s.sendall(b'GET / HTTP/1.1\r\nHost: x.test\r\n\r\n')
        took, how = expect_closed(s, 3, 'plaintext on the TLS port')
    status, out = s_client(port, 'y.test')
    assert re.search(r'^subject=.*CN\s*=\s*y\.test\s*$', out, re.M), out[-2000:]
    assert gw.alive()


if __name__ == '__main__':
    sys.exit(tt.main(sys.argv[1:]))
