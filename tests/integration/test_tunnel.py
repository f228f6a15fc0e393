#!/usr/bin/env python3
"""End-to-end tests of ringtun: a real ringtun-gateway and ringtun-agent on 127.0.0.1, driven through real sockets.

Usage: test_tunnel.py SCENARIO          run one scenario (meson registers each as its own test)
       test_tunnel.py --list            list the scenarios
       test_tunnel.py --serve MODE ...  internal: the local service, run as a child process (see serve_main)

Environment: RINGTUN_GATEWAY, RINGTUN_AGENT (the programs under test), RINGTUN_ITEST_DIR (where each scenario keeps
its logs: RINGTUN_ITEST_DIR/itest-logs/SCENARIO/*.log; default: a temporary directory).

Every process a scenario starts runs in its own process group with PDEATHSIG set, and is killed (SIGKILL to the group)
when the scenario ends, however it ends (failure, timeout via SIGALRM, SIGTERM from meson). On failure the tail of
every log is printed. Every data check compares SHA-256 digests (and lengths), never lengths alone.
"""
import asyncio
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
import traceback

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

SCENARIOS = {}


def scenario(budget_s):
    """Registers a scenario; `budget_s` is its own watchdog (SIGALRM), below meson's timeout."""
    def register(fn):
        SCENARIOS[fn.__name__] = (fn, budget_s)
        return fn
    return register


class ScenarioTimeout(Exception):
    pass


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

def serve_main(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument('--serve', required=True, choices=['echo', 'source', 'halfclose'])
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--size', type=int, default=0, help='source: bytes sent to each connection; halfclose: reply size')
    args = ap.parse_args(argv)
    raise_nofile()
    threading.stack_size(256 * KIB)
    lock = threading.Lock()

    def log(msg):
        with lock:
            sys.stderr.write('%.3f %s\n' % (time.time(), msg))
            sys.stderr.flush()

    def echo(c, peer):
        buf = bytearray(256 * KIB)
        mv = memoryview(buf)
        h = hashlib.sha256()
        n = 0
        how = 'eof'
        try:
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
        log('echo %s: %d bytes sha256 %s (%s)' % (peer, n, h.hexdigest(), how))

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
            while True:
                data = c.recv(256 * KIB)
                if not data:
                    break
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

    handler = {'echo': echo, 'source': source, 'halfclose': halfclose}[args.serve]
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((HOST, args.port))
    ls.listen(4096)
    log('%s service listening on %s:%d' % (args.serve, HOST, args.port))
    while True:
        c, peer = ls.accept()
        threading.Thread(target=handler, args=(c, '%s:%d' % peer), daemon=True).start()


# ---------------------------------------------------------------------------------------------------- processes

_libc = None


def _set_pdeathsig():
    # Runs in the child before exec: if the test process dies (even by SIGKILL), the kernel kills this child too.
    try:
        if _libc is not None:
            _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Proc:
    """A child process in its own process group, its stdout+stderr in LOG_DIR/label.log."""

    def __init__(self, harness, label, argv):
        self.label = label
        self.argv = argv
        self.log_path = os.path.join(harness.dir, label + '.log')
        self._log = open(self.log_path, 'wb')
        self._log.write(('$ ' + ' '.join(argv) + '\n').encode())
        self._log.flush()
        self.start_time = now()
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                  start_new_session=True, preexec_fn=_set_pdeathsig, close_fds=True)
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

    def gateway(self, port=0, extra=(), tokens=((TOKEN, None),)):
        argv = [self.gateway_bin, '--listen', '%s:%d' % (HOST, port), '--threads', str(GATEWAY_THREADS)]
        for secret, allow in tokens:
            argv += ['--token', secret]
            if allow:
                argv += ['--allow-ports', allow]
        # TLS by default, as users run it: a self-signed pair in the scenario's state directory, pinned by the agents.
        if not any(flag in extra for flag in ('--insecure-plaintext', '--cert', '--state-dir')):
            argv += ['--state-dir', os.path.join(self.dir, 'state')]
        argv += list(extra)
        g = Proc(self, self._label('gateway'), argv)
        m = g.wait_log(r'listening for agents on \S+ \(port (\d+)\)', 10)
        g.port = int(m.group(1))
        f = re.search(r'fingerprint (sha256:[0-9a-f]{64})', g.text())
        g.fingerprint = f.group(1) if f else None
        if g.fingerprint:
            self.fingerprint = g.fingerprint
        if port:
            assert g.port == port, 'gateway listens on %d, not %d' % (g.port, port)
        say('%s listens on port %d' % (g.label, g.port))
        return g

    def agent(self, gateway_port, services, agent_id='edge-1', token=TOKEN, extra=()):
        """services: [(public_port, local_port)]."""
        argv = [self.agent_bin, '--gateway', '%s:%d' % (HOST, gateway_port), '--token', token,
                '--agent-id', agent_id, '--threads', '2']
        for pub, local in services:
            argv += ['--expose', 'tcp:svc%d@%d=%s:%d' % (pub, pub, HOST, local)]
        if self.fingerprint and not any(f in extra for f in ('--insecure-plaintext', '--ca', '--gateway-fingerprint')):
            argv += ['--gateway-fingerprint', self.fingerprint]
        argv += list(extra)
        return Proc(self, self._label('agent-' + agent_id), argv)

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

    def service(self, mode, port, size=0):
        argv = [sys.executable, os.path.abspath(__file__), '--serve', mode, '--port', str(port), '--size', str(size)]
        s = Proc(self, self._label('service-' + mode), argv)
        s.port = port
        s.wait_log(r'service listening on', 10)
        return s

    def cleanup(self):
        for p in reversed(self.procs):
            p.kill_group()

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

