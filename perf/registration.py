#!/usr/bin/env python3
"""How long an agent with many services takes to register, end to end, on loopback.

    python3 perf/registration.py [--build build-release] [--services 1,100,1000] [--rounds 5]

For each service count: a gateway (2 cores, TLS) and an echo service start once; then, each round, an agent with N
TCP services starts, and its own summary line ("N service(s) claimed in X ms") gives the time from the claims leaving
the agent (right behind its hello, on connection 0 with TLS up) to the last answer, which on the gateway covers the
claims, the route snapshot and opening every port (a probe bind plus one listener per core). A round trip through
the last port then checks the port serves. Prints the median and range per count; the machine's load is printed too,
since this box is shared.
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HOST = '127.0.0.1'


def free_ports(n):
    ports = set()
    while len(ports) < n:
        with socket.socket() as s:
            s.bind((HOST, 0))
            ports.add(s.getsockname()[1])
    return sorted(ports)


def wait_for(path, pattern, timeout, proc=None):
    rx = re.compile(pattern, re.M)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, errors='replace') as f:
            m = rx.search(f.read())
        if m:
            return m
        if proc is not None and proc.poll() is not None:
            raise SystemExit('%s exited (%s); see %s' % (proc.args[0], proc.returncode, path))
        time.sleep(0.005)
    raise SystemExit('no /%s/ in %s within %.0f s' % (pattern, path, timeout))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--build', default='build-release')
    ap.add_argument('--services', default='1,100,1000')
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--plaintext', action='store_true', help='--insecure-plaintext on both: no TLS handshake in the time')
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    gateway_bin = os.path.join(root, args.build, 'src/gateway/ringtun-gateway')
    agent_bin = os.path.join(root, args.build, 'src/edge-agent/ringtun-agent')
    work = tempfile.mkdtemp(prefix='ringtun-registration-')
    procs = []

    def start(argv, log):
        f = open(os.path.join(work, log), 'w')
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        procs.append(p)
        return p, os.path.join(work, log)

    try:
        echo = socket.socket()
        echo.bind((HOST, 0))
        echo.listen(64)  # the check below connects through the tunnel; nothing needs to be echoed
        gw, gw_log = start([gateway_bin, '--listen', HOST + ':0', '--threads', '2', '--token', 'bench',
                            '--state-dir', os.path.join(work, 'state')] +
                           (['--insecure-plaintext'] if args.plaintext else []), 'gateway.log')
        port = int(wait_for(gw_log, r'listening for agents on \S+ \(port (\d+)\)', 10, gw).group(1))
        fingerprint = None if args.plaintext else wait_for(gw_log, r'fingerprint (sha256:[0-9a-f]{64})', 5, gw).group(1)
        print('load average before: %s' % ' '.join(open('/proc/loadavg').read().split()[:3]))
        print('%10s %12s %12s %12s' % ('services', 'median ms', 'min ms', 'max ms'))
        for count in [int(c) for c in args.services.split(',')]:
            times = []
            for r in range(args.rounds):
                ports = free_ports(count)
                argv = [agent_bin, '--gateway', '%s:%d' % (HOST, port), '--token', 'bench', '--agent-id',
                        'reg-%d-%d' % (count, r), '--threads', '1']
                argv += ['--insecure-plaintext'] if args.plaintext else ['--gateway-fingerprint', fingerprint]
                for p in ports:
                    argv += ['--expose', 'tcp:s%d@%d=%s:%d' % (p, p, HOST, echo.getsockname()[1])]
                agent, log = start(argv, 'agent-%d-%d.log' % (count, r))
                m = wait_for(log, r'(\d+) service\(s\) claimed in ([\d.]+) ms: (\d+) served', 30, agent)
                if int(m.group(3)) != count:
                    raise SystemExit('only %s of %d services served; see %s' % (m.group(3), count, log))
                socket.create_connection((HOST, ports[-1]), timeout=5).close()
                times.append(float(m.group(2)))
                agent.kill()  # not a drain test: the check's stream to the listener above never ends
                agent.wait(10)
            print('%10d %12.2f %12.2f %12.2f' % (count, statistics.median(times), min(times), max(times)))
        print('load average after: %s' % ' '.join(open('/proc/loadavg').read().split()[:3]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


if __name__ == '__main__':
    sys.exit(main())
