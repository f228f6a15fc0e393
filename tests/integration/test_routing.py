#!/usr/bin/env python3
"""End-to-end tests of the gateway's routing core: who may hold which public port, agent identity inside a token's
namespace, ports that cannot be stolen, partial acceptance of services, DNS names for --gateway, and floods that must
stay the flooder's problem. Real ringtun-gateway and ringtun-agent processes on 127.0.0.1 (and 127.0.0.2 as a second
client address), through real sockets.

Usage: test_routing.py SCENARIO | --list      (the harness is itest.py; the runner is test_tunnel.py's main)
"""
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tunnel as tt  # noqa: E402  (the scenario registry, the runner, and scenarios reused here)
from itest import (  # noqa: E402
    HOST, KIB, TOKEN, Proc, connect, expect_closed, free_port, now, raise_nofile, recv_exactly, round_trip, say, sha,
    wait_round_trip)

scenario = tt.scenario


# ---------------------------------------------------------------------------------------------------- helpers

def port_refuses(port, tries=4):
    """True if every one of `tries` connects to `port` is refused (no listener on any core)."""
    for _ in range(tries):
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return False
        except ConnectionRefusedError:
            continue
        except OSError:
            return False
    return True


def wait_port_refuses(port, timeout, what):
    t0 = now()
    while not port_refuses(port):
        if now() - t0 > timeout:
            raise AssertionError('%s: port %d still accepts connections %.1f s later' % (what, port, timeout))
        time.sleep(0.05)
    return now() - t0


def distinct_free_ports(n):
    """n different ports free right now (free_port() may hand out the same one twice)."""
    ports = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def count_lines(proc, pattern):
    return len(re.findall(pattern, proc.text(), re.M))


class Holder:
    """Another program's listener on a port (optionally with SO_REUSEPORT, as nginx `reuseport` does), counting the
    connections it accepts."""

    def __init__(self, port, reuseport):
        self.port = port
        self.accepted = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if reuseport:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.sock.bind((HOST, port))
        self.sock.listen(512)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
                self.accepted += 1
                c.close()
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def garbage_probe(port):
    """One connection to the tunnel port that sends something no agent sends; returns its local port once the gateway
    has closed it."""
    s = socket.create_connection((HOST, port), timeout=5)
    lport = s.getsockname()[1]
    try:
        s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    except OSError:
        pass
    expect_closed(s, 5, 'garbage on the tunnel port')
    s.close()
    return lport


def no_lost_tunnels(gw, agents, ids=None):
    """No tunnel connection of these agents closed, as both sides log it (`ids`: the agent ids in the gateway's log;
    default: any)."""
    for a in agents:
        lost = count_lines(a, r'connection \d+ to the gateway lost')
        assert lost == 0, '%s lost %d tunnel connection(s):\n%s' % (a.label, lost, a.text()[-2000:])
    who = '|'.join(re.escape(i) for i in ids) if ids else "[^']*"
    closed = count_lines(gw, r"agent '(%s)': tunnel connection from .* closed" % who)
    assert closed == 0, 'the gateway closed %d agent tunnel connection(s)' % closed


# What an agent logs when the gateway refuses it or one of its services (not the summary's "0 refused").
REFUSAL = r'refused this agent|refused for now \(|refused \('


# ---------------------------------------------------------------------------------------------------- ports

@scenario(budget_s=55)
def own_port_refused(h):
    """An agent asks for the gateway's own tunnel port: refused (port_reserved) and never bound. Alone, the agent has
    nothing to serve and exits 3; beside a good service, that one serves. 100 connections to the tunnel port all
    reach the gateway."""
    echo = h.service('echo', free_port())
    gw = h.gateway()
    thief = h.agent(gw.port, [(gw.port, echo.port)], agent_id='thief')
    status = thief.wait_exit(10)
    assert status == 3, 'the agent claiming only the tunnel port exited with %s, want 3' % status
    line = thief.wait_log(r'^.*port_reserved.*$', 1, allow_exit=True).group(0)
    assert str(gw.port) in line and "gateway's own" in line, 'the refusal does not say why: %s' % line
    say('thief: ' + line)
    pub = free_port()
    mixed = h.agent(gw.port, [(gw.port, echo.port), (pub, echo.port)], agent_id='mixed')
    h.wait_agent_ready(mixed)
    wait_round_trip(pub, 5, 'the good service beside the reserved one')
    mixed.wait_log(r"svc%d.*refused \(port_reserved\)" % gw.port, 3)
    ports = [garbage_probe(gw.port) for _ in range(100)]
    for lport in ports:
        gw.wait_log(r'tunnel connection from 127\.0\.0\.1:%d closed' % lport, 3)
    say('all 100 connections to the tunnel port were the gateway\'s')
    assert mixed.alive()
    round_trip(pub)


