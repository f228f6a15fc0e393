#!/usr/bin/python3
"""Loads the dashboard page in Debian's headless Chromium and returns what it rendered; checks it against
fake_admin.py.

  dashboard_check.py --self-test                  start fake_admin.py (port 0) and check the page; exit 0 pass,
                                                   1 fail, 77 skip (only when Chromium cannot be installed)
  dashboard_check.py dump URL [--wait-ms N]       print the DOM after N ms of (virtual) time
  dashboard_check.py screenshot URL PATH [--size 1400x1000] [--wait-ms N]
  dashboard_check.py docs-screenshot PATH         the picture of docs/dashboard.md, from the fake with realistic names

As a library: dump_dom(url, wait_ms) -> str, screenshot(url, path, size), find_chromium(). Chromium runs with
--virtual-time-budget: the page's timers run on virtual time (1 s polls take no wall time), network waits do not
advance it; every run is bounded by a subprocess timeout and gets its own temporary profile. Stdlib only.
"""
import argparse
import html.parser
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, 'fake_admin.py')
PAGE = os.path.join(HERE, '..', '..', 'src', 'ops', 'dashboard', 'index.html')
PYTHON = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') else sys.executable
INJECTION = '<img src=x onerror=alert(1)>'
SKIP = 77


# ---------------------------------------------------------------------------------------------------- chromium

def find_chromium(install=True):
    """The Chromium binary, installing Debian's package (as root) if it is missing; None if there is none."""
    for name in ('chromium', 'chromium-browser'):
        path = shutil.which(name)
        if path:
            return path
    if not install or os.geteuid() != 0 or not shutil.which('apt-get'):
        return None
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    for cmd in (['apt-get', 'update'], ['apt-get', 'install', '-y', 'chromium']):
        try:
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900,
                           check=True)
        except (subprocess.SubprocessError, OSError):
            return None
    return shutil.which('chromium')


def _run_chromium(args, wait_ms, timeout_s=None):
    chromium = find_chromium()
    if not chromium:
        raise RuntimeError('chromium is not installed and could not be installed')
    profile = tempfile.mkdtemp(prefix='dashboard-chromium-')
    cmd = [chromium, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-extensions',
           '--user-data-dir=' + profile, '--virtual-time-budget=%d' % wait_ms] + args
    # Virtual time is paused while requests are pending, so wall time can exceed wait_ms; start-up takes a few s.
    timeout_s = timeout_s or 30 + 3 * wait_ms / 1000
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise RuntimeError('chromium did not finish within %.0f s (a JavaScript dialog, e.g. an injected alert(), '
                           'blocks headless Chromium): %s' % (timeout_s, ' '.join(cmd)))
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError('chromium exited %d: %s' % (proc.returncode, err.decode(errors='replace')[-2000:]))
    return out.decode('utf-8', errors='replace')


def dump_dom(url, wait_ms=3000):
    """The page's DOM, serialized, after wait_ms of virtual time."""
    dom = _run_chromium(['--dump-dom', url], wait_ms)
    if not dom.strip():
        raise RuntimeError('chromium rendered nothing from %s (is it reachable?)' % url)
    return dom


def screenshot(url, path, size=(1400, 1000), wait_ms=3000):
    """A PNG of the page's first size[0] x size[1] pixels after wait_ms of virtual time."""
    path = os.path.abspath(path)
    if os.path.exists(path):
        os.unlink(path)
    _run_chromium(['--hide-scrollbars', '--window-size=%d,%d' % tuple(size), '--screenshot=' + path, url], wait_ms)
    if not os.path.exists(path):
        raise RuntimeError('chromium wrote no screenshot to ' + path)
    return path


# ---------------------------------------------------------------------------------------------------- the DOM

class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children = tag, dict(attrs), parent, []

    def text(self):
        return ''.join(c if isinstance(c, str) else c.text() for c in self.children)

    def walk(self):
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.walk()

    def find(self, pred):
        return [n for n in self.walk() if pred(n)]

    def by_id(self, ident):
        found = self.find(lambda n: n.attrs.get('id') == ident)
        return found[0] if found else None

    def classes(self):
        return (self.attrs.get('class') or '').split()