def connect(port, timeout=5.0):
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_all(s, limit=None):
    """Reads to EOF; returns the bytes."""
    out = bytearray()
    while True:
        data = s.recv(256 * KIB)
        if not data:
            return bytes(out)
        out += data
        if limit is not None and len(out) > limit:
            raise AssertionError('more than %d bytes received' % limit)


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


# ---------------------------------------------------------------------------------------------------- scenarios

@scenario(budget_s=55)
def big_transfer(h):
    """1 GiB each way at once through one stream; SHA-256 equal both ways."""
    total = GIB
    echo = h.service('echo', free_port())
    gw = h.gateway()
    pub = free_port()
    agent = h.agent(gw.port, [(pub, echo.port)])
    h.wait_agent_ready(agent)
    wait_round_trip(pub, 5, 'agent up')

    s = connect(pub, timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * MIB)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MIB)
    sent_h = hashlib.sha256()
    result = {}

    def sender():
        try:
            n = 0
            for chunk in stream_chunks(total):
                s.sendall(chunk)
                sent_h.update(chunk)
                n += len(chunk)
            s.shutdown(socket.SHUT_WR)
            result['sent'] = n
        except Exception as e:  # noqa: BLE001 - reported below
            result['send_error'] = e

    t0 = now()
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    recv_h = hashlib.sha256()
    n = 0
    buf = bytearray(1 * MIB)
    mv = memoryview(buf)
    next_report = 256 * MIB
    while True:
        k = s.recv_into(buf)
        if k == 0:
            break
        recv_h.update(mv[:k])
        n += k
        if n >= next_report:
            say('received %d MiB (%.0f MiB/s)' % (n // MIB, n / MIB / (now() - t0)))
            next_report += 256 * MIB
    elapsed = now() - t0
    t.join(30)
    s.close()
    say('1 GiB each way in %.1f s (%.0f MiB/s each way)' % (elapsed, total / MIB / elapsed))
    assert 'send_error' not in result, 'sending failed: %r' % result.get('send_error')
    assert result.get('sent') == total, 'sent %r bytes' % result.get('sent')
    expected = sent_h.hexdigest()
    assert n == total, 'received %d bytes, want %d' % (n, total)
    assert recv_h.hexdigest() == expected, 'echo sha256 %s != sent sha256 %s' % (recv_h.hexdigest(), expected)
    # The other way: what the local service received (and echoed) is what the client sent.
    m = echo.wait_log(r'echo \S+: %d bytes sha256 ([0-9a-f]{64})' % total, 10)
    assert m.group(1) == expected, 'the service received sha256 %s, the client sent %s' % (m.group(1), expected)
    say('sha256 %s both ways' % expected)


@scenario(budget_s=55)
def many_streams(h):
    """1,000 concurrent streams with random sizes (1 B..200 KB), each echo checked by SHA-256."""
    nstreams = 1000
    limit = raise_nofile()
    assert limit >= 2 * nstreams + 100, 'RLIMIT_NOFILE is only %d' % limit
    echo = h.service('echo', free_port())
    gw = h.gateway()
    pub = free_port()
    agent = h.agent(gw.port, [(pub, echo.port)])
    h.wait_agent_ready(agent)
    wait_round_trip(pub, 5, 'agent up')

    rng = random.Random(1000)
    sizes = [rng.randint(1, 200_000) for _ in range(nstreams)]
    offsets = [rng.randrange(0, len(pool()) - 200_000) for _ in range(nstreams)]
    say('%d streams, %d bytes in all each way' % (nstreams, sum(sizes)))
    failures = []
    ok = [0]

    async def one(i):
        data = pool()[offsets[i]:offsets[i] + sizes[i]]
        writer = None
        try:
            reader, writer = await asyncio.open_connection(HOST, pub)

            async def send():
                writer.write(data)
                await writer.drain()
                writer.write_eof()
            sender = asyncio.ensure_future(send())
            got = bytearray()
            while True:
                chunk = await reader.read(256 * KIB)
                if not chunk:
                    break
                got += chunk
                if len(got) > len(data):
                    break
            await sender
            if len(got) != len(data) or sha(got) != sha(data):
                failures.append('stream %d: %d bytes sent (sha256 %s), %d echoed (sha256 %s)'
                                % (i, len(data), sha(data)[:16], len(got), sha(bytes(got))[:16]))
            else:
                ok[0] += 1
        except Exception as e:  # noqa: BLE001 - every stream's failure is reported
            failures.append('stream %d (%d bytes): %s: %s' % (i, len(data), type(e).__name__, e))
        finally:
            if writer is not None:
                writer.close()

    async def run_all():
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(nstreams))), timeout=40)

    t0 = now()
    asyncio.run(run_all())
    say('%d streams done in %.1f s: %d ok, %d failed' % (nstreams, now() - t0, ok[0], len(failures)))
    for f in failures[:20]:
        say('  ' + f)
    assert not failures, '%d of %d streams failed (first: %s)' % (len(failures), nstreams, failures[0])
    assert agent.alive() and gw.alive()


