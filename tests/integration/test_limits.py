#!/usr/bin/env python3
"""End-to-end tests of resource limits under abuse: a gateway out of file descriptors, and a tunnel connection that a
relay blackholes (it stops forwarding without closing). Real ringtun-gateway and ringtun-agent processes; payloads are
checked by SHA-256, not by length; every time bound is stated where it is asserted.

Usage: test_limits.py SCENARIO | --list      (the harness is itest.py; the runner is test_tunnel.py's main)
"""
import datetime
import hashlib
import os
import re
import select
import selectors
import shutil
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tunnel as tt  # noqa: E402  (the scenario registry and the runner)
from itest import GATEWAY_THREADS, HOST, KIB, Relay, expect_closed, free_port, now, round_trip, say, sha, \
    wait_round_trip  # noqa: E402

scenario = tt.scenario

READY_RX = r'connection \d+/\d+ to gateway \S+ ready'


def count_lines(proc, pattern, since=0):
    with open(proc.log_path, 'rb') as f:
        f.seek(since)
        return re.findall(pattern, f.read().decode('utf-8', 'replace'), re.M)


def line_times(proc, pattern, since=0):
    """The wall-clock times (time.time() scale) that the program stamped on its lines matching `pattern`: bounds are
    checked against when the program acted, not against when this process, maybe slowed by the load, looked."""
    rx = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z .*(?:%s)' % pattern, re.M)
    with open(proc.log_path, 'rb') as f:
        f.seek(since)
        text = f.read().decode('utf-8', 'replace')
    return [datetime.datetime.strptime(m.group(1), '%Y-%m-%dT%H:%M:%S.%f').replace(
        tzinfo=datetime.timezone.utc).timestamp() for m in rx.finditer(text)]


# ---------------------------------------------------------------------------------------------------- EMFILE

# The gateway's descriptor limit (soft and hard). At rest (2 cores, one agent) it holds about 15, so this leaves a few
# dozen for public connections: few enough to exhaust from one test process in a moment. (Under 16,384 the loops'
# fixed-file table does not fit the limit and they run without it: the start-up log says so.)
NOFILE = 72
HELD_BEYOND = 16  # connections opened beyond the gateway's free descriptors: they wait in the listen queue


def open_fds(pid):
    return len(os.listdir('/proc/%d/fd' % pid))


def settled_fds(pid, timeout=3.0):
    """The gateway's descriptor count once it has not changed for 0.3 s (a connection just closed by the client is
    closed by the gateway a moment later)."""
    deadline = now() + timeout
    last, since = open_fds(pid), now()
    while now() - since < 0.3:
        assert now() < deadline, 'the gateway\'s descriptor count does not settle'
        time.sleep(0.05)
        n = open_fds(pid)
        if n != last:
            last, since = n, now()
    return last


def message(i, round_no):
    """Connection i's message in round `round_no`: 4 KiB (fits the socket buffers, so sending never blocks)."""
    return hashlib.sha256(b'%d/%d' % (i, round_no)).digest() * (4 * KIB // 32)


def echo_round(conns, msgs, expect_served, timeout, send=True):
    """Sends msgs[i] on conns[i] (unless `send` is False: already sent) and reads the echoes of all at once until
    `expect_served` connections have their whole message back, or `timeout`. Returns the indexes served. Any other
    outcome than "whole message back, SHA-256 equal" or "nothing at all, still open" fails."""
    sel = selectors.DefaultSelector()
    got = {}
    for i, c in enumerate(conns):
        if send:
            c.sendall(msgs[i])
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ, i)
        got[i] = bytearray()
    served = set()
    deadline = now() + timeout
    while len(served) < expect_served and now() < deadline:
        for key, _ in sel.select(timeout=0.1):
            i = key.data
            try:
                data = key.fileobj.recv(64 * KIB)
            except OSError as e:
                raise AssertionError('connection %d: %s while its echo was awaited' % (i, e))
            assert data, 'connection %d: closed by the gateway (%d bytes of its echo came)' % (i, len(got[i]))
            got[i] += data
            assert len(got[i]) <= len(msgs[i]), 'connection %d: more bytes than it sent' % i
            if len(got[i]) == len(msgs[i]):
                assert sha(bytes(got[i])) == sha(msgs[i]), 'connection %d: the echo differs from what it sent' % i
                served.add(i)
                sel.unregister(key.fileobj)
    sel.close()
    for i, c in enumerate(conns):
        c.setblocking(True)
        c.settimeout(5)
        assert i in served or not got[i], 'connection %d: %d of %d bytes came back, then nothing' % (
            i, len(got[i]), len(msgs[i]))
    return served


