#!/usr/bin/env python3
"""End-to-end tests of the agent's SIGHUP: it reads --config (and its flags) again and updates its services on the
live tunnel, without reconnecting: added services are claimed and serve, removed ones are released (their public
port closes), open streams of a removed service run to their end. A config that does not parse changes nothing.
Payloads are checked by SHA-256.

Usage: test_agent_reload.py SCENARIO | --list      (the harness is itest.py; the runner is test_tunnel.py's main)
"""
import json
import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tunnel as tt  # noqa: E402  (the scenario registry and the runner)
from itest import (HOST, KIB, TOKEN, admin_json, free_port, now, recv_all, round_trip, say, sha,  # noqa: E402
                   wait_admin, wait_round_trip)

scenario = tt.scenario


def tcp_service(name, public_port, local_port):
    return {'name': name, 'kind': 'tcp', 'public_port': public_port, 'local': '%s:%d' % (HOST, local_port)}


def write_config(path, services):
    # Written aside and renamed: the agent never reads half a file (as an editor or config management would do).
    with open(path + '.tmp', 'w') as f:
        json.dump({'services': services}, f)
    os.replace(path + '.tmp', path)


def tunnel_peers(gw, agent_id):
    """The tunnel connections the gateway made ready for `agent_id`, by the agent's address and port (a connection's
    identity: a reconnect comes from another port)."""
    return re.findall(r"agent '%s' connection \d+/\d+ from (\S+) ready" % re.escape(agent_id), gw.text())


def wait_refused(port, timeout, what):
    """Polls connects to `port` until one is refused (nothing listens); returns the seconds it took."""
    t0 = now()
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=1.0):
                pass
        except ConnectionRefusedError:
            took = now() - t0
            say('%s: port %d refuses connections after %.2f s' % (what, port, took))
            return took
        if now() - t0 >= timeout:
            raise AssertionError('%s: port %d still accepts connections after %.1f s' % (what, port, timeout))
        time.sleep(0.05)


