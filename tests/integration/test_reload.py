#!/usr/bin/env python3
"""End-to-end tests of the gateway's configuration reload (SIGHUP): a --config JSON file rewritten under a running
gateway with agents and a transfer in flight. Real ringtun-gateway and ringtun-agent processes on 127.0.0.1; public
clients choose their source address in 127.0.0.0/8 to meet the access policy; payloads are checked by SHA-256.

Usage: test_reload.py SCENARIO | --list      (the harness is itest.py; the runner is test_tunnel.py's main)
"""
import hashlib
import json
import os
import signal
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tunnel as tt  # noqa: E402  (the scenario registry and the runner)
from itest import GIB, HOST, MIB, connect, free_port, now, say, stream_chunks, wait_round_trip  # noqa: E402
from test_policy import Client, attempt  # noqa: E402

scenario = tt.scenario

TOKEN_A = 'reload-token-a-0123456789'
TOKEN_B = 'reload-token-b-0123456789'
TOKEN_C = 'reload-token-c-0123456789'


class Transfer:
    """`total` bytes each way at once through one public connection to an echo service, in threads: SHA-256 of what
    was sent and of what came back."""

    def __init__(self, port, total):
        self.total = total
        self.sock = connect(port, timeout=60)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * MIB)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MIB)
        self.sent_sha = hashlib.sha256()
        self.recv_sha = hashlib.sha256()
        self.sent = 0
        self.received = 0
        self.errors = []
        self.t0 = now()
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._receive, daemon=True)]
        for t in self.threads:
            t.start()

    def _send(self):
        try:
            for chunk in stream_chunks(self.total):
                self.sock.sendall(chunk)
                self.sent_sha.update(chunk)
                self.sent += len(chunk)
            self.sock.shutdown(socket.SHUT_WR)
        except Exception as e:  # noqa: BLE001 - reported by finish()
            self.errors.append('send: %r' % e)

    def _receive(self):
        buf = bytearray(1 * MIB)
        mv = memoryview(buf)
        try:
            while True:
                k = self.sock.recv_into(buf)
                if k == 0:
                    return
                self.recv_sha.update(mv[:k])
                self.received += k
        except Exception as e:  # noqa: BLE001 - reported by finish()
            self.errors.append('receive: %r' % e)

    def wait_received(self, size, timeout):
        deadline = now() + timeout
        while self.received < size:
            assert not self.errors, 'transfer failed: %s' % self.errors
            assert now() < deadline, 'only %d bytes came back within %.0f s' % (self.received, timeout)
            threading.Event().wait(0.05)

    def finish(self, timeout):
        for t in self.threads:
            t.join(timeout)
            assert not t.is_alive(), 'the transfer did not end within %.0f s (%d of %d bytes back)' % (
                timeout, self.received, self.total)
        self.sock.close()
        assert not self.errors, 'transfer failed: %s' % self.errors
        assert self.sent == self.total, 'sent %d bytes, want %d' % (self.sent, self.total)
        assert self.received == self.total, 'received %d bytes, want %d' % (self.received, self.total)
        assert self.recv_sha.hexdigest() == self.sent_sha.hexdigest(), 'the echo differs from what was sent'
        elapsed = now() - self.t0
        say('%d MiB each way in %.1f s, sha256 %s both ways' % (self.total // MIB, elapsed, self.sent_sha.hexdigest()))
        return self.sent_sha.hexdigest()


def write_config(path, config):
    # Written aside and renamed: the gateway reads either the old file or the new one, never half of one.
    with open(path + '.tmp', 'w') as f:
        json.dump(config, f, indent=1)
    os.replace(path + '.tmp', path)


def reload(gw, path, config):
    """Writes `config`, sends SIGHUP and returns the log offset before it (for wait_log's since)."""
    if isinstance(config, str):
        with open(path + '.tmp', 'w') as f:
            f.write(config)
        os.replace(path + '.tmp', path)
    else:
        write_config(path, config)
    since = gw.size()
    gw.signal(signal.SIGHUP)
    return since


def distinct_ports(n):
    ports = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


@scenario(budget_s=110)
def reload_gateway(h):
    """SIGHUP re-reads --config with a 1 GiB echo in flight: a token added, another removed, a policy changed (deny
    127.0.0.3), --http-listen added (restart only): the transfer completes intact, the removed token's agent exits 3
    with token_revoked, the new token serves, 127.0.0.3 is refused. A broken config changes nothing and names its
    place. A narrowed port range releases one route of the new agent, which is told port_not_allowed; its other
    route keeps serving."""
    echo = h.service('echo', free_port())
    path = os.path.join(h.dir, 'gateway.json')
    write_config(path, {'tokens': [{'token': TOKEN_A}, {'token': TOKEN_B}]})
    gw = h.gateway(tokens=(), extra=['--config', path])
    pub_a, pub_b, pub_c1, pub_c2 = distinct_ports(4)
    agent_a = h.agent(gw.port, [(pub_a, echo.port)], agent_id='edge-a', token=TOKEN_A)
    agent_b = h.agent(gw.port, [(pub_b, echo.port)], agent_id='edge-b', token=TOKEN_B)
    h.wait_agent_ready(agent_a)
    h.wait_agent_ready(agent_b)
    wait_round_trip(pub_a, 5, 'token A up')
    wait_round_trip(pub_b, 5, 'token B up')
    assert attempt(pub_a, '127.0.0.3') == 'served', '127.0.0.3 refused before any policy'

    transfer = Transfer(pub_a, GIB)
    transfer.wait_received(32 * MIB, 30)
    say('transfer in flight: %d MiB back' % (transfer.received // MIB))

    # 1. Token C added, token B removed, token A's policy changed; a listener that only a restart can open.
    since = reload(gw, path, {'http_listen': '%s:0' % HOST, 'tokens': [
        {'token': TOKEN_C}, {'token': TOKEN_A, 'deny_from': ['127.0.0.3']}]})
    line = gw.wait_log(r'^.*reload: tokens \+1 -1 ~1, policies changed 1, agents released 1, routes released 0.*$', 10,
                       since=since)
    say('gateway: %s' % line.group(0))
    gw.wait_log(r'reload: --http-listen changed: takes effect after a restart', 5, since=since)
    gw.wait_log(r'token1 access policy: allow all, deny 127\.0\.0\.3/32', 5, since=since)
    status = agent_b.wait_exit(10)
    assert status == 3, 'the removed token\'s agent: exit status %r, want 3' % status
    line = agent_b.wait_log(r'^.*refused this agent \(token_revoked\).*$', 1, allow_exit=True)
    say('agent B: %s' % line.group(0))
    assert transfer.received < GIB, 'the transfer ended before the reload was checked: make it longer'
    assert attempt(pub_a, '127.0.0.3') == 'refused', '127.0.0.3 served after deny_from was added'
    assert attempt(pub_a, '127.0.0.2') == 'served', '127.0.0.2 refused: the new policy denies only 127.0.0.3'
    try:
        connect(pub_b, timeout=2).close()
        closed_b = False
    except OSError:
        closed_b = True
    assert closed_b or attempt(pub_b, '127.0.0.2') == 'refused', 'the removed token\'s port still serves'
    agent_c = h.agent(gw.port, [(pub_c1, echo.port), (pub_c2, echo.port)], agent_id='edge-c', token=TOKEN_C)
    h.wait_agent_ready(agent_c)
    wait_round_trip(pub_c1, 5, 'token C (added by the reload)')
    wait_round_trip(pub_c2, 5, 'token C, second service')

    # 2. A broken config: the error and its place; nothing changes.
    since = reload(gw, path, {'tokens': [{'token': TOKEN_C}, {'token': TOKEN_A, 'allow_ports': '99999'}]})
    line = gw.wait_log(r'^.*reload: \S+: tokens\[1\]\.allow_ports: .*nothing changed.*$', 10, since=since)
    say('gateway: %s' % line.group(0))
    since = reload(gw, path, '{"tokens": [{"token": "%s"}, \n  {"token": }]}' % TOKEN_C)
    line = gw.wait_log(r'^.*reload: \S+: line 2, column \d+: invalid JSON.*nothing changed.*$', 10,
                       since=since)
    say('gateway: %s' % line.group(0))
    assert 'agents released' not in gw.text()[since:], 'a broken config released something'
    assert attempt(pub_a, '127.0.0.3') == 'refused', 'the policy changed with a broken config'
    assert attempt(pub_a, '127.0.0.2') == 'served', 'token A stopped serving after a broken config'
    wait_round_trip(pub_c1, 2, 'token C after a broken config')
    assert agent_a.alive() and agent_c.alive(), 'an agent exited after a broken config'

    # 3. Token C narrowed to its second port: its first route is released and the agent told why.
    since_c = agent_c.size()
    since = reload(gw, path, {'tokens': [{'token': TOKEN_C, 'allow_ports': '%d-%d' % (pub_c2, pub_c2)},
                                         {'token': TOKEN_A, 'deny_from': ['127.0.0.3']}]})
    line = gw.wait_log(r'^.*reload: tokens \+0 -0 ~1, policies changed 0, agents released 0, routes released 1.*$',
                       10, since=since)
    say('gateway: %s' % line.group(0))
    line = agent_c.wait_log(
        r'^.*service \S*svc%d\S* .*refused \(port_not_allowed\): released by the gateway.*$' % pub_c1, 10,
        since=since_c)
    say('agent C: %s' % line.group(0))
    deadline = now() + 5
    while True:
        try:
            connect(pub_c1, timeout=1).close()
        except OSError:
            break
        assert now() < deadline, 'port %d still accepts after its route was released' % pub_c1
        threading.Event().wait(0.05)
    wait_round_trip(pub_c2, 2, 'token C, the route still allowed')
    assert agent_c.alive(), 'agent C exited although one of its services is still allowed'

    digest = transfer.finish(90)
    m = echo.wait_log(r'echo \S+: %d bytes sha256 ([0-9a-f]{64})' % GIB, 10)
    assert m.group(1) == digest, 'the service received sha256 %s, the client sent %s' % (m.group(1), digest)
    assert agent_a.alive() and gw.alive(), 'token A\'s agent or the gateway exited'


def wait_served(port, source, what, timeout=5):
    """A count is given back when the stream ends, a tunnel round trip after the close: poll until served."""
    deadline = now() + timeout
    while attempt(port, source) != 'served':
        assert now() < deadline, '%s: %s still refused after %.0f s' % (what, source, timeout)
        threading.Event().wait(0.1)


@scenario(budget_s=60)
def reload_policy_counts(h):
    """Connection caps across reloads: the counts live on. A reload gives a token --max-conns 3 and
    --max-conns-per-client 2 (the counters are made then); raising --max-conns to 4 admits exactly one more (the
    held connections still count); connections closed after their policy was removed give their counts back, so a
    later --max-conns 1 admits one. Held connections keep working throughout."""
    echo = h.service('echo', free_port())
    path = os.path.join(h.dir, 'gateway.json')
    write_config(path, {'tokens': [{'token': TOKEN_A}]})
    gw = h.gateway(tokens=(), extra=['--config', path])
    pub = free_port()
    agent = h.agent(gw.port, [(pub, echo.port)], agent_id='edge-a', token=TOKEN_A)
    h.wait_agent_ready(agent)
    wait_round_trip(pub, 5, 'token A up')

    def policy(**limits):
        entry = {'token': TOKEN_A}
        entry.update(limits)
        since = reload(gw, path, {'tokens': [entry]})
        gw.wait_log(r'reload: tokens \+0 -0 ~1, policies changed 1, agents released 0', 10, since=since)

    policy(max_conns=3, max_conns_per_client=2)
    held = [Client(pub, '127.0.0.3'), Client(pub, '127.0.0.3'), Client(pub, '127.0.0.4')]
    for i, c in enumerate(held):
        assert c.echo(seed=i) == 'served', 'held connection %d (%s) not served' % (i, c.source)
    assert attempt(pub, '127.0.0.3') == 'refused', 'a third connection from 127.0.0.3 was served (2 per client)'
    assert attempt(pub, '127.0.0.5') == 'refused', 'a fourth connection was served (max_conns 3)'
    say('max_conns 3 and 2 per client in effect after the reload')

    policy(max_conns=4, max_conns_per_client=2)
    held.append(Client(pub, '127.0.0.5'))
    assert held[-1].echo(seed=3) == 'served', 'max_conns raised to 4 but a fourth connection was refused'
    assert attempt(pub, '127.0.0.6') == 'refused', \
        'a fifth connection was served: the held connections were not counted after the reload'
    held.pop(0).close()
    wait_served(pub, '127.0.0.6', 'after a held connection closed')
    say('max_conns 4: the held connections still counted; a close under the new policy made room')

    policy()  # no policy at all: the gateway checks nothing, the held connections' counts wait for their close
    for i, c in enumerate(held):
        assert c.echo(seed=10 + i) == 'served', 'a held connection stopped working'
        c.close()
    held = []
    policy(max_conns=1)
    # The closes reach the streams' ends (which give the counts back) a tunnel round trip later: poll, holding the
    # first connection served.
    deadline = now() + 5
    while True:
        first = Client(pub, '127.0.0.7')
        if first.echo(seed=20) == 'served':
            break
        first.close()
        assert now() < deadline, \
            'max_conns 1 refuses the only connection: counts taken before the policy was removed were not given back'
        threading.Event().wait(0.1)
    assert attempt(pub, '127.0.0.8') == 'refused', 'max_conns 1 served a second connection'
    first.close()
    wait_served(pub, '127.0.0.8', 'max_conns 1 after the close')
    assert agent.alive() and gw.alive(), 'the agent or the gateway exited'
    say('counts given back after the policy was removed; max_conns 1 admits one')


if __name__ == '__main__':
    sys.exit(tt.main(sys.argv[1:]))
