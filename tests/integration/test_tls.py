#!/usr/bin/env python3
"""End-to-end tests of TLS on tunnel connections: a real ringtun-gateway and ringtun-agent on 127.0.0.1.

Usage: test_tls.py SCENARIO | --list      (meson registers each scenario as its own test)

The harness is itest.py's (processes, logs, services) with test_tunnel.py's runner (watchdog, log dumps on failure),
imported, not copied:
this file swaps in its own scenario table and a Harness subclass that adds TLS. Each scenario makes a fresh set of
test certificates (certs.py: a CA, an unrelated CA, good / expired / wrong-name server certificates, good and
foreign-signed client certificates) in its log directory. Unless a scenario says otherwise, a gateway generates a
self-signed pair in the scenario's state directory and agents pin the fingerprint it prints (test_tunnel's default).

Every refusal is checked three ways: the expected reason in a log line (matched loosely, but on the words that name
the reason), no "ready" line from the refused agent, and its public port not served. Lines of a log that echo the
command ("$ ...") never count as a match.
"""
import os
import random
import re
import shutil
import signal
import socket
import stat
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import certs as certgen  # noqa: E402
except ImportError as e:  # python3-cryptography (scripts/lib.sh installs it)
    print('cannot make test certificates (%s): skipping' % e)
    sys.exit(77)
import test_tunnel as tt  # noqa: E402
from test_tunnel import HOST, KIB, MIB, TOKEN, free_port, now, round_trip, say, wait_round_trip  # noqa: E402
from itest import Relay, chunks, connect, payload, recv_exactly, sha  # noqa: E402

# test_tunnel's main() runs the scenarios of its module-level table with its module-level Harness: point both here.
SCENARIOS = tt.SCENARIOS = {}
scenario = tt.scenario

READY_RX = r'connection \d+/\d+ to gateway \S+ ready'


def line_rx(*words):
    """A regex for one log line (not the "$ command" line) that contains a match of every one of `words` (regexes),
    in any order, case-insensitively."""
    return r'(?im)^(?!\$ )' + ''.join('(?=.*(?:%s))' % w for w in words) + r'.*$'


class TlsHarness(tt.Harness):
    """test_tunnel's Harness (which runs TLS by default: a self-signed pair in DIR/state, pinned by the agents started
    after the gateway) plus the test certificates, and `tls=[...]` flags that replace those defaults."""

    def __init__(self, name):
        super().__init__(name)
        self.cert_dir = os.path.join(self.dir, 'certs')
        certgen.write_all(self.cert_dir)
        self.state_dir = os.path.join(self.dir, 'state')  # the base Harness's default --state-dir

    def cert(self, stem):
        return os.path.join(self.cert_dir, stem + '.pem')

    def key(self, stem):
        return os.path.join(self.cert_dir, stem + '-key.pem')

    def server_flags(self, stem):
        return ['--cert', self.cert(stem), '--key', self.key(stem)]

    def client_flags(self, stem):
        return ['--cert', self.cert(stem), '--key', self.key(stem)]

    def gateway(self, port=0, extra=(), tokens=((TOKEN, None),), tls=None):
        tls = list(tls or [])
        g = super().gateway(port, tls + list(extra), tokens)
        if '--insecure-plaintext' not in tls:
            assert g.fingerprint, '%s: no "fingerprint sha256:<64 hex>" line in its log' % g.label
            say('%s: certificate fingerprint %s' % (g.label, g.fingerprint))
        return g

    def agent(self, gateway_port, services, agent_id='edge-1', token=TOKEN, extra=(), tls=None):
        return super().agent(gateway_port, services, agent_id, token, list(tls or []) + list(extra))


tt.Harness = TlsHarness


# ---------------------------------------------------------------------------------------------------- checks

def log_line(proc, words, timeout, since=0):
    """Waits for a line of `proc`'s log (after byte `since`) containing all of `words` (regexes); returns it. The
    process may have exited: a refused agent may stop or keep retrying."""
    m = proc.wait_log(line_rx(*words), timeout, since=since, allow_exit=True)
    say('%s: %s' % (proc.label, m.group(0).strip()))
    return m.group(0)