@scenario(budget_s=55)
def foreign_reuseport(h):
    """A port another program holds with SO_REUSEPORT (nginx `reuseport`) is refused as unavailable, not joined:
    the program keeps every one of 100 connections; the agent stays up and serves its other service."""
    echo = h.service('echo', free_port())
    gw = h.gateway()
    held = free_port()
    other = Holder(held, reuseport=True)
    try:
        pub = free_port()
        agent = h.agent(gw.port, [(held, echo.port), (pub, echo.port)])
        h.wait_agent_ready(agent)
        wait_round_trip(pub, 5, 'the other service')
        line = agent.wait_log(r"^.*svc%d.*refused for now \(port_unavailable\).*$" % held, 5).group(0)
        assert 'another program holds it' in line, line
        say('agent: ' + line)
        for _ in range(100):
            socket.create_connection((HOST, held), timeout=2).close()
        deadline = now() + 5
        while other.accepted < 100 and now() < deadline:
            time.sleep(0.02)
        assert other.accepted == 100, 'the other program accepted %d of 100 connections' % other.accepted
        assert agent.alive() and gw.alive()
    finally:
        other.close()


@scenario(budget_s=55)
def busy_port(h):
    """One busy port among three services: two serve, the third is refused with its reason and asked for again
    (--retry-refused-ms) without dropping the tunnel; once the other program lets the port go, the agent gets it."""
    echo = h.service('echo', free_port())
    gw = h.gateway()
    p1, busy, p2 = free_port(), free_port(), free_port()
    other = Holder(busy, reuseport=False)
    agent = h.agent(gw.port, [(p1, echo.port), (busy, echo.port), (p2, echo.port)],
                    extra=['--retry-refused-ms', '300'])
    h.wait_agent_ready(agent)
    wait_round_trip(p1, 5, 'service 1')
    wait_round_trip(p2, 5, 'service 3')
    agent.wait_log(r"svc%d.*refused for now \(port_unavailable\)" % busy, 5)
    gw.wait_log(r"agent 'edge-1': service 'svc%d' refused \(port_unavailable\)" % busy, 5)
    other.close()
    took = wait_round_trip(busy, 5, 'the busy port once free')
    agent.wait_log(r"service 'svc%d'.* is served by the gateway" % busy, 2)
    say('the agent took the port %.2f s after it was freed' % took)
    no_lost_tunnels(gw, [agent])


@scenario(budget_s=55)
def second_gateway(h):
    """A second gateway on the address of a running one fails at start with one line naming the address and exit
    code 2; the first keeps serving."""
    echo = h.service('echo', free_port())
    gw = h.gateway()
    pub = free_port()
    agent = h.agent(gw.port, [(pub, echo.port)])
    h.wait_agent_ready(agent)
    round_trip(pub)
    argv = [h.gateway_bin, '--listen', '%s:%d' % (HOST, gw.port), '--threads', '2', '--token', TOKEN,
            '--state-dir', os.path.join(h.dir, 'state-2')]
    gw2 = Proc(h, 'gateway-2', argv)
    status = gw2.wait_exit(10)
    assert status == 2, 'the second gateway exited with %s, want 2' % status
    line = gw2.wait_log(r'^.*cannot listen (?:for agents )?on 127\.0\.0\.1:%d.*$' % gw.port, 1, allow_exit=True).group(0)
    assert 'in use' in line.lower() or 'another' in line, line
    say('second gateway: ' + line)
    for i in range(4):
        round_trip(pub, size=64 * KIB, seed=i)
    late = h.agent(gw.port, [(free_port(), echo.port)], agent_id='late')
    h.wait_agent_ready(late)
    no_lost_tunnels(gw, [agent])


# ---------------------------------------------------------------------------------------------------- identity

@scenario(budget_s=55)
def token_namespaces(h):
    """An agent of token B using the agent id of token A's agent is another owner: it cannot displace A or take A's
    port (refused: taken), A's traffic keeps reaching A's service only, and B's own service serves."""
    echo_a = h.service('echo', free_port())
    echo_b = h.service('echo', free_port())
    gw = h.gateway(tokens=(('token-a', None), ('token-b', None)))
    pa, pb = free_port(), free_port()
    a = h.agent(gw.port, [(pa, echo_a.port)], agent_id='edge', token='token-a')
    h.wait_agent_ready(a)
    b = h.agent(gw.port, [(pa, echo_b.port), (pb, echo_b.port)], agent_id='edge', token='token-b')
    h.wait_agent_ready(b)
    wait_round_trip(pb, 5, "B's own service")
    line = b.wait_log(r"^.*svc%d.*refused for now \(port_taken\).*$" % pa, 5).group(0)
    assert "another agent" in line and "'edge'" not in line.split('refused', 1)[1], \
        'the refusal names another tenant\'s agent: %s' % line
    before_b = count_lines(echo_b, r'^\S+ echo ')
    for i in range(20):
        round_trip(pa, size=8 * KIB, seed=i)
    assert count_lines(echo_b, r'^\S+ echo ') == before_b, "A's port reached B's service"
    assert count_lines(echo_a, r'^\S+ echo ') >= 20
    assert count_lines(gw, r'replaces') == 0
    no_lost_tunnels(gw, [a, b])