@scenario(budget_s=55)
def half_close(h):
    """The client half-closes after its request; the service replies only after EOF; the client gets all of it."""
    reply_size = 5 * 1000 * 1000
    svc = h.service('halfclose', free_port(), size=reply_size)
    gw = h.gateway()
    pub = free_port()
    agent = h.agent(gw.port, [(pub, svc.port)])
    h.wait_agent_ready(agent)
    request = payload(random.Random(3), 300 * KIB + 17)
    with connect(pub, timeout=15) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        t0 = now()
        reply = recv_all(s, limit=reply_size + 32)
        say('reply of %d bytes and EOF after %.2f s' % (len(reply), now() - t0))
    assert len(reply) == reply_size + 32, 'reply has %d bytes, want %d' % (len(reply), reply_size + 32)
    assert sha(reply[:reply_size]) == stream_sha(reply_size), 'the 5 MB reply differs (sha256)'
    assert reply[reply_size:] == hashlib.sha256(request).digest(), \
        'the service saw a different request: sha256 %s, sent %s' % (reply[reply_size:].hex(), sha(request))
    svc.wait_log(r'halfclose \S+: request of %d bytes, sha256 %s' % (len(request), sha(request)), 5)


@scenario(budget_s=55)
def service_down(h):
    """Nothing listens on the agent's local port: public clients are closed promptly; once the service is up, it works."""
    local = free_port()
    gw = h.gateway()
    pub = free_port()
    agent = h.agent(gw.port, [(pub, local)])
    h.wait_agent_ready(agent)
    for i in range(4):  # several, so that both gateway cores (and both tunnel connections) are exercised
        t0 = now()
        try:
            s = connect(pub)
        except ConnectionResetError:
            # Reset so fast that connect() itself saw it (the SYN-ACK, then the RST before connect() returned).
            say('client %d reset by the gateway during connect, after %.2f s' % (i, now() - t0))
            continue
        with s:
            try:
                s.sendall(b'hello?')
            except OSError:
                pass
            took, how = expect_closed(s, 3.0, 'public client %d with the service down' % i)
            say('client %d closed by the gateway after %.2f s (%s)' % (i, took, how))
    time.sleep(0.3)
    assert agent.alive(), 'the agent exited (status %s)' % agent.p.returncode
    assert gw.alive(), 'the gateway exited (status %s)' % gw.p.returncode
    h.service('echo', local)
    for i in range(4):
        round_trip(pub, size=200 * KIB, seed=i)
    say('the service works once started')