class OpenStream:
    """A public connection through the echo service, kept open across a reload: part of the payload before, the rest
    after, then the whole echo compared."""

    def __init__(self, port, size=256 * KIB):
        self.data = os.urandom(size)
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.got = []
        self.reader = threading.Thread(target=lambda: self.got.append(recv_all(self.sock, limit=size)), daemon=True)
        self.reader.start()
        self.sock.sendall(self.data[:size // 2])

    def finish(self):
        self.sock.sendall(self.data[len(self.data) // 2:])
        self.sock.shutdown(socket.SHUT_WR)
        self.reader.join(10)
        self.sock.close()
        got = self.got[0] if self.got else b''
        assert len(got) == len(self.data) and sha(got) == sha(self.data), \
            'the stream open across the reload: %d of %d bytes came back, sha256 %s (sent %s)' % (
                len(got), len(self.data), sha(got)[:16], sha(self.data)[:16])


@scenario(budget_s=60)
def reload_agent(h):
    """An agent with --config exposing service A; the config rewritten to B only, then SIGHUP: "reload: services +1 -1
    ~0"; B serves (checksummed echo through its public port), A's public port refuses, a stream of A open across the
    reload finishes intact, and every tunnel connection is the one from before (same agent ports at the gateway, no
    reconnect logged). Then a config that does not parse + SIGHUP: the error names the file, line and column; B still
    serves and A stays closed. Both admin endpoints list only B."""
    echo = h.service('echo', free_port())
    gw = h.gateway(extra=['--admin-listen', '%s:0' % HOST])
    pub_a, pub_b = free_port(), free_port()
    while pub_b == pub_a:
        pub_b = free_port()
    config = os.path.join(h.dir, 'agent.json')
    write_config(config, [tcp_service('svc-a', pub_a, echo.port)])
    agent = h.agent(gw.port, [], agent_id='edge-reload', extra=['--config', config, '--admin-listen', '%s:0' % HOST])
    wait_admin(agent)
    h.wait_agent_ready(agent)
    wait_round_trip(pub_a, 10, 'service A before the reload')
    peers = tunnel_peers(gw, 'edge-reload')
    assert len(peers) >= 1, 'the gateway logs no ready tunnel connection of the agent'
    since_ms = admin_json(gw.admin_port, '/api/v1/agents')['agents'][0]['connected_since_ms']
    open_a = OpenStream(pub_a)

    mark = agent.size()
    write_config(config, [tcp_service('svc-b', pub_b, echo.port)])
    agent.signal(signal.SIGHUP)
    agent.wait_log(r'reload: services \+1 -1 ~0', 10, since=mark)
    wait_round_trip(pub_b, 10, 'service B after the reload')
    for seed in range(3):
        round_trip(pub_b, size=512 * KIB, seed=seed)
    wait_refused(pub_a, 10, 'service A after the reload')
    open_a.finish()
    say('a stream of A open across the reload finished intact')

    after = tunnel_peers(gw, 'edge-reload')
    assert after == peers, 'tunnel connections were made again: %s before, %s after' % (peers, after)
    assert not re.search(r'to the gateway lost|closed before the gateway answered', agent.text()), \
        'the agent lost a tunnel connection'
    agents = admin_json(gw.admin_port, '/api/v1/agents')['agents']
    assert len(agents) == 1 and agents[0]['connected_since_ms'] == since_ms, 'the agent session changed: %s' % agents
    assert agents[0]['services'] == ['svc-b'], 'the gateway lists services %s' % agents[0]['services']
    listed = admin_json(agent.admin_port, '/api/v1/services')['services']
    assert [(s['name'], s['state']) for s in listed] == [('svc-b', 'serving')], 'the agent lists %s' % listed
    say('%d tunnel connection(s) kept across the reload; the gateway and the agent list only svc-b' % len(peers))

    mark = agent.size()
    with open(config, 'w') as f:
        f.write('{"services": [\n  %s,\n  oops\n]}\n' % json.dumps(tcp_service('svc-a', pub_a, echo.port)))
    agent.signal(signal.SIGHUP)
    m = agent.wait_log(r'reload failed: (.*)', 10, since=mark)
    assert re.search(r'agent\.json: line 3, column \d+', m.group(1)), 'the error does not say where: %s' % m.group(1)
    say('broken config: %s' % m.group(0))
    time.sleep(0.5)
    assert 'reload: services' not in agent.text()[mark:], 'a broken config changed the services'
    round_trip(pub_b, size=256 * KIB, seed=7)
    wait_refused(pub_a, 2, 'service A after the broken config')
    assert tunnel_peers(gw, 'edge-reload') == peers, 'the broken config made the agent reconnect'
    assert agent.alive(), 'the agent exited'



def whoami(port, host):
    """GET /whoami with Host: `host` through the gateway's shared HTTP port; returns the body."""
    import http.client
    c = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        c.request('GET', '/whoami', headers={'Host': host})
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, 'GET /whoami at %s: %d %r' % (host, r.status, body[:200])
        return body.decode()
    finally:
        c.close()


@scenario(budget_s=60)
def reload_agent_changes(h):
    """Changes under the same names: an http: service pointed at another local service ("~", nothing sent to the
    gateway) answers from the new one at once, though the agent had a pooled keep-alive connection to the old one; a
    tcp service moved to another public port is released and claimed again (the old port refuses, the new one
    serves). A SIGHUP that changes nothing logs +0 -0 ~0. The tunnel connections are never made again."""
    one = h.service('http', free_port(), label='one')
    two = h.service('http', free_port(), label='two')
    echo = h.service('echo', free_port())
    gw = h.gateway(http=True, tokens=((TOKEN, None, 'app.test'),))
    pub_1, pub_2 = free_port(), free_port()
    while pub_2 == pub_1:
        pub_2 = free_port()
    config = os.path.join(h.dir, 'agent.json')
    app = {'name': 'app', 'kind': 'http', 'host': 'app.test', 'local': '%s:%d' % (HOST, one.port)}
    write_config(config, [app, tcp_service('tcp', pub_1, echo.port)])
    agent = h.agent(gw.port, [], agent_id='edge-changes', threads=1, extra=['--config', config])
    h.wait_agent_ready(agent)
    wait_round_trip(pub_1, 10, 'tcp service before the reload')
    for _ in range(3):
        assert whoami(gw.http_port, 'app.test') == 'one'
    peers = tunnel_peers(gw, 'edge-changes')

    mark = agent.size()
    write_config(config, [dict(app, local='%s:%d' % (HOST, two.port)), tcp_service('tcp', pub_2, echo.port)])
    agent.signal(signal.SIGHUP)
    agent.wait_log(r'reload: services \+0 -0 ~2', 10, since=mark)
    agent.wait_log(r"reload: ~ 'app' .*new streams go there", 2, since=mark)
    agent.wait_log(r"reload: ~ 'tcp' .*released and claimed again", 2, since=mark)
    for _ in range(3):
        got = whoami(gw.http_port, 'app.test')
        assert got == 'two', 'after the reload app.test is answered by %r (a connection to the old address?)' % got
    say('app.test answered by the new local service at once')
    wait_round_trip(pub_2, 10, 'tcp service on its new port')
    wait_refused(pub_1, 10, 'tcp service\'s old port')
    gw.wait_log(r"port %d now serves 'tcp' of agent 'edge-changes'" % pub_2, 5)

    mark = agent.size()
    agent.signal(signal.SIGHUP)
    agent.wait_log(r'reload: services \+0 -0 ~0', 10, since=mark)
    assert tunnel_peers(gw, 'edge-changes') == peers, 'tunnel connections were made again'
    assert not re.search(r'to the gateway lost', agent.text()), 'the agent lost a tunnel connection'
    whoami(gw.http_port, 'app.test')
    round_trip(pub_2, size=128 * KIB, seed=3)



@scenario(budget_s=60)
def reload_release_raw(h):
    """The gateway's side of a release, from a hand-made agent: a release of its service closes the public port (and
    ignores a name it does not hold, even one another agent serves); a claim of the same name under another port
    right behind the release is granted (the release came first); a malformed release refuses the connection with a
    'release:' reason. The other agent is not disturbed."""
    import test_routing as tr
    echo = h.service('echo', free_port())
    gw = h.gateway(extra=['--insecure-plaintext'], tokens=((TOKEN, None), ('other', None)))
    pub_good = free_port()
    good = h.agent(gw.port, [(pub_good, echo.port)], agent_id='good', token='other', extra=['--insecure-plaintext'])
    h.wait_agent_ready(good)
    p1, p2 = free_port(), free_port()
    while p2 in (p1, pub_good):
        p2 = free_port()

    raw = tr.RawAgent(gw.port, 'raw')
    raw.send_control({'type': 'claim', 'services': [tr._tcp('a', p1)]})
    claimed, _ = raw.wait_for('claimed')
    assert claimed['services'][0]['ok'], claimed
    with socket.create_connection((HOST, p1), timeout=2):
        pass  # the gateway listens for it
    raw.send_control({'type': 'release', 'services': ['a', 'nope', 'svc%d' % pub_good]})
    raw.send_control({'type': 'claim', 'services': [tr._tcp('a', p2)]})
    claimed, seen = raw.wait_for('claimed')
    assert claimed['services'][0]['ok'], 'the claim behind the release: %s' % claimed
    assert [m['type'] for m in seen] == ['claimed'], 'a release is not answered: %s' % seen
    wait_refused(p1, 5, 'the released port')
    with socket.create_connection((HOST, p2), timeout=2):
        pass
    gw.wait_log(r"agent 'raw' released 'a' \(tcp port %d\)" % p1, 2)
    round_trip(pub_good, size=64 * KIB)
    say('released port %d closed, the same name granted port %d, the other agent served' % (p1, p2))

    raw.send_control({'type': 'release', 'services': [1]})
    refused, _ = raw.wait_for('refused')
    assert refused['code'] == 'bad_request' and refused['message'].startswith('release: '), refused
    wait_refused(p2, 5, 'the refused agent\'s port')
    round_trip(pub_good, size=64 * KIB)
    tr.no_lost_tunnels(gw, [good], ids=['good'])
    say('a malformed release: refused (%s)' % refused['message'])



@scenario(budget_s=60)
def reload_agent_group(h):
    """A member of a --group with --health tcp reloads, and its checks follow its services: an added service is
    checked (pointed at a closed port, it is reported down); 'web' moved to another local address is checked there
    (its old service stopping changes nothing; its new one stopping takes the member out, so every connection goes
    to the other member); a removed service is no longer checked (its service stopping logs nothing)."""
    from test_group import FAST_HEALTH, echo_count, member, wait_count  # noqa: E402  (its helpers)
    old_a, new_a, svc_b = (h.service('echo', free_port()) for _ in range(3))
    spare = h.service('echo', free_port())
    gw = h.gateway()
    pub, pub_extra = free_port(), free_port()
    while pub_extra == pub:
        pub_extra = free_port()
    closed = free_port()  # nothing listens there
    config = os.path.join(h.dir, 'agent.json')
    write_config(config, [tcp_service('web', pub, old_a.port)])
    health = ['--group', 'blue', '--health', 'tcp'] + FAST_HEALTH
    agent_a = h.agent(gw.port, [], agent_id='edge-a', extra=['--config', config] + health)
    agent_a.wait_log(r"service 'web' .* is served by the gateway", 10)
    h.wait_agent_ready(agent_a)
    member(h, gw, pub, svc_b.port, 'edge-b', extra=['--health', 'tcp'] + FAST_HEALTH)
    for _ in range(10):
        round_trip(pub, size=4 * KIB)
    assert echo_count(old_a) > 0 and echo_count(svc_b) > 0, 'the group does not spread connections'

    # Added: 'extra' towards a closed port is checked, found down and reported.
    mark = agent_a.size()
    write_config(config, [tcp_service('web', pub, old_a.port), tcp_service('extra', pub_extra, closed)])
    agent_a.signal(signal.SIGHUP)
    agent_a.wait_log(r'reload: services \+1 -0 ~0', 10, since=mark)
    agent_a.wait_log(r"service 'extra' \(%s:%d\) is down" % (HOST, closed), 5, since=mark)
    gw.wait_log(r"agent 'edge-a': service 'extra' is down \(its health check\)", 5)
    say('an added service is checked: extra reported down')

    # Moved: 'web' to new_a (and 'extra' to the spare service). The old address stopping changes nothing.
    mark = agent_a.size()
    write_config(config, [tcp_service('web', pub, new_a.port), tcp_service('extra', pub_extra, spare.port)])
    agent_a.signal(signal.SIGHUP)
    agent_a.wait_log(r'reload: services \+0 -0 ~2', 10, since=mark)
    agent_a.wait_log(r"service 'extra' \(%s:%d\) is up again" % (HOST, spare.port), 5, since=mark)
    old_a.kill_group()
    time.sleep(1.0)
    assert not re.search(r"service 'web' .* is down", agent_a.text()[mark:]), \
        "web was checked at its old address after the reload"
    for _ in range(20):
        round_trip(pub, size=4 * KIB)
    wait_count(new_a, 1, 5, "edge-a's web at its new address")
    say("web moved: checked at %s:%d, its old service stopping changed nothing" % (HOST, new_a.port))
    mark_b = echo_count(svc_b)
    new_a.kill_group()
    agent_a.wait_log(r"service 'web' \(%s:%d\) is down" % (HOST, new_a.port), 5, since=mark)
    gw.wait_log(r"agent 'edge-a': service 'web' is down \(its health check\)", 5)
    for i in range(20):
        round_trip(pub, size=4 * KIB, seed=i)
    wait_count(svc_b, mark_b + 20, 5, 'edge-b while web of edge-a is down')
    say('its new address stopping took edge-a out: 20 of 20 connections to edge-b')

    # Removed: 'extra' no longer checked (its service stopping logs nothing); the tunnel was never made again.
    mark = agent_a.size()
    write_config(config, [tcp_service('web', pub, new_a.port)])
    agent_a.signal(signal.SIGHUP)
    agent_a.wait_log(r'reload: services \+0 -1 ~0', 10, since=mark)
    spare.kill_group()
    time.sleep(1.0)
    after = agent_a.text()[mark:]
    after = after[after.index("reload: - 'extra'"):].split('\n', 1)[1]
    assert "service 'extra'" not in after, 'extra was still checked after the reload removed it:\n' + after
    assert not re.search(r'to the gateway lost|closed before the gateway answered', agent_a.text()), \
        'the agent lost a tunnel connection'
    assert agent_a.alive(), 'the agent exited'
    say('a removed service is no longer checked; no reconnect across three reloads')


if __name__ == '__main__':
    sys.exit(tt.main(sys.argv[1:]))
