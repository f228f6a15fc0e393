#!/usr/bin/env python3
"""End-to-end tests of resource limits under abuse: a gateway out of file descriptors. Real ringtun-gateway and
ringtun-agent processes; payloads are checked by SHA-256, not by length; every time bound is stated where it is
asserted.

Usage: test_limits.py SCENARIO | --list      (the harness is itest.py; the runner is test_tunnel.py's main)
"""
import hashlib
import os
import re
import selectors
import shutil
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tunnel as tt  # noqa: E402  (the scenario registry and the runner)
from itest import GATEWAY_THREADS, HOST, KIB, free_port, now, round_trip, say, sha, wait_round_trip  # noqa: E402

scenario = tt.scenario


def count_lines(proc, pattern, since=0):
    with open(proc.log_path, 'rb') as f:
        f.seek(since)
        return re.findall(pattern, f.read().decode('utf-8', 'replace'), re.M)


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


if __name__ == '__main__':
    sys.exit(tt.main(sys.argv[1:]))