def _pump_until_dead(port, label, stats):
    """A public client that sends the test stream and reads its echo until the connection dies."""
    s = connect(port, timeout=10)
    stats.update(sock=s, received=0, recv_h=hashlib.sha256(), end=None, how=None)
    stop = threading.Event()
    stats['stop'] = stop

    def sender():
        try:
            for chunk in stream_chunks(64 * GIB):
                if stop.is_set():
                    break
                s.sendall(chunk)
        except OSError:
            pass
    threading.Thread(target=sender, daemon=True).start()

    def receiver():
        buf = bytearray(256 * KIB)
        mv = memoryview(buf)
        s.settimeout(None)
        try:
            while True:
                k = s.recv_into(buf)
                if k == 0:
                    stats['how'] = 'EOF'
                    break
                stats['recv_h'].update(mv[:k])
                stats['received'] += k
        except OSError as e:
            stats['how'] = type(e).__name__
        stats['end'] = now()
        stop.set()
    t = threading.Thread(target=receiver, daemon=True)
    t.start()
    stats['thread'] = t


@scenario(budget_s=55)
def agent_killed(h):
    """SIGKILL the agent mid-transfer: public connections end promptly; a new agent serves again within 2 s."""
    echo = h.service('echo', free_port())
    gw = h.gateway()
    pub = free_port()
    agent = h.agent(gw.port, [(pub, echo.port)], agent_id='edge-kill')
    h.wait_agent_ready(agent)
    wait_round_trip(pub, 5, 'agent up')
    clients = [{} for _ in range(4)]
    for i, st in enumerate(clients):
        _pump_until_dead(pub, 'client %d' % i, st)
    deadline = now() + 20
    while any(st['received'] < 4 * MIB for st in clients):
        assert all(st['end'] is None for st in clients), 'a transfer ended before the agent was killed: %s' % \
            [(st['received'], st['how']) for st in clients]
        assert now() < deadline, 'transfers too slow: %s' % [st['received'] for st in clients]
        time.sleep(0.02)
    say('transfers running (%s bytes received): SIGKILL the agent' % [st['received'] for st in clients])
    agent.signal(signal.SIGKILL)
    t_kill = now()
    for i, st in enumerate(clients):
        st['thread'].join(max(0.0, t_kill + 3.0 - now()))
        assert st['end'] is not None, 'client %d: still open %.1f s after the agent was killed (%d bytes received)' \
            % (i, now() - t_kill, st['received'])
        say('client %d: %s %.2f s after the kill, %d bytes received' % (i, st['how'], st['end'] - t_kill,
                                                                      st['received']))
        st['sock'].close()
    # What did arrive is an exact prefix of what was sent.
    for i, st in enumerate(clients):
        assert st['recv_h'].hexdigest() == stream_sha(st['received']), \
            'client %d: the %d bytes received are not the echo of what was sent (sha256)' % (i, st['received'])
    assert gw.alive(), 'the gateway exited (status %s)' % gw.p.returncode

    agent2 = h.agent(gw.port, [(pub, echo.port)], agent_id='edge-kill')
    wait_round_trip(pub, 5, 'new agent')
    took_from_start = now() - agent2.start_time
    assert took_from_start <= 2.5, 'the new agent served only %.2f s after its start (bound 2 s)' % took_from_start
    for i in range(4):
        round_trip(pub, size=200 * KIB, seed=i)
    say('the new agent serves (%.2f s after its start)' % took_from_start)


