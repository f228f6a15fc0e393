#!/usr/bin/env python3
"""What an operator installs and runs: `meson install` into a scratch DESTDIR, the systemd units, the man pages,
scripts/tune-host.sh, and the programs taking their tokens from a file and from the environment.

Usage: test_dist.py SCENARIO          run one scenario (meson registers each as its own test)
       test_dist.py --list            list the scenarios

Environment, besides itest.py's: RINGTUN_BUILD_DIR (the meson build directory to install from), RINGTUN_SOURCE_ROOT,
RINGTUN_MESON (the meson command). Scenarios needing a tool the host lacks (systemd-analyze, groff) exit 77 (skip).
"""
import json
import os
import re
import shutil
import subprocess
import sys

if sys.version_info < (3, 9):
    print('python >= 3.9 needed; skipping')
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tunnel as tt  # noqa: E402
from itest import HOST, KIB, Proc, free_port, round_trip, say  # noqa: E402

scenario = tt.scenario  # the scenario registry and the runner (Skip -> exit 77) are test_tunnel's
Skip = tt.Skip


def run(argv, timeout=60, env=None, check=True):
    """Runs a command; returns (status, stdout + stderr as text)."""
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, env=env)
    out = p.stdout.decode('utf-8', 'replace')
    if check and p.returncode != 0:
        raise AssertionError('%s: exit status %d\n%s' % (' '.join(argv), p.returncode, out))
    return p.returncode, out


def need(tool):
    path = shutil.which(tool)
    if not path:
        raise Skip('%s not found (Debian: see RINGTUN_BUILD_PACKAGES in scripts/lib.sh)' % tool)
    return path


EXPECTED = [
    'bin/ringtun-gateway',
    'bin/ringtun-agent',
    'lib/systemd/system/ringtun-gateway.service',
    'lib/systemd/system/ringtun-agent@.service',
    'share/man/man1/ringtun-gateway.1',
    'share/man/man1/ringtun-agent.1',
    'share/doc/ringtun/LICENSE',
    'share/doc/ringtun/examples/gateway.json',
    'share/doc/ringtun/examples/agent.json',
]


def install(h):
    """meson install --strip into a fresh DESTDIR under the scenario's directory; returns (destdir, prefix)."""
    build = os.environ.get('RINGTUN_BUILD_DIR', '')
    meson = os.environ.get('RINGTUN_MESON') or shutil.which('meson')
    if not build or not meson:
        raise AssertionError('RINGTUN_BUILD_DIR and meson are needed (run through meson test)')
    destdir = os.path.join(h.dir, 'destdir')
    shutil.rmtree(destdir, ignore_errors=True)
    run([meson, 'install', '-C', build, '--destdir', destdir, '--no-rebuild', '--strip', '--skip-subprojects',
         '--quiet'], timeout=120)
    p = subprocess.run([meson, 'introspect', build, '--buildoptions'], stdout=subprocess.PIPE, timeout=60, check=True)
    prefix = next(o['value'] for o in json.loads(p.stdout) if o['name'] == 'prefix')
    return destdir, prefix


def installed_files(destdir, prefix):
    root = destdir + prefix
    found = set()
    for d, _, files in os.walk(destdir):
        for f in files:
            found.add(os.path.relpath(os.path.join(d, f), root))
    return root, found


# ---------------------------------------------------------------------------------------------------- scenarios

@scenario(budget_s=100)
def dist_install(h):
    """meson install --strip puts exactly the expected files in place; binaries stripped and runnable; the examples
    and LICENSE as in the source tree; the units name the installed binaries."""
    destdir, prefix = install(h)
    root, found = installed_files(destdir, prefix)
    missing = sorted(set(EXPECTED) - found)
    extra = sorted(found - set(EXPECTED))
    assert not missing, 'not installed: %s' % missing
    assert not extra, 'installed but not expected (add them to EXPECTED if meant): %s' % extra
    src = os.environ['RINGTUN_SOURCE_ROOT']
    for installed, source in (('share/doc/ringtun/LICENSE', 'LICENSE'),
                              ('share/doc/ringtun/examples/gateway.json', 'dist/examples/gateway.json'),
                              ('share/doc/ringtun/examples/agent.json', 'dist/examples/agent.json')):
        with open(os.path.join(root, installed), 'rb') as a, open(os.path.join(src, source), 'rb') as b:
            assert a.read() == b.read(), '%s differs from %s' % (installed, source)
    with open(os.path.join(root, 'share/doc/ringtun/LICENSE')) as f:
        assert 'Apache License' in f.read(1000), 'LICENSE is not the Apache License'
    for program in ('ringtun-gateway', 'ringtun-agent'):
        binary = os.path.join(root, 'bin', program)
        _, out = run([binary, '--version'])
        assert out.startswith(program + ' '), out
        if shutil.which('readelf'):
            _, sections = run(['readelf', '-S', '-W', binary])
            assert '.symtab' not in sections and '.debug_info' not in sections, '%s is not stripped' % program
    for unit, program in (('ringtun-gateway.service', 'ringtun-gateway'), ('ringtun-agent@.service', 'ringtun-agent')):
        with open(os.path.join(root, 'lib/systemd/system', unit)) as f:
            text = f.read()
        assert '@bindir@' not in text, unit + ': @bindir@ not substituted'
        assert re.search(r'^ExecStart=%s/bin/%s ' % (re.escape(prefix), program), text, re.M), \
            unit + ': ExecStart does not name the installed binary'
    say('installed %d files under %s' % (len(found), root))