@scenario(budget_s=55)
def two_instances(h):
    """A second running instance of an agent id is refused (exit 3) with the holder's address and since when; no
    flapping; the first keeps serving. Once the holder is gone, the next instance takes the id."""
    echo = h.service('echo', free_port())
    gw = h.gateway()
    pub = free_port()
    first = h.agent(gw.port, [(pub, echo.port)], agent_id='twin')
    h.wait_agent_ready(first)
    round_trip(pub)
    second = h.agent(gw.port, [(pub, echo.port)], agent_id='twin')
    status = second.wait_exit(10)
    assert status == 3, 'the second instance exited with %s, want 3' % status
    line = second.wait_log(r'^.*id_in_use.*$', 1, allow_exit=True).group(0)
    assert re.search(r'connected from 127\.0\.0\.1:\d+ since \d{4}-\d\d-\d\dT', line), line
    say('second instance: ' + line)
    time.sleep(1.0)
    refusals = count_lines(gw, r"agent 'twin' at .* refused")
    assert refusals == 1, 'the gateway refused the second instance %d times (flapping?)' % refusals
    assert count_lines(gw, r'replaces') == 0
    no_lost_tunnels(gw, [first])
    round_trip(pub)
    first.signal(signal.SIGKILL)
    first.wait_exit(5)
    third = h.agent(gw.port, [(pub, echo.port)], agent_id='twin')
    wait_round_trip(pub, 5, 'the next instance')
    took = now() - third.start_time
    assert took <= 2.5, 'the next instance served only %.2f s after its start' % took


@scenario(budget_s=55)
def service_dropped(h):
    """An agent that comes back without one of its services: that port closes (on every core), the others serve,
    whether the agent came back after a clean stop or at once after SIGKILL."""
    echo = h.service('echo', free_port())
    gw = h.gateway()
    for how in ('SIGTERM', 'SIGKILL'):
        keep, drop = free_port(), free_port()
        a = h.agent(gw.port, [(keep, echo.port), (drop, echo.port)], agent_id='edge-%s' % how.lower())
        h.wait_agent_ready(a)
        round_trip(keep)
        round_trip(drop)
        a.signal(getattr(signal, how))
        if how == 'SIGTERM':
            assert a.wait_exit(10) == 0
            wait_port_refuses(drop, 3, 'the dropped service after a clean stop')
        b = h.agent(gw.port, [(keep, echo.port)], agent_id='edge-%s' % how.lower())
        wait_round_trip(keep, 5, 'the kept service (%s)' % how)
        took = wait_port_refuses(drop, 3, 'the dropped service (%s)' % how)
        say('%s: the dropped port refuses connections (%.2f s after the kept one served)' % (how, took))
        b.signal(signal.SIGTERM)
        b.wait_exit(10)


# ---------------------------------------------------------------------------------------------------- DNS

