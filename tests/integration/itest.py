#!/usr/bin/env python3
"""The end-to-end test harness shared by test_tunnel.py and test_tls.py: test data, the local services (run as child
processes: `itest.py --serve MODE ...`), the programs under test as processes with logs, and client helpers.

Environment: RINGTUN_GATEWAY, RINGTUN_AGENT (the programs under test), RINGTUN_ITEST_DIR (where each scenario keeps
its logs: RINGTUN_ITEST_DIR/itest-logs/SCENARIO/*.log; default: a temporary directory).

Every process a scenario starts runs in its own process group with PDEATHSIG set, and is killed (SIGKILL to the group)
when the scenario ends. Every data check compares SHA-256 digests (and lengths), never lengths alone.
"""
import ctypes
import hashlib
import os
import random
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

if sys.version_info < (3, 9):  # random.randbytes, str.removeprefix...
    print('python >= 3.9 needed; skipping')
    sys.exit(77)

HOST = '127.0.0.1'
TOKEN = 'itest-secret'
GATEWAY_THREADS = 2  # so that every test crosses cores: the agent opens one tunnel connection per gateway core
KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
BLOCK = 64 * KIB

# RINGTUN_ITEST_SANITIZED=1 (meson sets it for a -Db_sanitize build): the programs run several times slower under
# ASan+UBSan, so each scenario's watchdog budget stretches (meson's timeout too, in tests/integration/meson.build).
SANITIZED = os.environ.get('RINGTUN_ITEST_SANITIZED', '') == '1'
SANITIZER_SLOWDOWN = 3


# ---------------------------------------------------------------------------------------------------- data

_POOL = None


def pool():
    """4 MiB of seeded random bytes: the raw material of every payload (no huge buffers needed)."""
    global _POOL
    if _POOL is None:
        _POOL = random.Random(0x5EED).randbytes(4 * MIB)
    return _POOL