@scenario(budget_s=100)
def dist_units(h):
    """systemd-analyze verify accepts both units (against the installed binaries and man pages) and says nothing;
    the same check on a unit with a misspelt directive does complain (so this test can fail)."""
    analyze = need('systemd-analyze')
    destdir, prefix = install(h)
    root = destdir + prefix
    units = os.path.join(h.dir, 'units')
    os.makedirs(units, exist_ok=True)
    # ExecStart must name an executable file: point it at the DESTDIR copy. The agent is a template: verify an
    # instance of it.
    for unit, name in (('ringtun-gateway.service', 'ringtun-gateway.service'),
                       ('ringtun-agent@.service', 'ringtun-agent@edge.service')):
        with open(os.path.join(root, 'lib/systemd/system', unit)) as f:
            text = f.read().replace('ExecStart=%s/bin/' % prefix, 'ExecStart=%s/bin/' % root)
        with open(os.path.join(units, name), 'w') as f:
            f.write(text)
        with open(os.path.join(units, 'typo-' + name), 'w') as f:
            f.write(text.replace('\nNoNewPrivileges=', '\nNoNewPrivilege='))
    env = dict(os.environ, MANPATH=os.path.join(root, 'share/man'), SYSTEMD_PAGER='', SYSTEMD_LOG_COLOR='0')
    for name in ('ringtun-gateway.service', 'ringtun-agent@edge.service'):
        status, out = run_in(units, [analyze, 'verify', name], env)
        assert status == 0 and out.strip() == '', 'systemd-analyze verify %s: status %d\n%s' % (name, status, out)
        status, out = run_in(units, [analyze, 'verify', 'typo-' + name], env)
        assert 'NoNewPrivilege' in out, 'systemd-analyze verify did not notice a misspelt key:\n' + out
    # The filter must allow io_uring explicitly: systemd's @system-service set does not include it.
    _, groups = run([analyze, 'syscall-filter', '@system-service'])
    with open(os.path.join(units, 'ringtun-gateway.service')) as f:
        text = f.read()
    if 'io_uring_setup' not in groups:
        assert re.search(r'^SystemCallFilter=.*io_uring_setup', text, re.M), 'io_uring is not allowed'
    say('both units verify cleanly')


def run_in(cwd, argv, env):
    p = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60, env=env)
    return p.returncode, p.stdout.decode('utf-8', 'replace')


@scenario(budget_s=100)
def dist_man(h):
    """The installed man pages render with groff -man -ww without a warning, and list the secret-file flags."""
    groff = need('groff')
    destdir, prefix = install(h)
    env = dict(os.environ, LC_ALL='C.UTF-8')
    for program in ('ringtun-gateway', 'ringtun-agent'):
        page = os.path.join(destdir + prefix, 'share/man/man1', program + '.1')
        p = subprocess.run([groff, '-man', '-Tutf8', '-ww', page], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30, env=env)
        warnings = p.stderr.decode('utf-8', 'replace')
        assert p.returncode == 0 and warnings == '', '%s: groff status %d:\n%s' % (program, p.returncode, warnings)
        text = re.sub(r'.\x08', '', p.stdout.decode('utf-8', 'replace'))  # overstrike bold
        text = text.replace('\u2010', '-').replace('\u2212', '-')
        for needle in ('--token-file', 'RINGTUN_TOKEN', 'OPTIONS', 'ENVIRONMENT', 'SIGNALS', '--threads'):
            assert needle in text, '%s: %r not in the rendered page' % (program, needle)
    say('both pages render without warnings')