@scenario(budget_s=55)
def gateway_names(h):
    """--gateway takes names: localhost:PORT, and a name from /etc/hosts that lists ::1 before 127.0.0.1 (the
    gateway listens on 127.0.0.1 only: the first address is refused, the next one is tried). A name that does not
    resolve is retried, not fatal."""
    echo = h.service('echo', free_port())
    gw = h.gateway()
    pub = free_port()
    a = h.agent(gw.port, [(pub, echo.port)], agent_id='by-localhost', gateway='localhost:%d' % gw.port)
    h.wait_agent_ready(a)
    round_trip(pub)
    a.signal(signal.SIGTERM)
    a.wait_exit(10)

    # The agent runs in a private mount namespace whose /etc/hosts is ours: over the real file, or, on a minimal system
    # without one (a fresh debootstrap has none), over a copy of /etc that has it.
    hosts = os.path.join(h.dir, 'hosts')
    with open(hosts, 'w') as f:
        f.write('::1 gateway.ringtun.test\n127.0.0.1 gateway.ringtun.test\n')
    if os.path.exists('/etc/hosts'):
        mount = 'mount --bind %s /etc/hosts' % hosts
    else:
        etc = os.path.join(h.dir, 'etc')
        subprocess.run(['cp', '-a', '/etc/.', etc], capture_output=True)
        shutil.copy(hosts, os.path.join(etc, 'hosts'))
        mount = 'mount --bind %s /etc' % etc
    probe = subprocess.run(['unshare', '--mount', 'sh', '-c', '%s && getent ahosts gateway.ringtun.test' % mount],
                           capture_output=True, text=True)
    if probe.returncode == 0 and '127.0.0.1' in probe.stdout:
        prefix = ['unshare', '--mount', 'sh', '-c', '%s && exec "$@"' % mount, 'sh']
        name = 'gateway.ringtun.test'
    else:
        # No private mount namespace here (not root?): any name the real /etc/hosts maps to 127.0.0.1.
        prefix = []
        name = None
        for line in (open('/etc/hosts') if os.path.exists('/etc/hosts') else []):
            fields = line.split('#')[0].split()
            if len(fields) >= 2 and fields[0] == '127.0.0.1':
                name = next((n for n in fields[1:] if n != 'localhost'), None)
                if name:
                    break
        if name is None:
            say('no private mount namespace and no extra 127.0.0.1 name in /etc/hosts: only localhost was tried')
            return
    pub2 = free_port()
    b = h.agent(gw.port, [(pub2, echo.port)], agent_id='by-name', gateway='%s:%d' % (name, gw.port), prefix=prefix)
    h.wait_agent_ready(b)
    round_trip(pub2)
    if prefix:
        b.wait_log(r'connection 0 to %s:%d \(\[::1\]:%d\): Connection refused' % (re.escape(name), gw.port, gw.port), 2)
        say('%s: [::1] refused, 127.0.0.1 served' % name)

    c = h.agent(gw.port, [(free_port(), echo.port)], agent_id='nowhere', gateway='no-such-gateway.invalid:%d' % gw.port,
                extra=['--connect-timeout-ms', '1500', '--reconnect-max-ms', '500'])
    c.wait_log(r'cannot resolve no-such-gateway\.invalid', 10)
    time.sleep(1.0)
    assert c.alive(), 'an agent whose gateway name does not resolve exited (status %s)' % c.p.returncode


# ---------------------------------------------------------------------------------------------------- floods

@scenario(budget_s=60)
def handshake_flood(h):
    """While 127.0.0.2 holds 5,000 idle connections to the tunnel port (reopening every one the gateway closes), a
    real agent from 127.0.0.1 connects and serves within 2 s."""
    raise_nofile()
    echo = h.service('echo', free_port())
    gw = h.gateway()
    flood = h.flood(gw.port, '127.0.0.2', 5000, reopen=True)
    time.sleep(1.5)
    m = flood.wait_log(r'holding (\d+) \(opened (\d+), closed by the peer (\d+)', 5, since=0)
    say('flooder: %s' % m.group(0))
    pub = free_port()
    agent = h.agent(gw.port, [(pub, echo.port)])
    wait_round_trip(pub, 10, 'agent during the flood')
    took = now() - agent.start_time
    say('the agent served %.2f s after its start, during the flood' % took)
    gw.wait_log(r'tunnel port: closed \d+ connection\(s\) from addresses with \d+ handshakes in progress', 3)
    assert took <= 2.0, 'the agent served only %.2f s after its start (bound 2 s)' % took
    assert gw.alive()


@scenario(budget_s=60)
def public_flood(h):
    """While 127.0.0.2 holds 5,000 connections to a public port, 50 clients from 127.0.0.1 connected before keep
    working (every echo checked by SHA-256) and no tunnel connection closes; when the flood ends, a new client is
    served at once."""
    raise_nofile()
    echo = h.service('echo', free_port())
    gw = h.gateway()
    pub = free_port()
    agent = h.agent(gw.port, [(pub, echo.port)])
    h.wait_agent_ready(agent)
    wait_round_trip(pub, 5, 'agent up')
    rng = random.Random(50)
    clients = [connect(pub, timeout=10) for _ in range(50)]

    def exchange(round_no):
        for i, c in enumerate(clients):
            data = rng.randbytes(4 * KIB + i)
            c.sendall(data)
            got = recv_exactly(c, len(data))
            assert sha(got) == sha(data), 'client %d, round %d: echo differs (sha256)' % (i, round_no)

    exchange(0)
    flood = h.flood(pub, '127.0.0.2', 5000, reopen=True)
    t_flood = now()
    rounds = 0
    while now() - t_flood < 6:
        rounds += 1
        exchange(rounds)
        time.sleep(0.2)
    m = flood.wait_log(r'holding (\d+) \(opened (\d+), closed by the peer (\d+)', 5, since=0)
    say('flooder: %s; %d rounds of echoes by the 50 clients during the flood' % (m.group(0), rounds))
    flood.kill_group()
    # The flood's ~2,000 streams end as the local service closes them (here a Python thread per connection): a new
    # client's stream waits for a free slot at that pace, in the agent connection's pending opens, not refused.
    took = wait_round_trip(pub, 8, 'a new client after the flood')
    say('a new client was served %.2f s after the flood ended' % took)
    assert took < 5.0, 'a new client was served only %.2f s after the flood ended' % took
    exchange(rounds + 1)
    for c in clients:
        c.close()
    no_lost_tunnels(gw, [agent])