@scenario(budget_s=28)
def limits_emfile(h):
    """The gateway under prlimit --nofile=72: idle public connections use up its descriptors. Accepting pauses with
    one line per listener (not one per 100 ms retry), the gateway lives, connections it accepted keep echoing; closing
    them one by one (churn at the limit) lets queued ones in without a line per connection; closing the rest serves
    the whole queue within 100 ms, each pause ends with one line, and new clients are served again."""
    if shutil.which('prlimit') is None:
        raise tt.Skip('prlimit (util-linux) not found')
    echo = h.service('echo', free_port())
    gw = h.gateway(nofile=NOFILE)
    limits = open('/proc/%d/limits' % gw.pid).read()
    assert re.search(r'^Max open files\s+%d\s+%d\s' % (NOFILE, NOFILE), limits, re.M), \
        'the gateway does not run with RLIMIT_NOFILE %d:\n%s' % (NOFILE, limits)
    pub = free_port()
    agent = h.agent(gw.port, [(pub, echo.port)], agent_id='edge-emfile')
    h.wait_agent_ready(agent)
    wait_round_trip(pub, 5, 'agent up')
    free = NOFILE - settled_fds(gw.pid)
    say('the gateway holds %d descriptors: %d free under its limit of %d' % (NOFILE - free, free, NOFILE))
    assert 8 <= free <= NOFILE - 10, 'implausible descriptor count (%d free of %d)' % (free, NOFILE)

    mark = gw.size()
    held = [socket.create_connection((HOST, pub), timeout=5) for _ in range(free + HELD_BEYOND)]
    t_exhausted = now()
    say('holding %d idle public connections' % len(held))
    msgs = [message(i, 1) for i in range(len(held))]
    served = echo_round(held, msgs, free, timeout=8)
    waiting = [i for i in range(len(held)) if i not in served]
    say('%d connections echo, %d wait in the listen queue' % (len(served), len(waiting)))
    # Each public connection costs the gateway exactly one descriptor (streams share the tunnel connection).
    assert len(served) == free, '%d connections served with %d descriptors free' % (len(served), free)
    pause = (r'accept on 127\.0\.0\.1:%d: out of file descriptors \(EMFILE\); pausing accepts, retrying every 100 ms'
             % pub)
    gw.wait_log(pause, 5, since=mark)

    # Exhausted for 2.5 s more: 25 retries per paused listener. Every line about it is counted, not just ours.
    time.sleep(max(0.0, t_exhausted + 3.0 - now()))
    assert gw.alive(), 'the gateway exited (status %s) out of descriptors' % gw.p.returncode
    again = echo_round([held[i] for i in sorted(served)], [message(i, 2) for i in sorted(served)], len(served), 8)
    assert len(again) == len(served), 'only %d of %d accepted connections echo a second time' % (
        len(again), len(served))
    pauses = count_lines(gw, pause, mark)
    noise = count_lines(gw, r'^.*(EMFILE|[Tt]oo many open files|out of file descriptors).*$', mark)
    say('after %.1f s out of descriptors: %d pause line(s), %d line(s) about descriptors in all'
        % (now() - t_exhausted, len(pauses), len(noise)))
    # One listener per core for the port; each logs its pause once.
    assert 1 <= len(pauses) <= GATEWAY_THREADS, '%d pause lines for %d listeners' % (len(pauses), GATEWAY_THREADS)
    assert len(noise) == len(pauses), 'other lines about descriptors:\n%s' % '\n'.join(noise)

    # At the limit, with churn: accepted connections close one at a time, each descriptor given back lets one queued
    # connection in, and the next accept fails again. That is the same pause going on, not a pause per connection: no
    # new pause line. (A listener whose own queue drained may say it accepts again: at most once each.)
    resume_rx = r'accept on 127\.0\.0\.1:%d: accepting again after ([\d.]+) s paused \((\d+) retries\)' % pub
    order = sorted(served)
    churn = HELD_BEYOND // 2
    for i in order[:churn]:
        held[i].close()
        time.sleep(0.15)
    admitted = echo_round([held[i] for i in waiting], [msgs[i] for i in waiting], churn, 5, send=False)
    say('churn at the limit: %d connections closed one by one, %d queued ones let in' % (churn, len(admitted)))
    assert len(admitted) == churn, '%d queued connections let in for %d descriptors given back' % (
        len(admitted), churn)
    time.sleep(1.5)  # longer than a pause's quiet period (1 s): a pause wrongly ended would be logged by now
    churn_lines = count_lines(gw, r'^.*accept on .*$', mark)
    assert len(count_lines(gw, pause, mark)) == len(pauses), 'new pauses during the churn:\n%s' % '\n'.join(
        churn_lines)
    assert len(churn_lines) <= 2 * len(pauses), 'the churn at the limit was logged:\n%s' % '\n'.join(churn_lines)
    waiting = [w for k, w in enumerate(waiting) if k not in admitted]

    # Closing the rest gives descriptors back for good: the last queued connections are accepted by the next retry
    # (100 ms) and echo what they sent long ago; each pause ends with one line, 1 s (its quiet period) later.
    for i in order[churn:]:
        held[i].close()
    t_freed = now()
    late = echo_round([held[i] for i in waiting], [msgs[i] for i in waiting], len(waiting), 5, send=False)
    took = now() - t_freed
    say('the last %d queued connections were served %.2f s after descriptors came back' % (len(late), took))
    assert len(late) == len(waiting), 'only %d of %d queued connections served after descriptors came back' % (
        len(late), len(waiting))
    deadline = now() + 3
    while len(count_lines(gw, resume_rx, mark)) < len(pauses):
        assert now() < deadline, '%d pause lines but %d resume lines 3 s after descriptors came back' % (
            len(pauses), len(count_lines(gw, resume_rx, mark)))
        time.sleep(0.05)
    time.sleep(0.2)
    resumes = count_lines(gw, resume_rx, mark)
    assert len(resumes) == len(pauses), '%d pause lines but %d resume lines' % (len(pauses), len(resumes))
    for seconds, retries in resumes:
        say('resumed after %s s paused, %s retries' % (seconds, retries))
        assert float(seconds) >= 2.5 and int(retries) >= 10, 'a pause of %s s with %s retries' % (seconds, retries)
    for c in held:
        c.close()
    wait_round_trip(pub, 3, 'a new client after the exhaustion')
    for i in range(10):
        round_trip(pub, size=64 * KIB, seed=i)
    assert gw.alive()
    lines = count_lines(gw, r'^.*(EMFILE|[Tt]oo many open files|out of file descriptors|accepting again).*$', mark)
    say('10 new clients served; %d lines about descriptors in all, over %.1f s' % (len(lines), now() - t_exhausted))
    assert len(lines) == 2 * len(pauses), 'lines about descriptors:\n%s' % '\n'.join(lines)


