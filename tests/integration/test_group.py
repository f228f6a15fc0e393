#!/usr/bin/env python3
"""End-to-end tests of load balancing (--group) and health checks (--health): real ringtun-gateway and ringtun-agent
processes, two agents serving one public port (or one host name) together, each with its own local service, so
that which member served a connection shows in which service's log. Echoes are checked by SHA-256.

Usage: test_group.py SCENARIO | --list      (the harness is itest.py; the runner is test_tunnel.py's main)
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tunnel as tt  # noqa: E402  (the scenario registry and the runner)
from itest import HOST, free_port, now, say, unhealthy_path  # noqa: E402
from test_policy import attempt  # noqa: E402  (one public connection, echo checked: 'served' or 'refused')

scenario = tt.scenario

# Health checks fast enough for a test: down after 2 failed checks 100 ms apart (each within 300 ms).
FAST_HEALTH = ['--health-interval-ms', '100', '--health-timeout-ms', '300', '--health-fails', '2']


# ---------------------------------------------------------------------------------------------------- helpers

def echo_count(service):
    """Connections the echo service finished (each logs one line with its byte count and checksum)."""
    # A tcp health check connects and closes without a byte: not a connection that was served.
    return len(re.findall(r'^\S+ echo \S+: [1-9]\d* bytes sha256', service.text(), re.M))


def wait_count(service, at_least, timeout, what):
    deadline = now() + timeout
    while echo_count(service) < at_least:
        if now() >= deadline:
            raise AssertionError('%s: %d connection(s) logged, expected at least %d' % (what, echo_count(service),
                                                                                         at_least))
        time.sleep(0.02)


def member(h, gw, pub, local_port, agent_id, group='blue', name='web', extra=()):
    """An agent exposing tcp:NAME@PUB=127.0.0.1:LOCAL_PORT in `group`, every tunnel connection ready and its
    service granted."""
    extra = list(extra) + (['--group', group] if group else [])
    agent = h.agent(gw.port, ['tcp:%s@%d=%s:%d' % (name, pub, HOST, local_port)], agent_id=agent_id, extra=extra)
    agent.wait_log(r"service '[^']+' .* is served by the gateway", 10)
    h.wait_agent_ready(agent)
    return agent


class Prober:
    """Opens a public connection every `every_s` on a thread and records (start time, 'served' | 'refused') in
    `results`, and (start, end, result) in `spans`."""

    def __init__(self, pub, every_s=0.01):
        self.pub = pub
        self.every_s = every_s
        self.results = []
        self.spans = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            t = now()
            try:
                r = attempt(self.pub, HOST)
            except OSError:
                r = 'refused'
            self.results.append((t, r))
            self.spans.append((t, now(), r))
            self._stop.wait(self.every_s)

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        return self.results


def failures_after(results, t0, bound_s):
    late = [t - t0 for t, r in results if r != 'served' and t - t0 > bound_s]
    early = [t - t0 for t, r in results if r != 'served' and t - t0 <= bound_s]
    return early, late


# ---------------------------------------------------------------------------------------------------- scenarios

@scenario(budget_s=60)
def group_spread(h):
    """Two agents with --group blue serve one port: 40 connections one after another are spread between them (the
    member with the fewest streams, ties in turn); every echo intact. An agent without the group, one in another
    group and one naming the service differently are refused (port_taken, port_taken, group_mismatch: that one is
    final, the agent exits 3)."""
    svc_a = h.service('echo', free_port())
    svc_b = h.service('echo', free_port())
    gw = h.gateway()
    pub = free_port()
    member(h, gw, pub, svc_a.port, 'edge-a')
    member(h, gw, pub, svc_b.port, 'edge-b')
    gw.wait_log(r"port %d: agent 'edge-b' joins group 'blue' serving 'web'" % pub, 5)
    for i in range(40):
        assert attempt(pub, HOST) == 'served', 'connection %d refused' % i
    deadline = now() + 5
    while echo_count(svc_a) + echo_count(svc_b) < 40 and now() < deadline:
        time.sleep(0.02)
    a, b = echo_count(svc_a), echo_count(svc_b)
    say('40 connections: %d to edge-a, %d to edge-b' % (a, b))
    assert a + b == 40, 'the services saw %d + %d connections, not 40' % (a, b)
    assert a >= 10 and b >= 10, 'not spread: %d to edge-a, %d to edge-b' % (a, b)

    lone = h.agent(gw.port, ['tcp:web@%d=%s:%d' % (pub, HOST, svc_a.port)], agent_id='edge-c')
    lone.wait_log(r"refused for now \(port_taken\): port %d is taken by agent 'edge-a';" % pub, 10)
    green = h.agent(gw.port, ['tcp:web@%d=%s:%d' % (pub, HOST, svc_a.port)], agent_id='edge-d',
                    extra=['--group', 'green'])
    green.wait_log(r"refused for now \(port_taken\): port %d is taken by agent 'edge-a' \(in group 'blue'\)" % pub, 10)
    renamed = h.agent(gw.port, ['tcp:www@%d=%s:%d' % (pub, HOST, svc_a.port)], agent_id='edge-e',
                      extra=['--group', 'blue'])
    renamed.wait_log(r"refused \(group_mismatch\): group 'blue' serves tcp port %d as service 'web'" % pub, 10)
    status = renamed.wait_exit(10)
    assert status == 3, 'the agent whose only service was refused for good exited %s, not 3' % status
    assert attempt(pub, HOST) == 'served', 'the group stopped serving after the refused claims'


@scenario(budget_s=60)
def group_failover(h):
    """A member killed (SIGKILL) while connections arrive every 10 ms: the gateway sees its tunnel connections close
    and from then on sends every new connection to the other member (0 failures later than 1 s after the kill);
    started again with the same id, it rejoins the group and gets connections again."""
    svc_a = h.service('echo', free_port())
    svc_b = h.service('echo', free_port())
    gw = h.gateway()
    pub = free_port()
    agent_a = member(h, gw, pub, svc_a.port, 'edge-a')
    member(h, gw, pub, svc_b.port, 'edge-b')
    prober = Prober(pub)
    time.sleep(0.5)
    t_kill = now()
    agent_a.signal(signal.SIGKILL)
    time.sleep(2.5)
    results = prober.stop()
    early, late = failures_after(results, t_kill, 1.0)
    after = [r for t, r in results if t > t_kill]
    say('%d connections after the kill: %d failed within 1 s (%s), %d later' % (
        len(after), len(early), ', '.join('%.3f s' % t for t in early[:5]), len(late)))
    assert not late, 'connections failed later than 1 s after the kill: at %s s' % ', '.join('%.3f' % t for t in late)
    assert len(after) >= 20, 'only %d connections were tried after the kill' % len(after)
    # An attempt under way when the kill came may fail with it: only those that ended before it count here.
    assert not [r for t0, t1, r in prober.spans if t1 < t_kill and r != 'served'], 'connections failed before the kill'

    before = echo_count(svc_a)
    member(h, gw, pub, svc_a.port, 'edge-a')
    for i in range(20):
        assert attempt(pub, HOST) == 'served', 'connection %d refused after edge-a came back' % i
    wait_count(svc_a, before + 5, 5, 'edge-a after it rejoined')
    say('edge-a rejoined: %d of the next 20 connections reached it' % (echo_count(svc_a) - before))


@scenario(budget_s=60)
def group_health(h):
    """--health tcp: member A's local service stops (its port refuses): within the health-check bound (2 checks 100
    ms apart) the gateway sends A no new connections (0 failures later than 1.5 s); the service back on its port, A
    is up again and gets connections. Both programs log each change."""
    port_a = free_port()
    svc_a = h.service('echo', port_a)
    svc_b = h.service('echo', free_port())
    gw = h.gateway()
    pub = free_port()
    agent_a = member(h, gw, pub, svc_a.port, 'edge-a', extra=['--health', 'tcp'] + FAST_HEALTH)
    member(h, gw, pub, svc_b.port, 'edge-b', extra=['--health', 'tcp'] + FAST_HEALTH)
    for i in range(10):
        assert attempt(pub, HOST) == 'served', 'connection %d refused' % i
    assert echo_count(svc_a) > 0 and echo_count(svc_b) > 0, 'not spread before the check failed'

    prober = Prober(pub)
    time.sleep(0.3)
    t_down = now()
    svc_a.kill_group()
    agent_a.wait_log(r"service 'web' \(%s:%d\) is down: 2 health check\(s\) in a row failed" % (HOST, port_a), 5)
    gw.wait_log(r"agent 'edge-a': service 'web' is down \(its health check\)", 5)
    time.sleep(2.0)
    results = prober.stop()
    early, late = failures_after(results, t_down, 1.5)
    say('service of edge-a stopped: %d connection(s) failed within 1.5 s, %d later, of %d' % (
        len(early), len(late), len([1 for t, r in results if t > t_down])))
    assert not late, 'connections failed later than 1.5 s after the service stopped: at %s s' % ', '.join(
        '%.3f' % t for t in late)

    since = agent_a.size()
    svc_a2 = h.service('echo', port_a)
    agent_a.wait_log(r"service 'web' \(%s:%d\) is up again" % (HOST, port_a), 5, since=since)
    gw.wait_log(r"agent 'edge-a': service 'web' is up \(its health check\)", 5)
    for i in range(20):
        assert attempt(pub, HOST) == 'served', 'connection %d refused after the service came back' % i
    wait_count(svc_a2, 5, 5, "edge-a's service after it came back")
    say('edge-a is up again: %d of the next 20 connections reached it' % echo_count(svc_a2))


def curl_whoami(port, host, count):
    """`count` requests on one keep-alive curl connection to the shared HTTP port; the services' labels, in order."""
    url = 'http://%s:%d/whoami' % (HOST, port)
    out = subprocess.run(['curl', '-sS', '--max-time', '20', '-H', 'Host: ' + host, '-w', '\\n'] + [url] * count,
                         capture_output=True, timeout=30)
    assert out.returncode == 0, 'curl failed (%d): %s' % (out.returncode, out.stderr.decode(errors='replace'))
    return out.stdout.decode().split()