# ---------------------------------------------------------------------------------------------------- many agents

@scenario(budget_s=110)
def many_agents(h):
    """100 agents started at once all register and serve, none refused; after the gateway is killed (-9) and started
    again on the same port, every one serves again within its back-off bound, none refused."""
    raise_nofile()
    n = 100
    echo = h.service('echo', free_port())
    tunnel_port = free_port()
    gw = h.gateway(port=tunnel_port)
    ports = distinct_free_ports(n)
    agents = [h.agent(gw.port, [(ports[i], echo.port)], agent_id='many-%d' % i, threads=1,
                      extra=['--reconnect-max-ms', '1000']) for i in range(n)]
    t0 = now()
    for i in range(n):
        assert _served(ports[i], 20), 'agent %d does not serve %.1f s after the start' % (i, now() - t0)
    say('%d agents serving %.2f s after they were started' % (n, now() - t0))
    for a in agents:
        assert a.alive(), '%s exited (status %s)' % (a.label, a.p.returncode)
        assert count_lines(a, REFUSAL) == 0, '%s was refused:\n%s' % (a.label, a.text()[-1500:])
    gw.signal(signal.SIGKILL)
    gw.wait_exit(5)
    gw2 = h.gateway(port=tunnel_port)
    t1 = now()
    for i in range(n):
        assert _served(ports[i], 15), 'agent %d does not serve %.1f s after the gateway restart' % (i, now() - t1)
    took = now() - t1
    say('all %d agents serve again %.2f s after the new gateway started' % (n, took))
    assert took <= 8.0, 'reconnecting took %.2f s (back-off cap 1 s)' % took
    for a in agents:
        assert a.alive(), '%s exited (status %s)' % (a.label, a.p.returncode)
        assert count_lines(a, REFUSAL) == 0, '%s was refused:\n%s' % (a.label, a.text()[-1500:])
    assert count_lines(gw2, r'refused') == 0


def _served(port, timeout):
    t0 = now()
    while now() - t0 < timeout:
        try:
            round_trip(port, size=4 * KIB, timeout=2)
            return True
        except (OSError, AssertionError):
            time.sleep(0.05)
    return False


@scenario(budget_s=60)
def many_services(h):
    """One agent with 1,000 services, over TLS and over plaintext: its claims (several CONTROL frames sent right
    behind the hello, some still in flight while the gateway hands the connection to its core) all arrive, every
    service is served, and a sample of the ports carries traffic."""
    raise_nofile()
    echo = h.service('echo', free_port())
    for mode in ('tls', 'plaintext'):
        extra = ['--insecure-plaintext'] if mode == 'plaintext' else []
        gw = h.gateway(extra=extra)
        ports = distinct_free_ports(1000)
        agent = h.agent(gw.port, [(p, echo.port) for p in ports], agent_id='wide-' + mode, threads=1, extra=extra)
        m = agent.wait_log(r'1000 service\(s\) claimed in ([\d.]+) ms: (\d+) served', 20)
        assert m.group(2) == '1000', '%s: only %s of 1000 services served' % (mode, m.group(2))
        say('%s: 1000 services claimed in %s ms' % (mode, m.group(1)))
        for p in ports[::97]:
            round_trip(p, size=4 * KIB)
        agent.kill_group()
        gw.kill_group()