class _TreeBuilder(html.parser.HTMLParser):
    VOID = {'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr'}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node('#root', {}, None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        if tag not in self.VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse(dom):
    b = _TreeBuilder()
    b.feed(dom)
    b.close()
    return b.root


def service_rows(root):
    """{service name: {'in': bytes, 'out': bytes, 'text': row text}} for the rows of #services."""
    body = root.by_id('services')
    rows = {}
    for tr in body.find(lambda n: n.tag == 'tr' and 'data-service' in n.attrs) if body else []:
        cells = {c: tr.find(lambda n, c=c: c in n.classes()) for c in ('bytes-in', 'bytes-out')}
        rows[tr.attrs['data-service']] = {
            'in': int(cells['bytes-in'][0].attrs['data-bytes']) if cells['bytes-in'] else None,
            'out': int(cells['bytes-out'][0].attrs['data-bytes']) if cells['bytes-out'] else None,
            'text': tr.text()}
    return rows


def agent_ids(root):
    body = root.by_id('agents')
    return [tr.attrs['data-agent'] for tr in body.find(lambda n: n.tag == 'tr' and 'data-agent' in n.attrs)] \
        if body else []


def visible_text(root, ident):
    """The text of element #ident, or None when it (or an ancestor) is hidden."""
    node = root.by_id(ident)
    n = node
    while n is not None:
        if 'hidden' in n.attrs:
            return None
        n = n.parent
    return node.text() if node is not None else None


# ---------------------------------------------------------------------------------------------------- fake server

class FakeAdmin:
    """fake_admin.py on a free port, as a child process in its own group; a context manager."""

    def __init__(self, *args):
        self.args = list(args)
        self.proc = None
        self.url = None

    def __enter__(self):
        self.proc = subprocess.Popen([PYTHON, FAKE, '--port', '0'] + self.args, stdout=subprocess.PIPE,
                                     start_new_session=True, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r'(http://\S+)', line)
        if not m:
            self.__exit__()
            raise RuntimeError('fake_admin.py did not start: %r' % line)
        self.url = m.group(1)
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait(timeout=10)
            self.proc.stdout.close()

    def post(self, path, body):
        req = urllib.request.Request(self.url + path.lstrip('/'), data=body.encode(), method='POST')
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())


# ---------------------------------------------------------------------------------------------------- self-test

class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = []

    def check(self, ok, what, detail=''):
        if ok:
            self.passed += 1
            print('  ok   ' + what)
        else:
            self.failed.append(what)
            print('  FAIL ' + what + (': ' + detail if detail else ''))
        return ok


def check_page_file(c):
    print('the page file')
    page = open(PAGE, 'rb').read()
    c.check(len(page) < 30 * 1024, 'index.html is under 30 KiB', '%d bytes' % len(page))
    text = page.decode()
    c.check(not re.search(r'https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\(', text, re.I),
            'index.html refers to nothing outside itself (no URL, @import or url())')
    c.check(not re.search(r"fetch\(\s*['\"`]/", text), 'index.html fetches relative paths only')


def check_gateway(c):
    print('gateway, no token, 13 services')
    with FakeAdmin('--role', 'gateway') as fake:
        dom1 = dump_dom(fake.url, 4000)
        r1 = parse(dom1)
        c.check(visible_text(r1, 'role') == 'gateway', '#role says gateway', repr(visible_text(r1, 'role')))
        ids = agent_ids(r1)
        c.check('edge-fra-1' in ids and len(ids) == 4, 'the 4 agents are rows of #agents', repr(ids))
        rows1 = service_rows(r1)
        c.check('grafana' in rows1 and len(rows1) == 13, '#services has the 13 services', repr(sorted(rows1)))
        c.check(rows1.get('grafana', {}).get('in') is not None, 'a services row has a bytes-in data-bytes value')
        c.check('/s' in rows1.get('grafana', {}).get('text', ''), 'a rate (bytes/s) is shown after a few polls',
                rows1.get('grafana', {}).get('text', ''))
        c.check(len(r1.find(lambda n: n.tag == 'polyline')) >= 2 * 13, 'every service row has its sparkline')
        m = re.fullmatch(r'cells (\d+)/(\d+)', r1.by_id('services').attrs.get('data-patch', ''))
        c.check(m and 0 < int(m.group(1)) < int(m.group(2)), 'later polls replace only the cells that changed',
                repr(r1.by_id('services').attrs.get('data-patch')))
        c.check(visible_text(r1, 'error-banner') is None, '#error-banner is hidden while the endpoint answers')
        refusals = r1.by_id('refusals')
        c.check(refusals is not None and len(refusals.find(lambda n: n.tag == 'tr')) >= 5, '#refusals has rows')
        # The injection name: a row exists for it, its text is escaped, and no <img> element came out of it.
        c.check(INJECTION in rows1, 'the injection-named service is a row, its name intact as data')
        c.check('&lt;img src=x onerror=alert(1)&gt;' in dom1, 'the injection name is rendered as text (&lt;img)')
        imgs = r1.find(lambda n: n.tag == 'img')
        c.check(not imgs, 'no <img> element in the DOM', repr([n.attrs for n in imgs]))
        time.sleep(2)
        r2 = parse(dump_dom(fake.url, 2000))
        rows2 = service_rows(r2)
        a, b = rows1.get('grafana', {}).get('in'), rows2.get('grafana', {}).get('in')
        c.check(a is not None and b is not None and b > a, 'grafana bytes_in grew between two dumps',
                '%r then %r' % (a, b))