def assert_not_ready(agent, since=0):
    with open(agent.log_path, 'rb') as f:
        f.seek(since)
        m = re.search(READY_RX, f.read().decode('utf-8', 'replace'))
    assert not m, '%s: a tunnel connection became ready: %r' % (agent.label, m.group(0))


def assert_not_served(port):
    """Nothing accepts on the public port (the gateway opens it only for a registered agent)."""
    try:
        s = socket.create_connection((HOST, port), timeout=1)
    except ConnectionRefusedError:
        return
    s.close()
    raise AssertionError('public port %d accepts connections, but no agent should have registered it' % port)


def expect_refused(agent, pub, agent_words, gateway=None, gateway_words=None, gateway_since=0, timeout=10):
    """The agent gets no tunnel: both logs give the expected reason, no ready line, the public port is not served."""
    log_line(agent, agent_words, timeout)
    if gateway is not None and gateway_words is not None:
        log_line(gateway, gateway_words, 5, since=gateway_since)
    time.sleep(0.3)  # a ready line would come right after the handshake: give it the chance to be (wrongly) there
    assert_not_ready(agent)
    assert_not_served(pub)
    if agent.alive():
        say('%s keeps running (retrying)' % agent.label)
    else:
        say('%s exited with status %s' % (agent.label, agent.p.returncode))
        assert agent.p.returncode >= 0, '%s was killed by signal %d (a crash, not a refusal)' \
            % (agent.label, -agent.p.returncode)
    if gateway is not None:
        assert gateway.alive(), 'the gateway exited (status %s)' % gateway.p.returncode


def assert_tls(agent):
    """The agent's log says its tunnel runs TLS 1.3 (unless it was started with --insecure-plaintext)."""
    if '--insecure-plaintext' not in agent.argv:
        log_line(agent, [r'TLS ?v?1\.3'], 1)


def serves(h, gw, echo, tls, what, agent_id='control'):
    """Control: an agent with `tls` flags registers and a public port works (so a refusal is about its flags)."""
    pub = free_port()
    agent = h.agent(gw.port, [(pub, echo.port)], agent_id=agent_id, tls=tls)
    h.wait_agent_ready(agent)
    assert_tls(agent)
    for i, size in enumerate((1, 100 * KIB, 3 * MIB + 5)):
        round_trip(pub, size=size, seed=i)
    say('%s: round trips ok' % what)
    return agent, pub


def refused(h, gw, echo, tls, words, agent_id='edge-1', gateway_words=None):
    """An agent with `tls` flags, for a fresh public port, is refused (expect_refused: `words` in its log, no tunnel,
    port not served); the gateway stays up and, with `gateway_words`, logs them after the agent started."""
    pub = free_port()
    mark = gw.size()
    agent = h.agent(gw.port, [(pub, echo.port)], agent_id=agent_id, tls=tls)
    expect_refused(agent, pub, words, gateway=gw, gateway_words=gateway_words, gateway_since=mark)
    return agent


# ---------------------------------------------------------------------------------------------------- the relay