@scenario(budget_s=110)
def mass_unbind(h):
    """25 agents with 100 services each (2,500 public ports, one listener per core each) are killed at once: every
    port closes on every core (no control message is lost however many are in flight)."""
    raise_nofile()
    n_agents, per_agent = 25, 100
    echo = h.service('echo', free_port())
    gw = h.gateway()
    ports = distinct_free_ports(n_agents * per_agent)
    agents = []
    for i in range(n_agents):
        mine = ports[i * per_agent:(i + 1) * per_agent]
        agents.append(h.agent(gw.port, [(p, echo.port) for p in mine], agent_id='bulk-%d' % i, threads=1))
    for a in agents:
        h.wait_agent_ready(a, timeout=30)
    for p in ports[::per_agent // 4]:  # a sample of each agent's ports carries traffic
        assert _served(p, 10), 'port %d does not serve' % p
    opened = count_lines(gw, r'now serves')
    assert opened == len(ports), 'the gateway opened %d of %d ports' % (opened, len(ports))
    for a in agents:
        a.signal(signal.SIGKILL)
    t0 = now()
    deadline = t0 + 15
    still_open = ports
    while still_open and now() < deadline:
        still_open = [p for p in still_open if not port_refuses(p, tries=4)]
        if still_open:
            time.sleep(0.1)
    assert not still_open, '%d of %d ports still accept connections 15 s after their agents died (e.g. %s)' \
        % (len(still_open), len(ports), still_open[:5])
    say('all %d ports closed on every core %.2f s after their agents were killed' % (len(ports), now() - t0))
    assert gw.alive()


# ---------------------------------------------------------------------------------------------------- hostile hellos

PREFACE = b'RINGTUN\x01'


def _frame(ftype, stream, payload, flags=0, arg=0):
    return struct.pack('>BBHIII', ftype, flags, 0, stream, len(payload), arg) + payload


def _hello(agent_id, token=TOKEN, index=0):
    instance = '%032x' % random.getrandbits(128)
    return ('{"type":"hello","version":2,"agent_id":"%s","token":"%s","instance":"%s","conn_index":%d,'
            '"conn_count":2}' % (agent_id, token, instance, index)).encode()


@scenario(budget_s=60)
def hello_then_close(h):
    """Agents that close right after their hello (and their claims) while the registry is busy with hundreds of
    others: the gateway keeps serving, leaks no session (every id is free again), and (in the ASan build) no memory
    error."""
    echo = h.service('echo', free_port())
    gw = h.gateway(extra=['--insecure-plaintext'])
    pub = free_port()
    good = h.agent(gw.port, [(pub, echo.port)], extra=['--insecure-plaintext'])
    h.wait_agent_ready(good)
    claim = b'{"type":"claim","services":[{"name":"s","kind":"tcp","port":%d}]}'
    errors = []

    def ghost(i):
        try:
            s = socket.create_connection((HOST, gw.port), timeout=5)
            port = 20000 + i % 20000
            s.sendall(PREFACE + _frame(6, 0, b'') + _frame(7, 0, _hello('ghost-%d' % (i % 50), index=i % 2)) +
                      _frame(7, 0, claim % port))
            if i % 3 == 0:
                time.sleep(0.001 * (i % 7))
            s.close()
        except OSError as e:
            errors.append(e)

    for burst in range(6):
        threads = [threading.Thread(target=ghost, args=(burst * 100 + i,), daemon=True) for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        round_trip(pub, size=16 * KIB, seed=burst)
    assert gw.alive(), 'the gateway died (status %s)' % gw.p.returncode
    assert 'AddressSanitizer' not in gw.text() and 'runtime error' not in gw.text()
    # Every ghost's session ended with its connection: the ids are free for real agents.
    time.sleep(0.5)
    for i in (0, 7, 49):
        p = free_port()
        a = h.agent(gw.port, [(p, echo.port)], agent_id='ghost-%d' % i, extra=['--insecure-plaintext'])
        h.wait_agent_ready(a)
        round_trip(p)
        assert count_lines(a, r'id_in_use') == 0
    no_lost_tunnels(gw, [good], ids=['edge-1'])


class RawAgent:
    """A hand-made agent speaking the plaintext tunnel protocol (the gateway runs with --insecure-plaintext): it can
    send what no real agent sends."""

    def __init__(self, port, agent_id, token=TOKEN, source=HOST):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((source, 0))
        self.sock.settimeout(5)
        self.sock.connect((HOST, port))
        self.sock.settimeout(0.2)
        self.buf = b''
        self.sock.sendall(PREFACE + _frame(6, 0, b'') + _frame(7, 0, _hello(agent_id, token=token)))

    def send_control(self, obj):
        import json
        self.sock.sendall(_frame(7, 0, json.dumps(obj).encode()))

    def controls(self, timeout=5):
        """CONTROL messages (decoded JSON) until the connection closes or `timeout` passes with nothing new."""
        import json
        out = []
        deadline = now() + timeout
        while now() < deadline:
            while len(self.buf) >= 8 and self.buf.startswith(PREFACE):
                self.buf = self.buf[8:]
            while len(self.buf) >= 16:
                ftype, _, _, _, length, _ = struct.unpack('>BBHIII', self.buf[:16])
                if len(self.buf) < 16 + length:
                    break
                payload, self.buf = self.buf[16:16 + length], self.buf[16 + length:]
                if ftype == 7:
                    out.append(json.loads(payload))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return out
            except OSError:
                return out
            if not data:
                self.closed = True
                return out
            self.buf += data
        return out

    def wait_for(self, kind, timeout=5):
        deadline = now() + timeout
        seen = []
        while now() < deadline:
            for m in self.controls(timeout=0.5):
                seen.append(m)
                if m.get('type') == kind:
                    return m, seen
        raise AssertionError('no %r control message within %.1f s (saw %d: %s)' % (kind, timeout, len(seen),
                                                                                 str(seen)[:400]))


def _tcp(name, port):
    return {'name': name, 'kind': 'tcp', 'port': port}


@scenario(budget_s=60)
def refused_after_welcome(h):
    """An agent refused after its welcome (a control message the gateway does not accept) leaves its session: its
    port closes, and the next instance gets the id at once (no use of the gone connection, checked under ASan)."""
    echo = h.service('echo', free_port())
    gw = h.gateway(extra=['--insecure-plaintext'])
    for round_no in range(3):
        pub = free_port()
        raw = RawAgent(gw.port, 'rogue')
        raw.send_control({'type': 'claim', 'services': [_tcp('s', pub)]})
        claimed, _ = raw.wait_for('claimed')
        assert claimed['services'][0]['ok'], claimed
        socket.create_connection((HOST, pub), timeout=2).close()
        raw.send_control({'type': 'hello'})  # not a message an agent sends after its welcome
        refused, _ = raw.wait_for('refused')
        say('round %d: refused after the welcome: %s' % (round_no, refused['message']))
        wait_port_refuses(pub, 3, 'the port of the refused connection')
        real = h.agent(gw.port, [(pub, echo.port)], agent_id='rogue', extra=['--insecure-plaintext'])
        wait_round_trip(pub, 5, 'the next instance of the id')
        assert count_lines(real, r'id_in_use') == 0
        real.kill_group()
        wait_port_refuses(pub, 3, 'the port once the real agent is gone')
    assert gw.alive() and 'AddressSanitizer' not in gw.text()


@scenario(budget_s=60)
def intake_eviction(h):
    """Handshake slots full on both cores, the oldest idle one alone for its address: it is evicted, and a newcomer
    from that same address is admitted and counted right (no stale count, no memory error under ASan); a real agent
    still gets in."""
    raise_nofile()
    echo = h.service('echo', free_port())
    gw = h.gateway(extra=['--insecure-plaintext'])
    held = []
    for round_no in range(3):
        lone = socket.socket()
        lone.bind(('127.0.0.200', 0))
        lone.connect((HOST, gw.port))
        held.append(lone)
        time.sleep(0.05)
        for i in range(600):
            s = socket.socket()
            s.bind(('127.0.0.%d' % (10 + i % 30), 0))
            s.connect((HOST, gw.port))
            held.append(s)
        for _ in range(4):
            s = socket.socket()
            s.bind(('127.0.0.200', 0))
            s.connect((HOST, gw.port))
            held.append(s)
        time.sleep(0.3)
        assert gw.alive(), 'the gateway died (status %s)' % gw.p.returncode
    gw.wait_log(r'evicted [1-9]\d*', 5)
    pub = free_port()
    agent = h.agent(gw.port, [(pub, echo.port)], extra=['--insecure-plaintext'])
    wait_round_trip(pub, 10, 'an agent after the evictions')
    for s in held:
        s.close()
    assert 'AddressSanitizer' not in gw.text()


@scenario(budget_s=60)
def hostile_claims(h):
    """Claims no real agent sends: thousands of forbidden ports (refused, with a bounded number of log lines), claims
    piled up faster than answered (bounded: the connection is refused), the same port or name twice in one claim and
    a name moved to another port (each refused on its own). Other agents are not disturbed."""
    echo = h.service('echo', free_port())
    gw = h.gateway(extra=['--insecure-plaintext'], tokens=((TOKEN, '20000-20010'), ('other', None)))
    pub = free_port()
    good = h.agent(gw.port, [(pub, echo.port)], agent_id='good', token='other', extra=['--insecure-plaintext'])
    h.wait_agent_ready(good)

    raw = RawAgent(gw.port, 'odd')
    raw.send_control({'type': 'claim', 'services': [_tcp('a', 20001), _tcp('b', 20001), _tcp('a', 20002)]})
    claimed, _ = raw.wait_for('claimed')
    statuses = {(s['name'], s.get('code')) for s in claimed['services']}
    assert claimed['services'][0]['ok'], claimed
    assert not claimed['services'][1]['ok'] and 'listed twice' in claimed['services'][1]['message'], claimed
    assert not claimed['services'][2]['ok'] and 'listed twice' in claimed['services'][2]['message'], claimed
    raw.send_control({'type': 'claim', 'services': [_tcp('a', 20003)]})
    claimed, _ = raw.wait_for('claimed')
    assert not claimed['services'][0]['ok'] and 'already serves tcp port 20001' in claimed['services'][0]['message'], \
        claimed
    say('duplicates and a moved name refused: %s' % sorted(statuses, key=str))

    lines_before = count_lines(gw, r'refused \(port_not_allowed\)')
    import json
    burst = b''.join(_frame(7, 0, json.dumps({'type': 'claim', 'services': [
        _tcp('x%d' % i, 30000 + n * 200 + i) for i in range(200)]}).encode()) for n in range(40))
    raw.sock.sendall(burst)  # in one go: they arrive faster than the registry answers
    refused, seen = raw.wait_for('refused', timeout=10)
    assert 'claims waiting' in refused['message'], refused
    time.sleep(0.5)
    lines = count_lines(gw, r'refused \(port_not_allowed\)') - lines_before
    say('40 claims of 200 forbidden ports: %d answered before the refusal, %d log lines' %
        (sum(1 for m in seen if m.get('type') == 'claimed'), lines))
    assert lines <= 8 * 20, '%d log lines for the forbidden ports' % lines
    assert gw.alive()
    round_trip(pub)
    no_lost_tunnels(gw, [good], ids=['good'])


# ---------------------------------------------------------------------------------------------------- host claims

@scenario(budget_s=55)
def host_claims(h):
    """http: services claim host names on the gateway's --http-listen, within their token's --allow-hosts: a host the
    token covers is served (a wildcard too), one it does not is refused for good (host_not_allowed), a tls service at
    a gateway without --tls-listen is kind_unsupported. Another token's agent: refused host_not_allowed where its
    token does not cover the name, host_taken (without naming the holder) where it does, and it takes the name once
    the holder is gone. A gateway without --http-listen refuses http services (kind_unsupported)."""
    local = free_port()  # nothing needs to answer there: only claims are checked
    http_port = free_port()
    gw = h.gateway(tokens=(('token-a', None, '*.test'), ('token-b', None, '*.b.test'), ('token-c', None, 'a.test')),
                   extra=['--http-listen', '%s:%d' % (HOST, http_port)])
    a = h.agent(gw.port, ['http:a.test=%s:%d' % (HOST, local), 'http:evil.example=%s:%d' % (HOST, local),
                          'http:*.test=%s:%d' % (HOST, local), 'tls:t.test=%s:%d' % (HOST, local)],
                agent_id='edge-a', token='token-a')
    h.wait_agent_ready(a)
    a.wait_log(r"service 'http-a\.test' \(http a\.test -> 127\.0\.0\.1:%d\) is served by the gateway" % local, 5)
    a.wait_log(r"service 'http-wildcard\.test' \(http \*\.test -> [^)]*\) is served by the gateway", 5)
    line = a.wait_log(r"^.*service 'http-evil\.example' .*refused \(host_not_allowed\).*$", 5).group(0)
    assert 'host evil.example is not allowed for this token: it may claim *.test' in line, line
    say('edge-a: ' + line)
    line = a.wait_log(r"^.*service 'tls-t\.test' .*refused \(kind_unsupported\).*$", 5).group(0)
    assert 'this gateway has no --tls-listen' in line, line
    gw.wait_log(r"http host a\.test now serves 'http-a\.test' of agent 'edge-a'", 5)
    gw.wait_log(r"http host \*\.test now serves 'http-wildcard\.test' of agent 'edge-a'", 5)
    gw.wait_log(r"agent 'edge-a': service 'http-evil\.example' refused \(host_not_allowed\)", 5)

    # Token B covers only *.b.test: a.test is not its to take, whoever holds it. Nothing left to serve: exit 3.
    b = h.agent(gw.port, ['http:a.test=%s:%d' % (HOST, local)], agent_id='edge-b', token='token-b')
    status = b.wait_exit(10)
    assert status == 3, 'the agent refused its only service exited with %s, want 3' % status
    line = b.wait_log(r"^.*service 'http-a\.test' .*refused \(host_not_allowed\).*$", 1, allow_exit=True).group(0)
    assert 'it may claim *.b.test' in line, line
    say('edge-b: ' + line)

    # Token C covers a.test, which edge-a holds: taken for now, the holder (another tenant's agent) not named.
    c = h.agent(gw.port, ['http:a.test=%s:%d' % (HOST, local)], agent_id='edge-c', token='token-c',
                extra=['--retry-refused-ms', '300'])
    h.wait_agent_ready(c)
    line = c.wait_log(r"^.*service 'http-a\.test' .*refused for now \(host_taken\).*$", 5).group(0)
    assert 'http host a.test is taken by another agent' in line and 'edge-a' not in line, line
    say('edge-c: ' + line)
    a.signal(signal.SIGKILL)
    c.wait_log(r"service 'http-a\.test' \(http a\.test -> [^)]*\) is served by the gateway", 10)
    gw.wait_log(r"http host a\.test now serves 'http-a\.test' of agent 'edge-c'", 5)
    say('edge-c took a.test once edge-a was gone')
    assert gw.alive() and c.alive()

    # A gateway without --http-listen serves no http services.
    gw2 = h.gateway(tokens=((TOKEN, None, '*.test'),))
    d = h.agent(gw2.port, ['http:a.test=%s:%d' % (HOST, local)], agent_id='edge-d')
    status = d.wait_exit(10)
    assert status == 3, 'the agent at a gateway without --http-listen exited with %s, want 3' % status
    line = d.wait_log(r"^.*refused \(kind_unsupported\).*$", 1, allow_exit=True).group(0)
    assert 'this gateway has no --http-listen' in line, line
    say('edge-d: ' + line)
    assert gw2.alive()


if __name__ == '__main__':
    sys.exit(tt.main(sys.argv[1:]))