@scenario(budget_s=55)
def gateway_restart(h):
    """SIGTERM the gateway, start a new one on the same port: the agent reconnects by itself within its back-off."""
    echo = h.service('echo', free_port())
    tunnel_port = free_port()
    gw = h.gateway(port=tunnel_port, extra=['--drain-timeout-ms', '2000'])
    pub = free_port()
    agent = h.agent(gw.port, [(pub, echo.port)], extra=['--reconnect-max-ms', '1000'])
    h.wait_agent_ready(agent)
    wait_round_trip(pub, 5, 'agent up')
    gw.signal(signal.SIGTERM)
    t_term = now()
    status = gw.wait_exit(10)
    assert status is not None, 'the gateway did not exit within 10 s of SIGTERM'
    say('the gateway exited %.2f s after SIGTERM, status %d' % (now() - t_term, status))
    mark = agent.size()
    agent.wait_log(r'connection \d+ to the gateway lost', 5, since=0)
    time.sleep(1.5)  # let the agent's back-off reach its cap (connections refused meanwhile)
    assert agent.alive(), 'the agent exited (status %s) while the gateway was away' % agent.p.returncode
    gw2 = h.gateway(port=tunnel_port)
    wait_round_trip(pub, 8, 'after the gateway restart')
    since_start = now() - gw2.start_time
    assert since_start <= 5.0, 'service back only %.2f s after the new gateway started (bound 5 s)' % since_start
    h.wait_agent_ready(agent, since=mark, timeout=5)
    for i in range(4):
        round_trip(pub, size=200 * KIB, seed=i)
    say('agent back %.2f s after the new gateway started' % since_start)


@scenario(budget_s=55)
def graceful_drain(h):
    """SIGTERM the gateway mid-transfer: the transfer still finishes intact, new clients are turned away meanwhile,
    and the gateway exits 0 once the stream is done (GOAWAY, then drain, within --drain-timeout-ms)."""
    echo = h.service('echo', free_port())
    gw = h.gateway(extra=['--drain-timeout-ms', '20000'])
    pub = free_port()
    agent = h.agent(gw.port, [(pub, echo.port)])
    h.wait_agent_ready(agent)
    total = 48 * MIB
    s = connect(pub, timeout=20)
    sent = {'error': None}

    def send():
        try:
            for chunk in stream_chunks(total):
                s.sendall(chunk)
                time.sleep(0.003)  # spread over ~2 s so that the SIGTERM lands mid-transfer
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            sent['error'] = e

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    got = hashlib.sha256()
    n = 0
    buf = bytearray(256 * KIB)
    signalled = None
    while True:
        k = s.recv_into(buf)
        if k == 0:
            break
        got.update(memoryview(buf)[:k])
        n += k
        if signalled is None and n >= 4 * MIB:
            gw.signal(signal.SIGTERM)
            signalled = now()
            # While draining, the public port no longer accepts.
            refused = False
            for _ in range(50):
                try:
                    connect(pub, timeout=1).close()
                except OSError:
                    refused = True
                    break
                time.sleep(0.02)
            assert refused, 'a new client was still accepted while the gateway drained'
    s.close()
    sender.join(10)
    assert signalled is not None, 'the transfer ended before the SIGTERM was sent'
    assert sent['error'] is None, 'sending failed during the drain: %s' % sent['error']
    assert n == total, 'received %d bytes after SIGTERM, want %d' % (n, total)
    assert got.hexdigest() == stream_sha(total), 'the echo differs (sha256) after a drain'
    status = gw.wait_exit(10)
    assert status == 0, 'the gateway exit status after draining is %s, want 0' % status
    gw.wait_log(r'ringtun-gateway stopped', 2)
    say('transfer completed %.2f s after SIGTERM; gateway exited 0' % (now() - signalled))