class TlsRelay(Relay):
    """A TCP relay for agents' tunnel connections (agent -> relay -> gateway) that frame-parses the agent->gateway
    direction as TLS records (5-byte header: type u8, version u16, length u16). Armed, it damages the next
    application_data record (type 23) of any connection, once:
      'flip'      one byte in the middle of the record is inverted (the AEAD tag check must catch it);
      'truncate'  the header and half the body are forwarded, then the stream to the gateway ends (FIN).
    The gateway->agent direction is copied as is; when the gateway closes, the agent's side is closed too."""

    def __init__(self, target_port):
        self.lock = threading.Lock()
        self.mode = None
        self.damaged = threading.Event()
        self.damaged_conn = None  # (id, the relay's local port towards the gateway)
        self.gateway_closed = {}  # connection id -> time the gateway closed it
        self.next_id = 0
        super().__init__(target_port)

    def arm(self, mode):
        with self.lock:
            self.mode = mode
            self.damaged.clear()
            self.damaged_conn = None

    def on_pair(self, a, g):
        with self.lock:
            self.next_id += 1
            cid = self.next_id
        gport = g.getsockname()[1]
        threading.Thread(target=self._up, args=(a, g, cid, gport), daemon=True).start()
        threading.Thread(target=self._down, args=(g, a, cid), daemon=True).start()

    def _down(self, g, a, cid):
        try:
            for data in chunks(g):
                a.sendall(data)
        except OSError:
            pass
        with self.lock:
            self.gateway_closed[cid] = now()
        for s in (a, g):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _up(self, a, g, cid, gport):
        buf = bytearray()
        try:
            for data in chunks(a):
                buf += data
                while len(buf) >= 5:
                    ctype, _version, length = struct.unpack('>BHH', buf[:5])
                    if len(buf) < 5 + length:
                        break
                    record = bytes(buf[:5 + length])
                    del buf[:5 + length]
                    mode = None
                    if ctype == 23:
                        with self.lock:
                            mode, self.mode = self.mode, None
                            if mode:
                                self.damaged_conn = (cid, gport)
                    if mode == 'flip':
                        i = 5 + length // 2
                        record = record[:i] + bytes([record[i] ^ 0xFF]) + record[i + 1:]
                        say('relay: connection %d (port %d): flipped byte %d of a %d-byte record'
                            % (cid, gport, i, len(record)))
                    elif mode == 'truncate':
                        g.sendall(record[:5 + length // 2])
                        g.shutdown(socket.SHUT_WR)
                        say('relay: connection %d (port %d): sent %d of a %d-byte record, then FIN'
                            % (cid, gport, 5 + length // 2, len(record)))
                        self.damaged.set()
                        return
                    g.sendall(record)
                    if mode:
                        self.damaged.set()
            g.shutdown(socket.SHUT_WR)  # the agent's FIN
        except OSError:
            pass

    def close(self):
        self.ls.close()


def traffic(pub, n=3):
    """Round trips in a thread, to make the agent send records; failures are expected while a connection dies."""
    def run():
        for i in range(n):
            try:
                round_trip(pub, size=64 * KIB, seed=100 + i, timeout=3)
            except (OSError, AssertionError):
                pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


# ---------------------------------------------------------------------------------------------------- scenarios

@scenario(budget_s=55)
def tls_ok_fingerprint(h):
    """A self-signed pair generated in the state directory on the first run (and reused on the next), pinned by the
    agent: data both ways, SHA-256 equal."""
    echo = h.service('echo', free_port())
    gw = h.gateway()
    cert = os.path.join(h.state_dir, 'gateway-cert.pem')
    key = os.path.join(h.state_dir, 'gateway-key.pem')
    assert os.path.isfile(cert) and os.path.isfile(key), 'no gateway-cert.pem / gateway-key.pem in --state-dir'
    mode = stat.S_IMODE(os.stat(key).st_mode)
    assert mode & 0o077 == 0, 'the generated key is readable by others (mode %o)' % mode
    assert gw.fingerprint == certgen.fingerprint(cert), \
        'the gateway prints %s, its certificate is %s' % (gw.fingerprint, certgen.fingerprint(cert))
    pub = free_port()
    agent = h.agent(gw.port, [(pub, echo.port)])
    h.wait_agent_ready(agent)
    assert_tls(agent)
    for i, size in enumerate((1, 16 * KIB, 16 * KIB + 1, 1 * MIB, 20 * MIB + 3)):
        round_trip(pub, size=size, seed=i, timeout=20)
    say('round trips of 1 B .. 20 MiB ok')

    # Second run with the same state directory: the same certificate, not a new one.
    gw.signal(signal.SIGTERM)
    assert gw.wait_exit(10) is not None, 'the gateway did not exit on SIGTERM'
    before = open(cert, 'rb').read()
    gw2 = h.gateway()
    assert gw2.fingerprint == gw.fingerprint, 'a second run generated a new certificate (%s, was %s)' \
        % (gw2.fingerprint, gw.fingerprint)
    assert open(cert, 'rb').read() == before, 'gateway-cert.pem was rewritten on the second run'
    pub2 = free_port()
    agent2 = h.agent(gw2.port, [(pub2, echo.port)], agent_id='edge-2')
    h.wait_agent_ready(agent2)
    round_trip(pub2, size=1 * MIB)
    say('second run reuses the pair; the pinned fingerprint still works')


@scenario(budget_s=55)
def tls_ok_ca(h):
    """The gateway has a CA-signed certificate for localhost / 127.0.0.1; the agent verifies it with --ca."""
    echo = h.service('echo', free_port())
    gw = h.gateway(tls=h.server_flags('server'))
    assert gw.fingerprint == certgen.fingerprint(h.cert('server')), \
        'the gateway prints %s for server.pem, which is %s' % (gw.fingerprint, certgen.fingerprint(h.cert('server')))
    serves(h, gw, echo, ['--ca', h.cert('ca'), '--server-name', 'localhost'], '--ca ca.pem', agent_id='edge-1')


@scenario(budget_s=55)
def tls_wrong_fingerprint(h):
    """The agent pins another certificate's fingerprint: it says fingerprint mismatch; no tunnel, no public port."""
    echo = h.service('echo', free_port())
    gw = h.gateway()
    wrong = certgen.fingerprint(h.cert('server'))
    refused(h, gw, echo, ['--gateway-fingerprint', wrong],
            [r'fingerprint', r'mismatch|does not match|doesn.t match|differ|expected|pinned'])
    serves(h, gw, echo, None, 'the right pin on the same gateway')


@scenario(budget_s=55)
def tls_wrong_ca(h):
    """The agent trusts an unrelated CA, or the OS trust store: it says the certificate is not trusted."""
    echo = h.service('echo', free_port())
    gw = h.gateway(tls=h.server_flags('server'))
    refused(h, gw, echo, ['--ca', h.cert('other-ca'), '--server-name', 'localhost'],
            [r'not trusted|untrusted|no signer|signer|unknown (ca|issuer)|issuer|trust'])
    # `--ca system` loads the OS trust store (a real check: ~140 public roots), none of which signed the test CA.
    refused(h, gw, echo, ['--ca', 'system', '--server-name', 'localhost'], [r'not signed by a trusted CA'],
            agent_id='system-cas')
    serves(h, gw, echo, ['--ca', h.cert('ca'), '--server-name', 'localhost'], 'the right CA on the same gateway')


@scenario(budget_s=55)
def tls_expired(h):
    """The gateway's certificate expired yesterday: refused with --ca, and with a pin of that very certificate."""
    echo = h.service('echo', free_port())
    gw = h.gateway(tls=h.server_flags('expired'))
    refused(h, gw, echo, ['--ca', h.cert('ca'), '--server-name', 'localhost'], [r'expired'])
    refused(h, gw, echo, ['--gateway-fingerprint', certgen.fingerprint(h.cert('expired'))], [r'expired'],
            agent_id='pinned')


@scenario(budget_s=55)
def tls_wrong_name(h):
    """The gateway's certificate is for wrong.example; the agent expects localhost: it says the name does not match."""
    echo = h.service('echo', free_port())
    gw = h.gateway(tls=h.server_flags('wrongname'))
    refused(h, gw, echo, ['--ca', h.cert('ca'), '--server-name', 'localhost'],
            [r'name', r'mismatch|match|wrong\.example|localhost'])
    serves(h, gw, echo, ['--ca', h.cert('ca'), '--server-name', 'wrong.example'], '--server-name wrong.example')


@scenario(budget_s=55)
def tls_plaintext_agent_vs_tls_gateway(h):
    """A plaintext agent at a TLS gateway: the gateway says TLS is required, the agent that the connection closed."""
    echo = h.service('echo', free_port())
    gw = h.gateway()
    refused(h, gw, echo, ['--insecure-plaintext'], [r'closed|lost|reset|requires? TLS|TLS required|expects? TLS'],
            gateway_words=[r'plaintext', r'TLS'])
    serves(h, gw, echo, None, 'a TLS agent on the same gateway')


@scenario(budget_s=55)
def tls_agent_vs_plaintext_gateway(h):
    """A TLS agent at a plaintext gateway: the gateway says it got a TLS ClientHello in plaintext mode; the agent
    logs the failed TLS handshake."""
    echo = h.service('echo', free_port())
    gw = h.gateway(tls=['--insecure-plaintext'])
    refused(h, gw, echo, ['--gateway-fingerprint', certgen.fingerprint(h.cert('server'))],
            [r'TLS|handshake|plaintext', r'closed|lost|reset|plaintext|fail|error|refused'],
            gateway_words=[r'TLS|client ?hello', r'plaintext'])
    serves(h, gw, echo, ['--insecure-plaintext'], 'a plaintext agent on the plaintext gateway')


@scenario(budget_s=55)
def tls_mtls(h):
    """--client-ca: an agent with a client certificate from that CA works; one without a certificate, and one with a
    certificate from another CA, are refused (the gateway says client certificate)."""
    echo = h.service('echo', free_port())
    gw = h.gateway(tls=h.server_flags('server') + ['--client-ca', h.cert('ca')])
    verify = ['--ca', h.cert('ca'), '--server-name', 'localhost']
    _, good_pub = serves(h, gw, echo, verify + h.client_flags('client'), 'client.pem', agent_id='good')

    refused(h, gw, echo, verify, [r'alert|closed|lost|reset|refused|client certificate|certificate.required'],
            agent_id='anonymous', gateway_words=[r'client', r'certificate|cert\b'])
    refused(h, gw, echo, verify + h.client_flags('badclient'),
            [r'alert|closed|lost|reset|refused|client certificate|unknown.ca'], agent_id='foreign',
            gateway_words=[r'certificate|cert\b', r'not trusted|untrusted|signer|verif|unknown|refused|reject'])

    for i in range(3):
        round_trip(good_pub, size=200 * KIB, seed=i)
    say('the agent with a good client certificate keeps working')


@scenario(budget_s=55)
def tls_truncated_and_corrupt(h):
    """A relay between agent and gateway damages one record after the tunnel is up: a flipped byte makes the gateway
    close that connection because the record failed authentication; a record cut in half and then EOF makes it
    close saying truncated. The agent reconnects through the relay each time and the tunnel works again."""
    echo = h.service('echo', free_port())
    gw = h.gateway()
    relay = TlsRelay(gw.port)
    pub = free_port()
    agent = h.agent(relay.port, [(pub, echo.port)], extra=['--reconnect-max-ms', '500'])
    h.wait_agent_ready(agent)
    round_trip(pub, size=1 * MIB)

    for mode, words in (('flip', [r'authenticat|decrypt|bad.?record.?mac|verify mac|integrity|\bMAC\b']),
                        ('truncate', [r'truncat'])):
        gw_mark, agent_mark = gw.size(), agent.size()
        relay.arm(mode)
        t = traffic(pub)
        assert relay.damaged.wait(10), '%s: the agent sent no record to damage within 10 s' % mode
        cid, gport = relay.damaged_conn
        line = log_line(gw, words, 5, since=gw_mark)
        if str(gport) not in line:
            say('(the line does not name the relay port %d of the damaged connection)' % gport)
        deadline = now() + 5
        while cid not in relay.gateway_closed:
            assert now() < deadline, '%s: the gateway did not close the damaged connection within 5 s' % mode
            time.sleep(0.02)
        t.join(15)
        with open(gw.log_path, 'rb') as f:
            f.seek(gw_mark)
            causes = re.findall(line_rx(*words), f.read().decode('utf-8', 'replace'))
        assert len(causes) == 1, '%s: the cause is logged %d times, not once: %r' % (mode, len(causes), causes)
        say('%s: the gateway closed the connection; waiting for the agent to reconnect' % mode)
        m = agent.wait_log(READY_RX, 10, since=agent_mark)  # the damaged connection only: the other stays up
        say('%s: %s' % (agent.label, m.group(0)))
        wait_round_trip(pub, 10, 'after %s' % mode)
        assert gw.alive(), 'the gateway exited (status %s)' % gw.p.returncode
    relay.close()


@scenario(budget_s=55)
def tls_reload(h):
    """SIGHUP: the gateway reads its certificate files again. New agents must pin the new certificate (the old pin is
    refused), a tunnel and a stream open across the reload keep going, and a broken file on a later reload is logged
    while the gateway keeps the certificate it had."""
    echo = h.service('echo', free_port())
    live = os.path.join(h.dir, 'live')
    os.makedirs(live)
    cert, key = os.path.join(live, 'cert.pem'), os.path.join(live, 'key.pem')

    def install(stem):
        shutil.copyfile(h.cert(stem), cert)
        shutil.copyfile(h.key(stem), key)
    install('server')
    old_pin, new_pin = certgen.fingerprint(h.cert('server')), certgen.fingerprint(h.cert('wrongname'))
    gw = h.gateway(tls=['--cert', cert, '--key', key])
    assert gw.fingerprint == old_pin, 'gateway fingerprint %s, expected %s' % (gw.fingerprint, old_pin)
    pub1 = free_port()
    first = h.agent(gw.port, [(pub1, echo.port)], agent_id='first', tls=['--gateway-fingerprint', old_pin])
    h.wait_agent_ready(first)
    rng = random.Random(11)
    before, after = payload(rng, 64 * KIB), payload(rng, 64 * KIB)
    stream = connect(pub1, timeout=10)  # a stream open across the reload: half its bytes before, half after
    stream.sendall(before)
    echoed = recv_exactly(stream, len(before))

    install('wrongname')  # a valid certificate; agents pin it, so its name does not matter
    first_mark, gw_mark = first.size(), gw.size()
    gw.signal(signal.SIGHUP)
    log_line(gw, [r'fingerprint ' + new_pin], 5, since=gw_mark)
    log_line(gw, [r'reload: new tunnel connections get the certificate above'], 5, since=gw_mark)

    stream.sendall(after)
    echoed += recv_exactly(stream, len(after))
    stream.close()
    assert sha(echoed) == sha(before + after), 'the stream open across the reload lost or changed bytes'
    round_trip(pub1, size=256 * KIB, seed=12)
    assert_not_ready(first, since=first_mark)  # its tunnel was not re-established: the reload left it alone

    refused(h, gw, echo, ['--gateway-fingerprint', old_pin], [r'fingerprint'], agent_id='stale')
    serves(h, gw, echo, ['--gateway-fingerprint', new_pin], 'the new pin after the reload', agent_id='fresh')

    with open(cert, 'w') as f:
        f.write('-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n')
    gw_mark = gw.size()
    gw.signal(signal.SIGHUP)
    log_line(gw, [r'reload failed', r'previous TLS certificate'], 5, since=gw_mark)
    assert gw.alive(), 'the gateway exited on a broken certificate file (status %s)' % gw.p.returncode
    serves(h, gw, echo, ['--gateway-fingerprint', new_pin], 'the kept certificate after a failed reload',
           agent_id='after-failure')
    round_trip(pub1, size=64 * KIB, seed=13)


@scenario(budget_s=60)
def tls_handshake_flood(h):
    """700 connections from 30 addresses that never finish the TLS handshake: at most 256 per core are held (the
    least advanced are evicted for newcomers, counted in a log line at most once a second), memory stays bounded,
    and a real agent gets in while the flood is still there."""
    echo = h.service('echo', free_port())
    gw = h.gateway(extra=['--dead-peer-ms', '4000', '--heartbeat-ms', '1000'])
    rss_before = gw.rss_kib()
    socks = []
    for i in range(700):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(('127.0.0.%d' % (10 + i % 30), 0))
        s.settimeout(5)
        s.connect((HOST, gw.port))
        s.sendall(b'\x16\x03\x01\x00\x10')  # a ClientHello record header, and nothing more
        socks.append(s)
    m = gw.wait_log(r'tunnel port: closed (\d+) connection\(s\) .*, evicted (\d+) \((\d+) handshakes in progress on '
                    r'this core\)', 10)
    say('gateway: %s' % m.group(0).strip())
    assert int(m.group(3)) == 256, 'cap is %s, not 256' % m.group(3)
    assert int(m.group(2)) > 0, 'nothing was evicted'
    rss = gw.rss_kib()
    say('gateway RSS %d KiB before, %d KiB with the flood' % (rss_before, rss))
    assert rss - rss_before < 64 * 1024, 'the flood grew the gateway by %d KiB' % (rss - rss_before)
    pub = free_port()
    agent = h.agent(gw.port, [(pub, echo.port)])
    h.wait_agent_ready(agent, timeout=15)
    round_trip(pub, size=256 * KIB, seed=7)
    for s in socks:
        s.close()


@scenario(budget_s=110)
def tls_1gib(h):
    """test_tunnel's big_transfer through a TLS tunnel: 1 GiB each way at once through one stream, SHA-256 equal."""
    tt.big_transfer(h)
    for agent in (p for p in h.procs if p.label.startswith('agent')):
        assert_tls(agent)


if __name__ == '__main__':
    sys.exit(tt.main(sys.argv[1:]))