# ---------------------------------------------------------------------------------------------------- blackhole

HEARTBEAT_MS = 300  # both programs
# The agent's dead-peer time is twice the gateway's so that each end's own timer is what closes its end: with equal
# times, an agent that noticed first could reconnect before the gateway noticed, and its new connection would replace
# the gateway's old one (a correct ending, but then the gateway's timer would not be what the test saw).
GW_DEAD_PEER_MS = 1500
AGENT_DEAD_PEER_MS = 3000
TCP_CLOSE = 7
TCP_CLOSE_WAIT = 8


def tcp_state(s):
    """The kernel's TCP state of `s` (tcpi_state, the first byte of TCP_INFO): it moves to CLOSE_WAIT when the peer's
    FIN arrives, whether or not anyone reads."""
    return struct.unpack('B', s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1))[0]


class FreezingRelay(Relay):
    """A TCP relay for an agent's tunnel connections (agent -> relay -> gateway). freeze() blackholes every connection
    open at that moment: from then on nothing is forwarded on it either way, and it stays open (its sockets are held
    until close()). Connections opened after a freeze are forwarded normally."""

    def __init__(self, target_port):
        self.lock = threading.Lock()
        self.conns = []  # [{'agent': socket, 'gateway': socket, 'frozen': bool}]
        super().__init__(target_port)

    def on_pair(self, a, g):
        conn = {'agent': a, 'gateway': g, 'frozen': False}
        with self.lock:
            self.conns.append(conn)
        threading.Thread(target=self._pump, args=(conn, a, g), daemon=True).start()
        threading.Thread(target=self._pump, args=(conn, g, a), daemon=True).start()

    def _pump(self, conn, src, dst):
        try:
            while True:
                data = src.recv(64 * KIB)
                if conn['frozen']:
                    return  # what was read is dropped; the sockets stay open and nobody reads them again
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
        except OSError:
            pass

    def freeze(self):
        with self.lock:
            frozen = [c for c in self.conns if not c['frozen']]
            for c in frozen:
                c['frozen'] = True
        return frozen

    def opened(self):
        with self.lock:
            return len(self.conns)

    def close(self):
        self.ls.close()
        with self.lock:
            for c in self.conns:
                for s in (c['agent'], c['gateway']):
                    s.close()