@scenario(budget_s=55)
def bad_token(h):
    """A wrong token: the agent exits 3 saying so; the gateway logs it and keeps serving a correct agent."""
    echo = h.service('echo', free_port())
    gw = h.gateway()
    pub = free_port()
    good = h.agent(gw.port, [(pub, echo.port)], agent_id='good')
    h.wait_agent_ready(good)
    round_trip(pub)
    bad = h.agent(gw.port, [(free_port(), echo.port)], agent_id='bad', token='wrong-token')
    status = bad.wait_exit(8)
    assert status is not None, 'the agent with a wrong token is still running after 8 s'
    took = now() - bad.start_time
    say('bad agent exited with status %d after %.2f s' % (status, took))
    assert status == 3, 'the agent with a wrong token exited with %d, want 3' % status
    lines = [ln for ln in bad.text().splitlines()[1:] if 'token' in ln.lower() and 'refused' in ln.lower()]
    assert lines, 'the agent did not log a line with "token" and "refused"'
    say('agent: ' + lines[0])
    m = gw.wait_log(r"^.*agent 'bad'.*token refused.*$", 3)
    say('gateway: ' + m.group(0))
    assert gw.alive(), 'the gateway exited (status %s)' % gw.p.returncode
    for i in range(4):
        round_trip(pub, size=200 * KIB, seed=i)
    # And a correct agent can still register after the refusal.
    pub2 = free_port()
    good2 = h.agent(gw.port, [(pub2, echo.port)], agent_id='good-2')
    h.wait_agent_ready(good2)
    round_trip(pub2)
    say('the gateway keeps serving correct agents')


def _frame(ftype, stream, payload_bytes, flags=0, arg=0, length=None):
    n = len(payload_bytes) if length is None else length
    return struct.pack('>BBHIII', ftype, flags, 0, stream, n, arg) + payload_bytes


PREFACE = b'RINGTUN\x01'
FRAME_SETTINGS = 6
FRAME_CONTROL = 7