def block(i):
    """Block i (64 KiB) of the test stream: a pool slice led by its own 8-byte index, so that no two blocks are equal
    (a lost, repeated or reordered block changes the SHA-256)."""
    p = pool()
    off = (i * 7919 % (len(p) // BLOCK)) * BLOCK
    return struct.pack('>Q', i) + p[off + 8:off + BLOCK]


def stream_chunks(total):
    """The test stream's first `total` bytes, in 64 KiB chunks."""
    i = 0
    sent = 0
    while sent < total:
        b = block(i)
        if total - sent < len(b):
            b = b[:total - sent]
        yield b
        sent += len(b)
        i += 1


def stream_sha(total):
    h = hashlib.sha256()
    for c in stream_chunks(total):
        h.update(c)
    return h.hexdigest()


def payload(rng, size):
    """`size` bytes from the pool at a random offset (different streams get different bytes)."""
    p = pool()
    out = bytearray()
    while len(out) < size:
        off = rng.randrange(0, len(p) - 1)
        out += p[off:off + min(size - len(out), len(p) - off)]
    return bytes(out)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def chunks(s, size=256 * KIB):
    """What socket `s` receives until EOF, piece by piece as it arrives."""
    while True:
        data = s.recv(size)
        if not data:
            return
        yield data


def raise_nofile(want=65536):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port():
    """A port free right now (bind 0, read, close): call it immediately before the port is used."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def now():
    return time.monotonic()


_T0 = now()


def say(msg):
    print('[%7.2fs] %s' % (now() - _T0, msg), flush=True)


# ---------------------------------------------------------------------------------------------------- local services
# Run as child processes (`--serve MODE`) so that their work does not compete with the test client for the GIL.

PROXY_V2_SIGNATURE = b'\r\n\r\n\x00\r\nQUIT\n'


def read_proxy_header(c):
    """Reads a PROXY protocol header (v1 or v2) from socket `c`; returns (description, bytes read past it).
    description: "v1 TCP4 127.0.0.2:40001 -> 0.0.0.0:8080", "v2 TCP6 ...", "v1 UNKNOWN", "v2 LOCAL"."""
    buf = b''
    while len(buf) < 16:
        data = c.recv(4096)
        if not data:
            raise ValueError('closed after %d bytes' % len(buf))
        buf += data
    if buf.startswith(PROXY_V2_SIGNATURE):
        ver_cmd, fam, length = buf[12], buf[13], struct.unpack('>H', buf[14:16])[0]
        while len(buf) < 16 + length:
            data = c.recv(4096)
            if not data:
                raise ValueError('v2 header cut short')
            buf += data
        block, rest = buf[16:16 + length], buf[16 + length:]
        if ver_cmd == 0x20:
            return 'v2 LOCAL', rest
        if ver_cmd != 0x21:
            raise ValueError('v2 version/command byte 0x%02x' % ver_cmd)
        if fam == 0x11 and length >= 12:
            src, dst = socket.inet_ntop(socket.AF_INET, block[0:4]), socket.inet_ntop(socket.AF_INET, block[4:8])
            sport, dport = struct.unpack('>HH', block[8:12])
            return 'v2 TCP4 %s:%d -> %s:%d' % (src, sport, dst, dport), rest
        if fam == 0x21 and length >= 36:
            src, dst = socket.inet_ntop(socket.AF_INET6, block[0:16]), socket.inet_ntop(socket.AF_INET6, block[16:32])
            sport, dport = struct.unpack('>HH', block[32:36])
            return 'v2 TCP6 [%s]:%d -> [%s]:%d' % (src, sport, dst, dport), rest
        raise ValueError('v2 family 0x%02x with %d address bytes' % (fam, length))
    if not buf.startswith(b'PROXY '):
        raise ValueError('starts with %r' % buf[:16])
    while b'\r\n' not in buf:
        if len(buf) > 107:
            raise ValueError('v1 line longer than 107 bytes')
        data = c.recv(4096)
        if not data:
            raise ValueError('v1 line cut short')
        buf += data
    line, rest = buf.split(b'\r\n', 1)
    if len(line) + 2 > 107:
        raise ValueError('v1 line longer than 107 bytes')
    parts = line.decode('ascii').split(' ')
    if parts[1] == 'UNKNOWN':
        return 'v1 UNKNOWN', rest
    if len(parts) != 6 or parts[1] not in ('TCP4', 'TCP6'):
        raise ValueError('v1 line %r' % line)
    fmt = '%s:%s' if parts[1] == 'TCP4' else '[%s]:%s'
    return 'v1 %s %s -> %s' % (parts[1], fmt % (parts[2], parts[4]), fmt % (parts[3], parts[5])), rest


def serve_main(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument('--serve', required=True, choices=['echo', 'source', 'halfclose', 'http', 'ws', 'proxy',
                                                            'proxy-http'])
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--size', type=int, default=0, help='source: bytes sent to each connection; halfclose: reply size')
    ap.add_argument('--label', default='', help='http: what GET /whoami answers')
    args = ap.parse_args(argv)
    if args.serve == 'http':
        return serve_http(args.port, args.label)
    if args.serve == 'ws':
        return serve_ws(args.port)
    raise_nofile()
    threading.stack_size(256 * KIB)
    lock = threading.Lock()

    def log(msg):
        with lock:
            sys.stderr.write('%.3f %s\n' % (time.time(), msg))
            sys.stderr.flush()

    def echo(c, peer, first=b'', label='echo'):
        # Echoes `first` (bytes already read) and then everything until EOF; logs the count and SHA-256.
        buf = bytearray(256 * KIB)
        mv = memoryview(buf)
        h = hashlib.sha256(first)
        n = len(first)
        how = 'eof'
        try:
            if first:
                c.sendall(first)
            while True:
                k = c.recv_into(buf)
                if k == 0:
                    break
                h.update(mv[:k])
                c.sendall(mv[:k])
                n += k
            c.shutdown(socket.SHUT_WR)
        except OSError as e:
            how = 'error %s' % e
        c.close()
        log('%s %s: %d bytes sha256 %s (%s)' % (label, peer, n, h.hexdigest(), how))

    def proxy(c, peer):
        # A service behind a PROXY protocol header (v1 or v2, told apart by the first bytes): logs the client the
        # header names, then echoes what follows it.
        try:
            header, rest = read_proxy_header(c)
        except (OSError, ValueError) as e:
            log('proxy %s: no valid PROXY header: %s' % (peer, e))
            c.close()
            return
        log('proxy %s: %s' % (peer, header))
        echo(c, peer, rest, 'proxy')

    def proxy_http(c, peer):
        # An HTTP/1.1 service behind a PROXY header: every response body names the client the connection's header
        # gave, and the connection stays open for more requests (so a reused connection would show the wrong client).
        try:
            header, buf = read_proxy_header(c)
            log('proxy-http %s: %s' % (peer, header))
            while True:
                while b'\r\n\r\n' not in buf:
                    data = c.recv(65536)
                    if not data:
                        c.close()
                        return
                    buf += data
                head, buf = buf.split(b'\r\n\r\n', 1)
                body = ('%s\n' % header).encode()
                c.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n' % len(body) +
                          body)
        except (OSError, ValueError) as e:
            log('proxy-http %s: %s' % (peer, e))
        c.close()

    def source(c, peer):
        h = hashlib.sha256()
        n = 0
        how = 'done'
        try:
            for chunk in stream_chunks(args.size):
                c.sendall(chunk)
                h.update(chunk)
                n += len(chunk)
            c.shutdown(socket.SHUT_WR)
        except OSError as e:
            how = 'error %s' % e
        c.close()
        log('source %s: sent %d bytes sha256 %s (%s)' % (peer, n, h.hexdigest(), how))

    def halfclose(c, peer):
        # Reads the whole request (to EOF) and only then answers: `size` bytes of the test stream + sha256(request).
        h = hashlib.sha256()
        n = 0
        try:
            for data in chunks(c):
                h.update(data)
                n += len(data)
            log('halfclose %s: request of %d bytes, sha256 %s; replying' % (peer, n, h.hexdigest()))
            for chunk in stream_chunks(args.size):
                c.sendall(chunk)
            c.sendall(h.digest())
            c.shutdown(socket.SHUT_WR)
            log('halfclose %s: reply sent' % (peer,))
        except OSError as e:
            log('halfclose %s: error %s' % (peer, e))
        c.close()

    handler = {'echo': echo, 'source': source, 'halfclose': halfclose, 'proxy': proxy,
               'proxy-http': proxy_http}[args.serve]
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((HOST, args.port))
    ls.listen(4096)
    log('%s service listening on %s:%d' % (args.serve, HOST, args.port))
    while True:
        c, peer = ls.accept()
        threading.Thread(target=handler, args=(c, '%s:%d' % peer), daemon=True).start()


def unhealthy_path(port):
    """While this file exists, the http service on `port` answers GET /health with 503."""
    return os.path.join(tempfile.gettempdir(), 'ringtun-itest-unhealthy-%d' % port)


def serve_http(port, label):
    """`--serve http`: a threaded HTTP/1.1 keep-alive server (http.server), every response with a Content-Length.
      GET /bytes/N     N bytes of the test stream (stream_chunks)
      POST /sha        {"sha256", "bytes", "chunked", "expect"} of the request body (Content-Length or chunked)
      GET /headers     the request head's fields as JSON [[name, value], ...], in order
      GET /whoami      the --label
      GET /connections how many TCP connections this service has accepted
      GET /health      200, or 503 while the file unhealthy_path(port) exists (health checks)
    Every response carries X-Service: LABEL. Each accepted connection is logged ('http connection N from PEER')."""
    import http.server
    import json
    lock = threading.Lock()
    accepted = [0]

    def log(msg):
        with lock:
            sys.stderr.write('%.3f %s\n' % (time.time(), msg))
            sys.stderr.flush()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def setup(self):
            super().setup()
            with lock:
                accepted[0] += 1
                n = accepted[0]
            log('http connection %d from %s:%d' % ((n,) + self.client_address))

        def log_message(self, fmt, *a):
            pass

        def reply(self, status, body, ctype='text/plain'):
            self.send_response(status)
            self.send_header('Content-Type', ctype)
            self.send_header('Content-Length', str(len(body)))
            self.send_header('X-Service', label)
            self.end_headers()
            if self.command != 'HEAD':
                self.wfile.write(body)

        def target_path(self):
            # Origin servers accept the absolute-form too (RFC 9112 section 3.2.2); http.server does not.
            path = self.path.split('?', 1)[0]
            m = re.match(r'https?://[^/]*(/.*)?$', path)
            return (m.group(1) or '/') if m else path

        def do_GET(self):
            path = self.target_path()
            if path.startswith('/bytes/'):
                size = int(path[len('/bytes/'):])
                self.send_response(200)
                self.send_header('Content-Type', 'application/octet-stream')
                self.send_header('Content-Length', str(size))
                self.send_header('X-Service', label)
                self.end_headers()
                for chunk in stream_chunks(size):
                    self.wfile.write(chunk)
            elif path == '/headers':
                self.reply(200, json.dumps([[k, v] for k, v in self.headers.items()]).encode(), 'application/json')
            elif path == '/whoami':
                self.reply(200, label.encode())
            elif path == '/connections':
                self.reply(200, str(accepted[0]).encode())
            elif path == '/health':
                if os.path.exists(unhealthy_path(port)):
                    self.reply(503, b'unhealthy\n')
                else:
                    self.reply(200, b'ok\n')
            else:
                self.reply(404, b'no such path here\n')

        def do_POST(self):
            h = hashlib.sha256()
            n = 0
            chunked = 'chunked' in self.headers.get('Transfer-Encoding', '').lower()
            if chunked:
                while True:
                    size = int(self.rfile.readline().split(b';', 1)[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b'\r\n', b'\n', b''):  # trailers
                            pass
                        break
                    left = size
                    while left:
                        data = self.rfile.read(min(left, 256 * KIB))
                        if not data:
                            raise ConnectionError('body cut short')
                        h.update(data)
                        left -= len(data)
                    n += size
                    self.rfile.readline()
            else:
                left = int(self.headers.get('Content-Length', '0'))
                while left:
                    data = self.rfile.read(min(left, 256 * KIB))
                    if not data:
                        raise ConnectionError('body cut short')
                    h.update(data)
                    n += len(data)
                    left -= len(data)
            log('http POST %s: %d bytes sha256 %s (%s)' % (self.path, n, h.hexdigest(),
                                                            'chunked' if chunked else 'length'))
            self.reply(200, json.dumps({'sha256': h.hexdigest(), 'bytes': n, 'chunked': chunked,
                                        'expect': self.headers.get('Expect', '')}).encode(), 'application/json')

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024
        allow_reuse_address = True

    server = Server((HOST, port), Handler)
    log('http service listening on %s:%d (%s)' % (HOST, port, label))
    server.serve_forever()


def serve_ws(port):
    """`--serve ws`: a WebSocket echo server (python3-websockets, asyncio API: Debian 12 has 10.4, without the sync
    API): every message comes back as it came (text as text, binary as binary). Logs each connection with its Host
    and X-Forwarded-For, and each close."""
    import asyncio
    import websockets

    def log(msg):
        sys.stderr.write('%.3f %s\n' % (time.time(), msg))
        sys.stderr.flush()

    async def echo(ws, path=None):
        headers = ws.request_headers
        log('ws connection from %s:%d, Host %s, X-Forwarded-For %s' % (ws.remote_address[:2] + (
            headers.get('Host'), headers.get('X-Forwarded-For'))))
        n = 0
        async for message in ws:
            await ws.send(message)
            n += 1
        log('ws closed after %d message(s): code %s' % (n, ws.close_code))

    async def run():
        async with websockets.serve(echo, HOST, port, max_size=None):
            log('ws service listening on %s:%d' % (HOST, port))
            await asyncio.Future()

    asyncio.run(run())


# ---------------------------------------------------------------------------------------------------- processes

# prctl(PR_SET_PDEATHSIG) for the children; None where libc cannot be loaded.
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None


# The first line of a sanitizer's report: "==PID==ERROR: AddressSanitizer: ...", "ERROR: LeakSanitizer: ...",
# "file.cpp:12:3: runtime error: ..." (UBSan).
SANITIZER_REPORT = re.compile(r'^.*(?:ERROR: (?:Address|Leak|Thread|Memory)Sanitizer|: runtime error: ).*$', re.M)


def _set_pdeathsig():
    # Runs in the child before exec: if the test process dies (even by SIGKILL), the kernel kills this child too.
    try:
        if _libc is not None:
            _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Proc:
    """A child process in its own process group, its stdout+stderr in LOG_DIR/label.log."""

    def __init__(self, harness, label, argv, env=None):
        """env: the child's whole environment (None: this process's)."""
        self.label = label
        self.argv = argv
        self.log_path = os.path.join(harness.dir, label + '.log')
        self._log = open(self.log_path, 'wb')
        self._log.write(('$ ' + ' '.join(argv) + '\n').encode())
        self._log.flush()
        self.start_time = now()
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                  start_new_session=True, preexec_fn=_set_pdeathsig, close_fds=True, env=env)
        self.pid = self.p.pid
        harness.procs.append(self)
        say('started %s (pid %d)' % (label, self.pid))

    def text(self):
        with open(self.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def size(self):
        return os.path.getsize(self.log_path)

    def alive(self):
        return self.p.poll() is None

    def wait_log(self, pattern, timeout, since=0, allow_exit=False):
        """Waits for a line matching `pattern` (regex) written after byte offset `since`; returns the match."""
        rx = re.compile(pattern, re.M)
        deadline = now() + timeout
        while True:
            with open(self.log_path, 'rb') as f:
                f.seek(since)
                m = rx.search(f.read().decode('utf-8', 'replace'))
            if m:
                return m
            if not allow_exit and not self.alive():
                raise AssertionError('%s exited (status %s) while waiting for /%s/ in its log'
                                     % (self.label, self.p.returncode, pattern))
            if now() >= deadline:
                raise AssertionError('%s: no line matching /%s/ within %.1f s' % (self.label, pattern, timeout))
            time.sleep(0.02)

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def wait_exit(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill_group(self):
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()

    def rss_kib(self):
        with open('/proc/%d/status' % self.pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        raise AssertionError('%s: no VmRSS' % self.label)


class Harness:
    def __init__(self, name):
        self.name = name
        base = os.environ.get('RINGTUN_ITEST_DIR') or tempfile.mkdtemp(prefix='ringtun-itest-')
        self.dir = os.path.join(base, 'itest-logs', name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.procs = []
        self.counts = {}
        self.fingerprint = None  # the last TLS gateway's, pinned by agents started after it
        self.gateway_bin = os.environ.get('RINGTUN_GATEWAY', '')
        self.agent_bin = os.environ.get('RINGTUN_AGENT', '')
        for b in (self.gateway_bin, self.agent_bin):
            if not b or not os.access(b, os.X_OK):
                raise AssertionError('RINGTUN_GATEWAY / RINGTUN_AGENT must name the built programs (got %r)' % b)

    def _label(self, base):
        n = self.counts.get(base, 0) + 1
        self.counts[base] = n
        return base if n == 1 else '%s-%d' % (base, n)

    # ---- the programs under test

    def gateway(self, port=0, extra=(), tokens=((TOKEN, None),), http=False, tls=False, env=None, host=HOST,
                nofile=None):
        """tokens: (secret, --allow-ports or None[, --allow-hosts or None]) each. http / tls: also serve the shared
        HTTP / TLS port (--http-listen / --tls-listen on a port the kernel picks: g.http_port / g.tls_port). With
        --admin-listen in `extra`, returns once the admin endpoint is up (g.admin_port, g.admin_url). env: the whole
        environment of the gateway (None: this process's). host: the --listen address ('::1' for IPv6). nofile: run
        it under `prlimit --nofile=N:N` (soft and hard, or the gateway raises its soft limit to the hard one)."""
        listen = '[%s]:%d' % (host, port) if ':' in host else '%s:%d' % (host, port)
        argv = [self.gateway_bin, '--listen', listen, '--threads', str(GATEWAY_THREADS)]
        if nofile is not None:
            prlimit = shutil.which('prlimit')
            if prlimit is None:
                raise AssertionError('prlimit (util-linux) not found: cannot cap the gateway\'s descriptors')
            # prlimit sets its own limits and execs the gateway: same pid, same process group.
            argv = [prlimit, '--nofile=%d:%d' % (nofile, nofile), '--'] + argv
        if http:
            argv += ['--http-listen', '%s:0' % HOST]
        if tls:
            argv += ['--tls-listen', '%s:0' % HOST]
        for secret, allow, *hosts in tokens:
            argv += ['--token', secret]
            if allow:
                argv += ['--allow-ports', allow]
            if hosts and hosts[0]:
                argv += ['--allow-hosts', hosts[0]]
        # TLS by default, as users run it: a self-signed pair in the scenario's state directory, pinned by the agents.
        if not any(flag in extra for flag in ('--insecure-plaintext', '--cert', '--state-dir')):
            argv += ['--state-dir', os.path.join(self.dir, 'state')]
        argv += list(extra)
        g = Proc(self, self._label('gateway'), argv, env=env)
        m = g.wait_log(r'listening for agents on \S+ \(port (\d+)\)', 10)
        g.port = int(m.group(1))
        for kind in ('HTTP', 'TLS'):
            shared = re.search(r'shared %s port on \S+ \(port (\d+)\)' % kind, g.text())
            setattr(g, kind.lower() + '_port', int(shared.group(1)) if shared else None)
        if http:
            assert g.http_port, 'the gateway logs no shared HTTP port'
        if tls:
            assert g.tls_port, 'the gateway logs no shared TLS port'
        f = re.search(r'fingerprint (sha256:[0-9a-f]{64})', g.text())
        g.fingerprint = f.group(1) if f else None
        if g.fingerprint:
            self.fingerprint = g.fingerprint
        if port:
            assert g.port == port, 'gateway listens on %d, not %d' % (g.port, port)
        if '--admin-listen' in extra:
            wait_admin(g)
        say('%s listens on port %d' % (g.label, g.port))
        return g

    def agent(self, gateway_port, services, agent_id='edge-1', token=TOKEN, extra=(), threads=2, gateway=None,
              prefix=()):
        """services: [(public_port, local_port)] or full --expose values. gateway: the --gateway value (default
        127.0.0.1:gateway_port). prefix: a command the agent runs under (e.g. unshare)."""
        argv = [self.agent_bin, '--gateway', gateway or '%s:%d' % (HOST, gateway_port), '--token', token,
                '--agent-id', agent_id, '--threads', str(threads)]
        for service in services:
            if isinstance(service, str):
                argv += ['--expose', service]
            else:
                pub, local = service
                argv += ['--expose', 'tcp:svc%d@%d=%s:%d' % (pub, pub, HOST, local)]
        if self.fingerprint and not any(f in extra for f in ('--insecure-plaintext', '--ca', '--gateway-fingerprint')):
            argv += ['--gateway-fingerprint', self.fingerprint]
        argv += list(extra)
        return Proc(self, self._label('agent-' + agent_id), list(prefix) + argv)

    def wait_agent_ready(self, agent, since=0, timeout=10):
        """Every tunnel connection of `agent` (one per gateway core) says it is ready."""
        deadline = now() + timeout
        rx = re.compile(r'connection (\d+)/(\d+) to gateway \S+ ready')
        while True:
            with open(agent.log_path, 'rb') as f:
                f.seek(since)
                found = rx.findall(f.read().decode('utf-8', 'replace'))
            if found:
                total = int(found[-1][1])
                if {int(k) for k, _ in found} >= set(range(1, total + 1)):
                    say('%s: %d tunnel connection(s) ready' % (agent.label, total))
                    return
            if not agent.alive():
                raise AssertionError('%s exited (status %s) before it was ready' % (agent.label, agent.p.returncode))
            if now() >= deadline:
                raise AssertionError('%s: not ready within %.1f s' % (agent.label, timeout))
            time.sleep(0.02)

    # ---- local services (child processes)

    def service(self, mode, port, size=0, label=''):
        """A local service (`--serve MODE`, see serve_main); label: what an http service answers to GET /whoami."""
        argv = [sys.executable, os.path.abspath(__file__), '--serve', mode, '--port', str(port), '--size', str(size)]
        if label:
            argv += ['--label', label]
        s = Proc(self, self._label('service-' + (label or mode)), argv)
        s.port = port
        s.wait_log(r'service listening on', 10)
        return s

    def flood(self, port, source, count, reopen=True):
        """A flooder process holding `count` idle connections from `source` to `port` (see flood_main)."""
        argv = [sys.executable, os.path.abspath(__file__), '--flood', str(port), '--source', source,
                '--count', str(count)] + (['--reopen'] if reopen else [])
        f = Proc(self, self._label('flood'), argv)
        f.wait_log(r'holding \d+', 10)
        return f

    def cleanup(self):
        for p in reversed(self.procs):
            p.kill_group()

    def sanitizer_reports(self):
        """[(label, report excerpt)]: every process log holding an ASan, LSan or UBSan report. A report fails the
        scenario even when the process went on (UBSan without halt_on_error) or its exit was expected."""
        found = []
        for p in self.procs:
            try:
                text = p.text()
            except OSError:
                continue
            m = SANITIZER_REPORT.search(text)
            if m:
                found.append((p.label, '\n'.join(text[m.start():].splitlines()[:30])))
        return found

    def dump_logs(self, lines=40):
        for p in self.procs:
            try:
                text = p.text().splitlines()
            except OSError as e:
                text = ['(cannot read: %s)' % e]
            status = 'running' if p.p.returncode is None else 'exit status %s' % p.p.returncode
            print('----- %s (pid %d, %s): last %d of %d lines of %s' % (p.label, p.pid, status, min(lines, len(text)),
                                                                       len(text), p.log_path))
            for line in text[-lines:]:
                print('    ' + line)
        sys.stdout.flush()


# ---------------------------------------------------------------------------------------------------- client helpers

class Relay:
    """A TCP relay on a port of its own on 127.0.0.1: for each connection it accepts it dials `target_port` and hands
    both sockets to the subclass's on_pair(client, target), on its accept thread. Subclasses set up their own state
    before calling this constructor (the accept thread starts here)."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.bind((HOST, 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                a, _ = self.ls.accept()
                g = socket.create_connection((HOST, self.target_port))
            except OSError:
                return
            self.on_pair(a, g)

    def on_pair(self, client, target):
        raise NotImplementedError


def connect(port, timeout=5.0):
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_all(s, limit=None):
    """Reads to EOF; returns the bytes."""
    out = bytearray()
    for data in chunks(s):
        out += data
        if limit is not None and len(out) > limit:
            raise AssertionError('more than %d bytes received' % limit)
    return bytes(out)


def recv_exactly(s, size):
    """Reads exactly `size` bytes; raises if the peer closes first."""
    out = bytearray()
    while len(out) < size:
        data = s.recv(min(256 * KIB, size - len(out)))
        if not data:
            raise AssertionError('connection closed after %d of %d bytes' % (len(out), size))
        out += data
    return bytes(out)


def round_trip(port, size=100 * KIB, seed=None, timeout=5.0):
    """One connection through the echo service: sends `size` bytes, half-closes, reads the echo to EOF and compares
    SHA-256. Raises on any failure."""
    rng = random.Random(seed if seed is not None else time.monotonic_ns())
    data = payload(rng, size)
    with connect(port, timeout) as s:
        done = []

        def send():
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                done.append(True)
            except OSError as e:
                done.append(e)
        t = threading.Thread(target=send, daemon=True)
        t.start()
        got = recv_all(s, limit=size)
        t.join(timeout)
    if done != [True]:
        raise AssertionError('round trip: sending failed: %s' % done)
    if len(got) != size or sha(got) != sha(data):
        raise AssertionError('round trip: echo differs (%d bytes, sha256 %s; sent %d, sha256 %s)'
                             % (len(got), sha(got)[:16], size, sha(data)[:16]))


def wait_round_trip(port, timeout, what):
    """Polls round trips until one succeeds; returns the seconds it took. Fails after `timeout`."""
    t0 = now()
    attempts = 0
    last = None
    while True:
        attempts += 1
        try:
            round_trip(port, size=16 * KIB, timeout=1.0)
            took = now() - t0
            say('%s: round trip ok after %.2f s (%d attempt(s))' % (what, took, attempts))
            return took
        except (OSError, AssertionError) as e:
            last = e
        if now() - t0 >= timeout:
            raise AssertionError('%s: no working round trip within %.1f s (%d attempts; last: %s)'
                                 % (what, timeout, attempts, last))
        time.sleep(0.05)


def expect_closed(s, timeout, what):
    """Reads from `s` until the peer closes it (EOF or reset); returns (seconds, how). Fails on a timeout."""
    t0 = now()
    s.settimeout(0.2)
    while True:
        try:
            data = s.recv(64 * KIB)
            if not data:
                return now() - t0, 'EOF'
        except socket.timeout:
            pass
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as e:
            return now() - t0, type(e).__name__
        if now() - t0 > timeout:
            raise AssertionError('%s: the connection is still open after %.1f s' % (what, timeout))


# ---------------------------------------------------------------------------------------------------- admin endpoint

def wait_admin(proc, since=0, timeout=10):
    """Waits for `proc` (gateway or agent run with --admin-listen) to log its admin endpoint; sets proc.admin_port
    and proc.admin_url ('http://127.0.0.1:PORT/') and returns the port."""
    m = proc.wait_log(r'admin endpoint: (http://[^\s/]+:(\d+)/)', timeout, since=since)
    proc.admin_url, proc.admin_port = m.group(1), int(m.group(2))
    return proc.admin_port


def admin_request(port, path, token=None, method='GET', body=None, headers=None, timeout=5.0):
    """One request to an admin endpoint on its own connection (http.client); returns (status, {lowercase name:
    value}, body bytes). token: sent as "Authorization: Bearer TOKEN"."""
    import http.client
    hdrs = dict(headers or {})
    if token is not None:
        hdrs['Authorization'] = 'Bearer ' + token
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def admin_json(port, path, token=None, method='GET', status=200):
    """admin_request, checking the status and the JSON content type; returns the parsed body."""
    import json
    got, headers, body = admin_request(port, path, token, method)
    assert got == status, '%s %s: status %d, want %d (%r)' % (method, path, got, status, body[:300])
    assert headers.get('content-type', '').startswith('application/json'), \
        '%s %s: Content-Type %r' % (method, path, headers.get('content-type'))
    try:
        return json.loads(body)
    except ValueError as e:
        raise AssertionError('%s %s: not JSON (%s): %r' % (method, path, e, body[:300]))


def raw_admin_exchange(port, data, timeout=5.0):
    """Sends `data` on a new connection to an admin endpoint; returns (status, {lowercase name: value}, body,
    closed): closed is True if the server closed the connection after its answer (within `timeout`)."""
    with connect(port, timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it may answer and close before reading everything
        got = bytearray()
        closed = False
        try:
            for piece in chunks(s, 64 * KIB):
                got += piece
        except socket.timeout:
            pass
        except (ConnectionResetError, ConnectionAbortedError):
            closed = True  # closed with unread request bytes left: a reset, after the answer
        else:
            closed = True
    head, _, body = bytes(got).partition(b'\r\n\r\n')
    m = re.match(rb'HTTP/1\.1 (\d{3}) ', head)
    assert m, 'no HTTP response to %r...: %r' % (data[:60], bytes(got[:200]))
    headers = {}
    for line in head.split(b'\r\n')[1:]:
        name, _, value = line.decode('latin-1').partition(':')
        headers[name.strip().lower()] = value.strip()
    return int(m.group(1)), headers, body, closed


# ---------------------------------------------------------------------------------------------------- floods

def flood_main(argv):
    """A flooder, run as its own process (`itest.py --flood PORT --source IP --count N [--reopen]`): opens N idle TCP
    connections from IP to 127.0.0.1:PORT (sending nothing) and, with --reopen, opens a new one for every one the
    other side closes, until killed. Logs 'holding N' lines (at most once a second) to stderr."""
    import argparse
    import selectors
    ap = argparse.ArgumentParser()
    ap.add_argument('--flood', type=int, required=True, help='the port to flood')
    ap.add_argument('--source', required=True)
    ap.add_argument('--count', type=int, required=True)
    ap.add_argument('--reopen', action='store_true')
    args = ap.parse_args(argv)
    raise_nofile()
    sel = selectors.DefaultSelector()
    held = set()
    opened = closed = failed = 0

    def open_one():
        nonlocal opened, failed
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((args.source, 0))
            s.setblocking(False)
            try:
                s.connect((HOST, args.flood))
            except BlockingIOError:
                pass
            sel.register(s, selectors.EVENT_READ)
            held.add(s)
            opened += 1
        except OSError:
            failed += 1
            s.close()

    for _ in range(args.count):
        open_one()
    last = 0.0
    while True:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b''
            if data:
                continue
            sel.unregister(s)
            held.discard(s)
            s.close()
            closed += 1
            if args.reopen:
                open_one()
        if time.monotonic() - last >= 1.0:
            last = time.monotonic()
            sys.stderr.write('%.3f holding %d (opened %d, closed by the peer %d, failed %d)\n'
                             % (time.time(), len(held), opened, closed, failed))
            sys.stderr.flush()


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--flood':
        sys.exit(flood_main(sys.argv[1:]))
    sys.exit(serve_main(sys.argv[1:]))
