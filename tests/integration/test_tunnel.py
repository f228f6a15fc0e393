#!/usr/bin/env python3
"""End-to-end tests of ringtun: a real ringtun-gateway and ringtun-agent on 127.0.0.1, driven through real sockets.

Usage: test_tunnel.py SCENARIO          run one scenario (meson registers each as its own test)
       test_tunnel.py --list            list the scenarios

The harness (programs as processes with logs, local services, test data, client helpers) is itest.py; see it for the
environment variables. Each scenario runs under a watchdog (SIGALRM) and SIGTERM from meson; however it ends, every
process it started is killed, and on failure the tail of every log is printed. Every data check compares SHA-256
digests (and lengths), never lengths alone.
"""
import asyncio
import hashlib
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

if sys.version_info < (3, 9):  # random.randbytes, str.removeprefix...
    print('python >= 3.9 needed; skipping')
    sys.exit(77)

# The harness (processes, services, data, client helpers) is itest.py.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest import (  # noqa: E402
    GIB, HOST, KIB, MIB, SANITIZED, SANITIZER_SLOWDOWN, TOKEN, Harness, connect, expect_closed, free_port, now,
    payload, pool, raise_nofile, recv_all, round_trip, say, sha, stream_chunks, stream_sha, wait_round_trip)

SCENARIOS = {}


def scenario(budget_s):
    """Registers a scenario; `budget_s` is its own watchdog (SIGALRM), below meson's timeout."""
    def register(fn):
        SCENARIOS[fn.__name__] = (fn, budget_s)
        return fn
    return register


class ScenarioTimeout(Exception):
    pass


class Skip(Exception):
    """Raised by a scenario that cannot run on this host (a tool missing): reported as skipped (exit 77)."""


SKIP = 77


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
    # Blocking before either thread starts: settimeout() from one thread while another is inside sendall() lets the
    # sender see EAGAIN with no timeout set, and sendall() raises BlockingIOError (CPython drops the GIL between
    # the two halves of settimeout).
    s.settimeout(None)
    stats.update(sock=s, sent=0, received=0, recv_h=hashlib.sha256(), end=None, how=None, send_error=None)
    stop = threading.Event()
    stats['stop'] = stop

    def sender():
        try:
            for chunk in stream_chunks(64 * GIB):
                if stop.is_set():
                    break
                s.sendall(chunk)
                stats['sent'] += len(chunk)
        except OSError as e:
            stats['send_error'] = '%s: %s' % (type(e).__name__, e)
    threading.Thread(target=sender, daemon=True).start()

    def receiver():
        buf = bytearray(256 * KIB)
        mv = memoryview(buf)
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
        assert all(st['end'] is None and st['send_error'] is None for st in clients), \
            'a transfer ended before the agent was killed: %s' % \
            [(st['sent'], st['received'], st['how'], st['send_error']) for st in clients]
        assert now() < deadline, 'transfers too slow (bytes sent, received): %s' % \
            [(st['sent'], st['received']) for st in clients]
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


def _thread_cpus(proc):
    """{thread name: Cpus_allowed_list} of every thread of a running program."""
    out = {}
    task_dir = '/proc/%d/task' % proc.p.pid
    for tid in os.listdir(task_dir):
        try:
            with open(os.path.join(task_dir, tid, 'status')) as f:
                fields = dict(line.split(':', 1) for line in f if ':' in line)
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        out['%s/%s' % (fields['Name'].strip(), tid)] = fields['Cpus_allowed_list'].strip()
    return out