def check_token(c):
    print('gateway with --token')
    with FakeAdmin('--token', 's3cret') as fake:
        r = parse(dump_dom(fake.url, 2000))
        msg = visible_text(r, 'auth') or ''
        c.check('needs its admin token' in msg and '/#token=' in msg, 'without #token: the 401 message', repr(msg))
        c.check(not service_rows(r) and visible_text(r, 'content') is None, 'without #token: no data shown')
        r = parse(dump_dom(fake.url + '#token=wrong', 2000))
        c.check('refused' in (visible_text(r, 'auth') or ''), 'a wrong #token: told it was refused')
        r = parse(dump_dom(fake.url + '#token=s3cret', 3000))
        c.check(visible_text(r, 'auth') is None and 'edge-fra-1' in agent_ids(r) and len(service_rows(r)) == 13,
                'with #token=s3cret: agents and services shown', repr(agent_ids(r)))


def check_agent_role(c):
    print('agent role')
    with FakeAdmin('--role', 'agent', '--services', '8') as fake:
        r = parse(dump_dom(fake.url, 3000))
        rows = service_rows(r)
        c.check(visible_text(r, 'role') == 'agent', '#role says agent')
        c.check(visible_text(r, 'agents-section') is None and visible_text(r, 'refusals-section') is None,
                'no agents or refusals section on an agent')
        c.check(len(rows) == 8 and 'serving' in rows.get('grafana', {}).get('text', ''),
                'the agent services show their state', repr({k: v['text'][:60] for k, v in rows.items()}))
        c.check(any('port_taken' in v['text'] for v in rows.values()), 'a refused service shows its message')


def check_many_services(c):
    print('10,000 services, under a path prefix')
    with FakeAdmin('--services', '10000') as fake:
        r = parse(dump_dom(fake.url + 'some/prefix/', 3000))
        rows = service_rows(r)
        c.check(len(rows) == 100, 'exactly 100 service rows in the DOM', str(len(rows)))
        info = visible_text(r, 'page-info')
        c.check(info == '1-100 of 10,000', 'paging says 1-100 of 10,000', repr(info))
        c.check(r.by_id('prev').attrs.get('disabled') is not None and r.by_id('next').attrs.get('disabled') is None,
                'prev is disabled, next is enabled on the first page')
        r = parse(dump_dom(fake.url + '#filter=svc-0999', 3000))
        rows = service_rows(r)
        info = visible_text(r, 'page-info') or ''
        c.check(rows and all('svc-0999' in k for k in rows) and info == '1-%d of %d' % (len(rows), len(rows)),
                'a filter from the URL is applied by the server', '%r %r' % (sorted(rows)[:3], info))
        r = parse(dump_dom(fake.url + '#filter=no-such-thing', 2000))
        c.check(not service_rows(r) and visible_text(r, 'page-info') == '0 of 0' and
                'no service matches' in (visible_text(r, 'services') or ''), 'a filter matching nothing says so')


def check_outage(c):
    print('the endpoint stops answering')
    with FakeAdmin() as fake:
        fake.post('/_fake/outage', 'on')
        r = parse(dump_dom(fake.url, 3000))
        banner = visible_text(r, 'error-banner') or ''
        c.check('stopped answering' in banner, '#error-banner shows', repr(banner))


def self_test():
    if not find_chromium():
        print('SKIP: chromium is not installed and could not be installed (apt-get install -y chromium)')
        return SKIP
    c = Checks()
    t0 = time.monotonic()
    for section in (check_page_file, check_gateway, check_token, check_agent_role, check_many_services,
                    check_outage):
        try:
            section(c)
        except (RuntimeError, OSError, ValueError) as e:
            c.check(False, section.__name__, str(e))
    took = time.monotonic() - t0
    if c.failed:
        print('FAIL: %d of %d checks failed (%.0f s): %s' % (len(c.failed), c.passed + len(c.failed), took,
                                                            '; '.join(c.failed)))
        return 1
    print('PASS: all %d checks (%.0f s)' % (c.passed, took))
    return 0


def docs_screenshot(path):
    with FakeAdmin('--no-injection', '--agents', '4', '--services', '12') as fake:
        return screenshot(fake.url, path, (1400, 1060), wait_ms=62000)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--self-test', action='store_true')
    sub = p.add_subparsers(dest='cmd')
    d = sub.add_parser('dump')
    d.add_argument('url')
    d.add_argument('--wait-ms', type=int, default=3000)
    s = sub.add_parser('screenshot')
    s.add_argument('url')
    s.add_argument('path')
    s.add_argument('--size', default='1400x1000')
    s.add_argument('--wait-ms', type=int, default=3000)
    ds = sub.add_parser('docs-screenshot')
    ds.add_argument('path')
    args = p.parse_args(argv)
    try:
        if args.self_test:
            return self_test()
        if args.cmd == 'dump':
            sys.stdout.write(dump_dom(args.url, args.wait_ms))
        elif args.cmd == 'screenshot':
            w, h = (int(x) for x in args.size.lower().split('x'))
            print(screenshot(args.url, args.path, (w, h), args.wait_ms))
        elif args.cmd == 'docs-screenshot':
            print(docs_screenshot(args.path))
        else:
            p.print_help()
            return 2
    except RuntimeError as e:
        print('FAIL: %s' % e)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