@scenario(budget_s=55)
def garbage(h):
    """Garbage, a half handshake and an oversized hello on the tunnel port: each closed, with a logged reason.
    The ringtun handshake itself is probed on a plaintext gateway; then the same at a TLS gateway's door."""
    echo = h.service('echo', free_port())
    gw = h.gateway(extra=['--dead-peer-ms', '1500', '--heartbeat-ms', '500', '--insecure-plaintext'])
    pub = free_port()
    agent = h.agent(gw.port, [(pub, echo.port)],
                    extra=['--heartbeat-ms', '500', '--dead-peer-ms', '1500', '--insecure-plaintext'])
    h.wait_agent_ready(agent)
    round_trip(pub)

    def probe(what, data, timeout):
        s = socket.create_connection((HOST, gw.port), timeout=5)
        lport = s.getsockname()[1]
        t0 = now()
        try:
            s.sendall(data)
        except OSError as e:  # the gateway may close while we are still sending (oversized hello)
            say('%s: sending ended with %s' % (what, type(e).__name__))
        took, how = expect_closed(s, timeout, what)
        took = now() - t0
        s.close()
        m = gw.wait_log(r'^.*tunnel connection from 127\.0\.0\.1:%d closed: (.*)$' % lport, 3)
        say('%s: closed by the gateway after %.2f s (%s); gateway log: %s' % (what, took, how, m.group(0)))
        return took, m.group(1)

    took, reason = probe('garbage', b'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 3.0)
    assert 'preface' in reason, 'garbage: unexpected reason %r' % reason

    took, reason = probe('half handshake', PREFACE, 1.5 + 3.0)
    assert took >= 1.0, 'half handshake: closed after %.2f s, before --dead-peer-ms (1500)' % took
    assert 'timed out' in reason or 'time' in reason, 'half handshake: unexpected reason %r' % reason

    big = b'{"type":"hello","version":1,"agent_id":"' + b'x' * (20 * KIB) + b'"}'
    data = PREFACE + _frame(FRAME_SETTINGS, 0, b'') + _frame(FRAME_CONTROL, 0, big)
    took, reason = probe('oversized hello (%d-byte CONTROL)' % len(big), data, 3.0)
    assert took < 1.0, 'oversized hello: closed only after %.2f s (not from its header)' % took
    assert 'timed out' not in reason, 'oversized hello: closed by the timeout, not rejected: %r' % reason

    assert gw.alive(), 'the gateway exited (status %s)' % gw.p.returncode
    assert agent.alive(), 'the agent exited (status %s)' % agent.p.returncode
    for i in range(4):
        round_trip(pub, size=200 * KIB, seed=i)

    # A TLS gateway: garbage is not TLS; a TLS record header that never completes times out.
    gw = h.gateway(extra=['--dead-peer-ms', '1500', '--heartbeat-ms', '500'])
    took, reason = probe('garbage at TLS', b'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 3.0)
    assert 'not TLS' in reason, 'garbage at TLS: unexpected reason %r' % reason
    took, reason = probe('half TLS record', b'\x16\x03\x01\x02\x00\x01', 1.5 + 3.0)
    assert took >= 1.0, 'half TLS record: closed after %.2f s, before --dead-peer-ms (1500)' % took
    assert 'TLS handshake timed out' in reason, 'half TLS record: unexpected reason %r' % reason
    say('the gateway keeps serving')


@scenario(budget_s=55)
def slow_consumer(h):
    """A public client reads nothing while the service sends 1 GiB: memory stays bounded; then every byte arrives."""
    total = GIB
    src = h.service('source', free_port(), size=total)
    gw = h.gateway()
    pub = free_port()
    agent = h.agent(gw.port, [(pub, src.port)])
    h.wait_agent_ready(agent)
    s = connect(pub, timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * KIB)
    say('client connected, reading nothing')
    time.sleep(5)
    samples = []
    for _ in range(2):
        g, a = gw.rss_kib(), agent.rss_kib()
        samples.append((g, a))
        say('VmRSS: gateway %.1f MiB, agent %.1f MiB' % (g / KIB, a / KIB))
        if len(samples) < 2:
            time.sleep(4)
    (g1, a1), (g2, a2) = samples
    # The pipeline is full and stalled: bytes wait at the client, and the service is still blocked in its send.
    import fcntl
    import termios
    waiting = struct.unpack('i', fcntl.ioctl(s.fileno(), termios.FIONREAD, b'\0\0\0\0'))[0]
    say('%d bytes wait unread in the client socket' % waiting)
    assert waiting > 0, 'no byte reached the stalled client in 9 s'
    assert not re.search(r'source \S+: sent', src.text()), 'the service finished sending to a client that reads nothing'
    bound = 150 * KIB
    growth = 4 * KIB
    assert g2 < bound and a2 < bound, 'VmRSS above 150 MiB: gateway %d KiB, agent %d KiB' % (g2, a2)
    assert g2 - g1 <= growth, 'gateway VmRSS grew by %d KiB in 4 s with a stalled reader' % (g2 - g1)
    assert a2 - a1 <= growth, 'agent VmRSS grew by %d KiB in 4 s with a stalled reader' % (a2 - a1)
    t0 = now()
    recv_h = hashlib.sha256()
    n = 0
    buf = bytearray(1 * MIB)
    mv = memoryview(buf)
    while True:
        k = s.recv_into(buf)
        if k == 0:
            break
        recv_h.update(mv[:k])
        n += k
    s.close()
    say('read %d bytes in %.1f s' % (n, now() - t0))
    m = src.wait_log(r'source \S+: sent (\d+) bytes sha256 ([0-9a-f]{64}) \((.*)\)', 10)
    assert m.group(3) == 'done' and int(m.group(1)) == total, 'the service: %s' % m.group(0)
    assert n == total, 'received %d bytes, want %d' % (n, total)
    expected = stream_sha(total)
    assert m.group(2) == expected
    assert recv_h.hexdigest() == expected, 'received sha256 %s, sent %s' % (recv_h.hexdigest(), expected)
    say('all %d bytes arrived, sha256 %s' % (n, expected))


@scenario(budget_s=55)
def port_taken(h):
    """Two agents ask for the same public port: the second is refused (exit 3, port + "taken"); the first works."""
    echo = h.service('echo', free_port())
    gw = h.gateway()
    pub = free_port()
    first = h.agent(gw.port, [(pub, echo.port)], agent_id='first')
    h.wait_agent_ready(first)
    round_trip(pub)
    second = h.agent(gw.port, [(pub, echo.port)], agent_id='second')
    status = second.wait_exit(8)
    assert status is not None, 'the second agent is still running after 8 s'
    say('second agent exited with status %d after %.2f s' % (status, now() - second.start_time))
    assert status == 3, 'the second agent exited with %d, want 3' % status
    lines = [ln for ln in second.text().splitlines()[1:] if str(pub) in ln and 'taken' in ln]
    assert lines, 'the second agent did not log a line naming port %d and "taken"' % pub
    say('second agent: ' + lines[0])
    m = gw.wait_log(r"^.*agent 'second'.*refused.*%d.*taken.*$" % pub, 3)
    say('gateway: ' + m.group(0))
    assert first.alive(), 'the first agent exited (status %s)' % first.p.returncode
    for i in range(4):
        round_trip(pub, size=200 * KIB, seed=i)
    say('the first agent keeps working')


# ---------------------------------------------------------------------------------------------------- main

@scenario(budget_s=60)
def early_clients(h):
    """Public clients that arrive the moment the port opens, before the agent's other tunnel connections are up,
    wait for them instead of being closed: 300 clients connected at once, every echo equal (SHA-256)."""
    echo = h.service('echo', free_port())
    for attempt in range(3):  # a fresh agent each time: the window is the first moments of an agent
        gw = h.gateway()
        pub = free_port()
        agent = h.agent(gw.port, [(pub, echo.port)], agent_id='early-%d' % attempt)
        deadline = now() + 10
        while True:  # the public port opens when connection 0 registers; connection 1 may still be on its way
            try:
                socket.create_connection((HOST, pub), timeout=1).close()
                break
            except OSError:
                if now() >= deadline:
                    raise AssertionError('public port %d never opened' % pub)
                time.sleep(0.002)
        errors = []

        def client(i):
            try:
                round_trip(pub, size=2 * KIB, seed=i)
            except Exception as e:  # noqa: BLE001 - collected and reported below
                errors.append('%s: %s' % (type(e).__name__, e))
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(300)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        say('attempt %d: %d of 300 clients failed%s' % (attempt, len(errors), (': ' + errors[0]) if errors else ''))
        assert not errors, '%d early client(s) failed, first: %s' % (len(errors), errors[0])
        agent.kill_group()
        gw.kill_group()


def main(argv):
    global _libc
    if len(argv) >= 1 and argv[0] == '--serve':
        serve_main(argv)
        return 0
    if len(argv) != 1 or argv[0] not in SCENARIOS and argv[0] != '--list':
        print('usage: %s SCENARIO|--list\nscenarios: %s' % (sys.argv[0], ' '.join(SCENARIOS)), file=sys.stderr)
        return 2
    if argv[0] == '--list':
        print('\n'.join(SCENARIOS))
        return 0
    try:
        _libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        _libc = None
    name = argv[0]
    fn, budget = SCENARIOS[name]

    def on_alarm(signum, frame):
        raise ScenarioTimeout('scenario %s exceeded its %d s budget' % (name, budget))

    def on_term(signum, frame):
        raise ScenarioTimeout('scenario %s stopped by signal %d' % (name, signum))
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    h = None
    ok = False
    t0 = now()
    try:
        h = Harness(name)
        say('scenario %s: %s (logs in %s)' % (name, fn.__doc__, h.dir))
        signal.alarm(budget)
        fn(h)
        signal.alarm(0)
        ok = True
    except BaseException:  # noqa: BLE001 - everything is reported, then the processes are killed
        signal.alarm(0)
        print('FAIL: scenario %s after %.1f s' % (name, now() - t0))
        traceback.print_exc(file=sys.stdout)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if h is not None:
            if not ok:
                h.dump_logs()
            h.cleanup()
    if ok:
        print('PASS: scenario %s in %.1f s' % (name, now() - t0))
    sys.stdout.flush()
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