@scenario(budget_s=40)
def cpus(h):
    """--cpus pins the loops where told (gateway and agent); the agent is unpinned without it; bad lists exit 2."""
    allowed = sorted(os.sched_getaffinity(0))
    with open('/proc/self/status') as f:  # this process's own list, as the kernel writes it
        whole = next(line.split(':', 1)[1].strip() for line in f if line.startswith('Cpus_allowed_list:'))
    last = allowed[-1]
    # Mistakes: exit 2 with the flag and the reason, before anything listens.
    for argv, message in (
            (['--cpus', '2-1'], 'the range "2-1" runs backwards'),
            (['--cpus', '0,x'], '"x" is not one'),
            (['--cpus', '1023'] if 1023 not in allowed else ['--cpus', '0,0'],
             'is not one this process may run on' if 1023 not in allowed else 'listed twice')):
        for program in ('gateway', 'agent'):
            binary = h.gateway_bin if program == 'gateway' else h.agent_bin
            base = (['--listen', '%s:0' % HOST, '--token', TOKEN, '--insecure-plaintext'] if program == 'gateway' else
                    ['--gateway', '%s:1' % HOST, '--token', TOKEN, '--expose', 'tcp:9=%s:1' % HOST,
                     '--insecure-plaintext'])
            r = subprocess.run([binary] + base + argv, capture_output=True, text=True, timeout=10)
            assert r.returncode == 2 and ('--cpus: ' in r.stderr and message in r.stderr), \
                '%s %s: status %d, stderr %r' % (program, argv, r.returncode, r.stderr)
            say('%s %s: exit 2, %s' % (program, ' '.join(argv), r.stderr.strip()))
    # Pinned where told: both loops of the gateway on the last allowed CPU; the agent's on it too when asked.
    echo = h.service('echo', free_port())
    gw = h.gateway(extra=['--cpus', str(last)])
    pub = free_port()
    pinned = h.agent(gw.port, [(pub, echo.port)], agent_id='pinned', extra=['--cpus', str(last)])
    h.wait_agent_ready(pinned)
    round_trip(pub, size=256 * KIB)
    for proc in (gw, pinned):
        loops = {k: v for k, v in _thread_cpus(proc).items() if k.startswith('ringtun-loop')}
        assert len(loops) == 2 and set(loops.values()) == {str(last)}, '%s loops: %s' % (proc.label, loops)
        say('%s: loops on CPU %s: %s' % (proc.label, last, sorted(loops)))
    # Without --cpus the agent's loops may run on any CPU the process may (the services share its box).
    pub2 = free_port()
    free = h.agent(gw.port, [(pub2, echo.port)], agent_id='free')
    h.wait_agent_ready(free)
    round_trip(pub2, size=256 * KIB)
    loops = {k: v for k, v in _thread_cpus(free).items() if k.startswith('ringtun-loop')}
    assert loops and set(loops.values()) == {whole}, 'unpinned agent loops: %s (process: %s)' % (loops, whole)
    say('agent without --cpus: loops on %s, as the process' % whole)


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
    """Two agents ask for the same public port: the second is refused for now (its log and the gateway's name the port
    and "taken"), stays up and asks again; the first keeps working; once the first is gone, the second takes the port."""
    echo = h.service('echo', free_port())
    gw = h.gateway()
    pub = free_port()
    first = h.agent(gw.port, [(pub, echo.port)], agent_id='first')
    h.wait_agent_ready(first)
    round_trip(pub)
    second = h.agent(gw.port, [(pub, echo.port)], agent_id='second', extra=['--retry-refused-ms', '300'])
    line = second.wait_log(r'^.*\b%d\b.*taken.*$' % pub, 8).group(0)
    say('second agent: ' + line)
    m = gw.wait_log(r"^.*agent 'second'.*refused.*%d.*taken.*$" % pub, 3)
    say('gateway: ' + m.group(0))
    time.sleep(1.0)  # a few more attempts by the second agent
    assert second.alive(), 'the second agent exited (status %s)' % second.p.returncode
    assert first.alive(), 'the first agent exited (status %s)' % first.p.returncode
    for i in range(4):
        round_trip(pub, size=200 * KIB, seed=i)
    say('the first agent keeps working')
    first.signal(signal.SIGTERM)
    assert first.wait_exit(10) == 0
    took = wait_round_trip(pub, 5, 'the second agent, once the port is free')
    second.wait_log(r"svc%d.* is served by the gateway" % pub, 2)
    say('the second agent took the port %.2f s after the first left' % took)


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
    if len(argv) != 1 or argv[0] not in SCENARIOS and argv[0] != '--list':
        print('usage: %s SCENARIO|--list\nscenarios: %s' % (sys.argv[0], ' '.join(SCENARIOS)), file=sys.stderr)
        return 2
    if argv[0] == '--list':
        print('\n'.join(SCENARIOS))
        return 0
    name = argv[0]
    fn, budget = SCENARIOS[name]
    if SANITIZED:
        budget *= SANITIZER_SLOWDOWN

    def on_alarm(signum, frame):
        raise ScenarioTimeout('scenario %s exceeded its %d s budget' % (name, budget))

    def on_term(signum, frame):
        raise ScenarioTimeout('scenario %s stopped by signal %d' % (name, signum))
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    h = None
    status = 1
    t0 = now()
    try:
        h = Harness(name)
        say('scenario %s: %s (logs in %s)' % (name, fn.__doc__, h.dir))
        signal.alarm(budget)
        fn(h)
        signal.alarm(0)
        status = 0
    except Skip as e:
        signal.alarm(0)
        print('SKIP: scenario %s: %s' % (name, e))
        status = SKIP
    except BaseException:  # noqa: BLE001 - everything is reported, then the processes are killed
        signal.alarm(0)
        print('FAIL: scenario %s after %.1f s' % (name, now() - t0))
        traceback.print_exc(file=sys.stdout)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if h is not None:
            if status == 1:
                h.dump_logs()
            h.cleanup()
            # After cleanup: every process has ended and written all it will (a report may come at exit).
            reports = h.sanitizer_reports()
            for label, report in reports:
                print('FAIL: scenario %s: a sanitizer report in the log of %s:\n%s' % (name, label, report))
            if reports and status != 1:
                status = 1
                h.dump_logs()
    if status == 0:
        print('PASS: scenario %s in %.1f s' % (name, now() - t0))
    sys.stdout.flush()
    return status


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