@scenario(budget_s=30)
def dist_tune_host(h):
    """tune-host.sh: the dry run prints every sysctl and changes nothing; bad arguments exit 2 with a message."""
    script = os.path.join(os.environ['RINGTUN_SOURCE_ROOT'], 'scripts/tune-host.sh')
    sysctls = ['net.core.somaxconn', 'net.ipv4.tcp_max_syn_backlog', 'net.ipv4.ip_local_port_range',
               'net.core.rmem_max', 'net.core.wmem_max', 'net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem',
               'net.core.netdev_max_backlog', 'fs.nr_open', 'fs.file-max']

    def read_all():
        values = {}
        for name in sysctls:
            try:
                with open('/proc/sys/' + name.replace('.', '/')) as f:
                    values[name] = f.read()
            except OSError:
                values[name] = None
        return values
    before = read_all()
    status, out = run(['bash', script, '--iface', 'lo', '--cpus', '0'], check=False)
    assert status == 0, 'dry run: status %d\n%s' % (status, out)
    for name in sysctls:
        assert re.search(r'^  %s\s' % re.escape(name), out, re.M), 'dry run does not show %s:\n%s' % (name, out)
    assert 'nothing was touched' in out, out
    assert 'loopback' in out, 'lo: no word about loopback having no IRQs:\n' + out
    assert 'io_uring' in out and 'ulimit -l' in out, out
    assert read_all() == before, 'the dry run changed a sysctl'
    for argv, message in ((['--bogus'], "unknown argument '--bogus'"),
                          (['--cpus', 'x'], "--cpus: 'x' is not a CPU list"),
                          (['--cpus'], '--cpus: missing value'),
                          (['--iface', 'no-such-nic0'], "no interface 'no-such-nic0'"),
                          (['--apply', '--restore', '/nonexistent'], 'cannot be combined')):
        status, out = run(['bash', script] + argv, check=False)
        assert status == 2 and message in out, '%s: status %d, expected 2 and %r:\n%s' % (argv, status, message, out)
    status, out = run(['bash', script, '--help'], check=False)
    assert status == 0 and '--apply' in out and '--restore' in out, out
    if shutil.which('shellcheck'):
        run(['shellcheck', script])
    say('dry run and argument errors as expected')


@scenario(budget_s=40)
def dist_token_file(h):
    """A gateway reading its tokens from --token-file (comments, two tokens), an agent with RINGTUN_TOKEN and no
    --token: they connect and a TCP service passes bytes (SHA-256). --token logs the ps warning; the file does not."""
    tokens = os.path.join(h.dir, 'tokens')
    with open(tokens, 'w') as f:
        f.write('# agents of team A\nfirst-token\n\nsecond-token\n')
    os.chmod(tokens, 0o600)
    echo = h.service('echo', free_port())
    gw = h.gateway(tokens=(), extra=('--token-file', tokens))
    assert 'visible' not in gw.text(), 'a gateway without --token warns about it:\n' + gw.text()
    pub = free_port()
    argv = [h.agent_bin, '--gateway', '%s:%d' % (HOST, gw.port), '--agent-id', 'edge-env', '--threads', '2',
            '--expose', 'tcp:svc@%d=%s:%d' % (pub, HOST, echo.port), '--gateway-fingerprint', gw.fingerprint]
    os.environ['RINGTUN_TOKEN'] = 'second-token'  # inherited by the agent only: the gateway runs already
    try:
        agent = Proc(h, 'agent-env', argv)
    finally:
        del os.environ['RINGTUN_TOKEN']
    h.wait_agent_ready(agent)
    for seed in range(3):
        round_trip(pub, size=256 * KIB, seed=seed)
    assert 'visible' not in agent.text(), 'an agent without --token warns about it'
    # The agent's --token-file, and the warning for --token on the gateway.
    token_file = os.path.join(h.dir, 'agent-token')
    with open(token_file, 'w') as f:
        f.write('first-token\n')
    pub2 = free_port()
    argv2 = [h.agent_bin, '--gateway', '%s:%d' % (HOST, gw.port), '--agent-id', 'edge-file', '--threads', '1',
             '--token-file', token_file, '--expose', 'tcp:svc2@%d=%s:%d' % (pub2, HOST, echo.port),
             '--gateway-fingerprint', gw.fingerprint]
    agent2 = Proc(h, 'agent-file', argv2)
    h.wait_agent_ready(agent2)
    round_trip(pub2, size=256 * KIB, seed=7)
    gw2 = h.gateway()  # the harness passes --token
    gw2.wait_log(r'--token: the secret is visible', 5)
    # A wrong path: exit 2 with the file named.
    status, out = run([h.gateway_bin, '--listen', '%s:0' % HOST, '--token-file', '/nonexistent/tokens'], check=False)
    assert status == 2 and '--token-file: /nonexistent/tokens: cannot open' in out, out
    say('token file and RINGTUN_TOKEN work end to end')


if __name__ == '__main__':
    sys.exit(tt.main(sys.argv[1:]))