class Prober:
    """Public round trips back to back in a thread (16 KiB, checked by SHA-256, 3 s timeout each), recording
    (start, end, error or None) for each, until stop()."""

    def __init__(self, port):
        self.port = port
        self.results = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        i = 0
        while not self.done.is_set():
            t0 = now()
            try:
                round_trip(self.port, size=16 * KIB, seed=1000 + i, timeout=3.0)
                self.results.append((t0, now(), None))
            except (OSError, AssertionError) as e:
                self.results.append((t0, now(), e))
                time.sleep(0.05)
            i += 1

    def stop(self):
        self.done.set()
        self.thread.join(5)
        return self.results


def dead_peer_bound(dead_peer_ms):
    """When an end that received nothing since `t` closes: on the first heartbeat tick (every min(HEARTBEAT_MS,
    dead_peer_ms / 3)) at least dead_peer_ms after `t`. An idle tunnel hears a PING or PONG at least every two
    heartbeats, so `t` is at most 2 x HEARTBEAT_MS before the freeze: the close comes within about dead_peer_ms +
    HEARTBEAT_MS of it. The bound asserted: 2 x dead_peer_ms (seconds)."""
    return 2 * dead_peer_ms / 1000


@scenario(budget_s=28)
def limits_blackhole(h):
    """A relay between agent and gateway stops forwarding without closing (heartbeat 300 ms; dead peer 1.5 s on the
    gateway, 3 s on the agent). The gateway closes its end of each frozen connection within 3 s, the agent within
    6 s (each by its own timer, logged), the agent reconnects through the relay; a transfer in flight at the freeze
    ends with a reset, not a hang; public clients are served again within 7 s of the freeze, and every one of them
    from then on is."""
    gw_timers = ['--heartbeat-ms', str(HEARTBEAT_MS), '--dead-peer-ms', str(GW_DEAD_PEER_MS)]
    agent_timers = ['--heartbeat-ms', str(HEARTBEAT_MS), '--dead-peer-ms', str(AGENT_DEAD_PEER_MS)]
    echo = h.service('echo', free_port())
    gw = h.gateway(extra=gw_timers)
    relay = FreezingRelay(gw.port)
    pub = free_port()
    agent = h.agent(relay.port, [(pub, echo.port)], agent_id='edge-blackhole', extra=agent_timers)
    h.wait_agent_ready(agent)
    for i, size in enumerate((1, 64 * KIB, 1024 * KIB)):
        round_trip(pub, size=size, seed=i)
    tunnels = relay.opened()
    say('round trips of 1 B .. 1 MiB through %d relayed tunnel connection(s)' % tunnels)
    assert tunnels == GATEWAY_THREADS, '%d tunnel connections through the relay, not one per gateway core' % tunnels
    any_dead = r'peer presumed dead'
    assert not count_lines(agent, any_dead) and not count_lines(gw, any_dead), 'a dead peer before the freeze'

    # A transfer in flight when the relay freezes (the tunnel's send buffers fill at both ends): its stream must end
    # when its tunnel does, by a reset (a truncated transfer must not look complete), not hang.
    streaming = socket.create_connection((HOST, pub), timeout=5)
    stop_sending = threading.Event()

    def send_until_stopped():
        # Never blocked in a send for long: the reset must reach the reader, and a socket reports a reset once, to
        # whichever call comes first.
        data = b'x' * (64 * KIB)
        while not stop_sending.is_set():
            if select.select([], [streaming], [], 0.05)[1]:
                try:
                    streaming.send(data)
                except OSError:
                    return
    sender = threading.Thread(target=send_until_stopped, daemon=True)
    sender.start()
    echoed = 0
    while echoed < 4 * 1024 * KIB:
        data = streaming.recv(256 * KIB)
        assert data, 'the streaming client lost its connection before the freeze'
        echoed += len(data)

    agent_mark, gw_mark = agent.size(), gw.size()
    frozen = relay.freeze()
    t_freeze, wall_freeze = now(), time.time()
    prober = Prober(pub)
    stop_sending.set()
    sender.join(5)
    say('relay frozen: %d connection(s) blackholed, held open, %d KiB into a transfer' % (len(frozen), echoed // KIB))
    gw_bound = dead_peer_bound(GW_DEAD_PEER_MS)
    agent_bound = dead_peer_bound(AGENT_DEAD_PEER_MS)
    recovery = agent_bound + 1.0  # then the first back-off (100 ms +- 25%), TLS and the hello
    try:
        # The gateway: each frozen connection (the peer it sees is the relay's socket towards it) closed by its
        # dead-peer timer, logged with the agent's name, and closed on the wire: the relay's socket is in CLOSE_WAIT
        # (or CLOSE after a reset) though nobody reads it.
        for c in frozen:
            peer = '127.0.0.1:%d' % c['gateway'].getsockname()[1]
            m = gw.wait_log(r"agent 'edge-blackhole': tunnel connection from %s closed: (.*)$" % re.escape(peer),
                            gw_bound + 2, since=gw_mark)
            assert m.group(1) == 'dead peer (heartbeat timeout)', 'the gateway closed %s: %s' % (peer, m.group(1))
            took = line_times(gw, r'tunnel %s: no bytes for %d ms: peer presumed dead' % (
                re.escape(peer), GW_DEAD_PEER_MS), gw_mark)
            assert len(took) == 1, 'the gateway logs the dead peer %s %d times' % (peer, len(took))
            took = took[0] - wall_freeze
            say('gateway: %s dead %.2f s after the freeze (bound %.1f s)' % (peer, took, gw_bound))
            assert took <= gw_bound, 'the gateway noticed the dead peer after %.2f s' % took
        wait_closed_on_wire(frozen, 'gateway', t_freeze + gw_bound + 1)
        _, how = expect_closed(streaming, 1.0, 'the stream on a dead tunnel, after the gateway closed the tunnel')
        say('the transfer in flight at the freeze was cut (%s) by %.2f s' % (how, now() - t_freeze))
        assert how == 'ConnectionResetError', 'the transfer cut by a dead tunnel ended with %s, not a reset' % how

        # The agent: nothing comes on its frozen connections (the gateway's FIN is not forwarded either), so only
        # its timer ends them, once each.
        dead_rx = r'no bytes for %d ms: peer presumed dead' % AGENT_DEAD_PEER_MS
        deadline = t_freeze + agent_bound + 1
        while len(line_times(agent, dead_rx, agent_mark)) < len(frozen):
            assert now() < deadline, 'agent: %d dead-peer line(s) %.1f s after the freeze' % (
                len(line_times(agent, dead_rx, agent_mark)), now() - t_freeze)
            time.sleep(0.05)
        took = [t - wall_freeze for t in line_times(agent, dead_rx, agent_mark)]
        say('agent: dead peer logged %s s after the freeze (bound %.1f s)' % (
            ', '.join('%.2f' % t for t in took), agent_bound))
        assert len(took) == len(frozen), 'agent: %d dead-peer lines for %d frozen connections' % (
            len(took), len(frozen))
        assert max(took) <= agent_bound, 'the agent noticed a dead peer after %.2f s' % max(took)
        wait_closed_on_wire(frozen, 'agent', t_freeze + agent_bound + 1)

        # The agent reconnects through the relay (new connections, forwarded): all its connections ready again.
        h.wait_agent_ready(agent, since=agent_mark, timeout=max(0.5, recovery + 1 - (now() - t_freeze)))
        t_ready = max(line_times(agent, READY_RX, agent_mark)) - wall_freeze
        assert relay.opened() >= 2 * tunnels, 'the agent did not reconnect through the relay'
        say('the agent is ready again %.2f s after the freeze (recovery bound %.1f s)' % (t_ready, recovery))
        assert t_ready <= recovery, 'ready again only after %.2f s' % t_ready
        time.sleep(max(0.0, t_freeze + recovery + 2.5 - now()))
    finally:
        results = prober.stop()
    first_ok = next((end - t_freeze for _, end, e in results if e is None), None)
    assert first_ok is not None, 'no public client served after the freeze'
    # Clients that started after the recovery bound: every one must be served.
    late = [(start - t_freeze, e) for start, _, e in results if start - t_freeze >= recovery]
    failures = [(t, e) for t, e in late if e is not None]
    say('public clients: %d tried since the freeze, %d failed; the first served %.2f s after it; started after the '
        'recovery bound (%.1f s): %d, failed %d' % (len(results), sum(1 for r in results if r[2] is not None),
                                                    first_ok, recovery, len(late), len(failures)))
    assert first_ok <= recovery, 'the first public client served %.2f s after the freeze' % first_ok
    assert len(late) >= 5, 'only %d public clients tried after the recovery bound' % len(late)
    assert not failures, 'public clients failed after the recovery bound: %s' % [
        '%.2f s: %s' % (t, e) for t, e in failures]
    relay.close()
    assert gw.alive() and agent.alive()


def wait_closed_on_wire(frozen, side, deadline):
    """The relay's socket towards `side` on every frozen connection has seen that side's FIN (CLOSE_WAIT) or reset
    (CLOSE): the kernel moves the state on arrival, while nobody reads."""
    while True:
        states = [tcp_state(c[side]) for c in frozen]
        if all(st in (TCP_CLOSE, TCP_CLOSE_WAIT) for st in states):
            return
        assert now() < deadline, '%s: the frozen connections are not closed on the wire (TCP states %s)' % (
            side, states)
        time.sleep(0.05)

if __name__ == '__main__':
    sys.exit(tt.main(sys.argv[1:]))