@scenario(budget_s=60)
def group_http(h):
    """An http: host served by a group, with --health http:/health: curl's requests on one keep-alive connection
    are spread between the members (new requests, not new connections, are balanced); while alpha's /health answers
    503 every request goes to beta; once it answers 200 again alpha gets requests again."""
    gw = h.gateway(http=True, tokens=(('itest-secret', None, '*.test'),))
    port_a, port_b = free_port(), free_port()
    marker = unhealthy_path(port_a)
    if os.path.exists(marker):
        os.unlink(marker)
    h.service('http', port_a, label='alpha')
    h.service('http', port_b, label='beta')
    for agent_id, port in (('edge-a', port_a), ('edge-b', port_b)):
        agent = h.agent(gw.port, ['http:app@app.test=%s:%d' % (HOST, port)], agent_id=agent_id,
                        extra=['--group', 'blue', '--health', 'http:/health'] + FAST_HEALTH)
        agent.wait_log(r"service '[^']+' .* is served by the gateway", 10)
        h.wait_agent_ready(agent)
        if agent_id == 'edge-a':
            agent_a = agent
    labels = curl_whoami(gw.http_port, 'app.test', 20)
    say('20 requests: %d alpha, %d beta' % (labels.count('alpha'), labels.count('beta')))
    assert len(labels) == 20 and set(labels) <= {'alpha', 'beta'}, 'unexpected answers: %s' % labels
    assert labels.count('alpha') >= 5 and labels.count('beta') >= 5, 'not spread: %s' % labels
    try:
        open(marker, 'w').close()
        agent_a.wait_log(r"service 'app' \(%s:%d\) is down: 2 health check\(s\) in a row failed, the last: "
                         r"answered 503" % (HOST, port_a), 5)
        gw.wait_log(r"agent 'edge-a': service 'app' is down \(its health check\)", 5)
        time.sleep(0.3)  # the new snapshot reaches every core
        labels = curl_whoami(gw.http_port, 'app.test', 20)
        assert labels == ['beta'] * 20, 'alpha is down, yet: %s' % labels
        say('alpha down: 20 of 20 requests to beta')
    finally:
        if os.path.exists(marker):
            os.unlink(marker)
    agent_a.wait_log(r"service 'app' \(%s:%d\) is up again" % (HOST, port_a), 5)
    deadline = now() + 5
    while True:
        labels = curl_whoami(gw.http_port, 'app.test', 20)
        if labels.count('alpha') >= 5:
            break
        assert now() < deadline, 'alpha is up again, yet: %s' % labels
        time.sleep(0.1)
    say('alpha up again: %d of 20 requests to alpha' % labels.count('alpha'))


if __name__ == '__main__':
    sys.exit(tt.main(sys.argv[1:]))
