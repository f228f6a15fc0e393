"""The systems perf/run_loopback.sh compares, each with a small start function.

Every system relays three public ports (echo, sink, http) to the local services; all of them listen on 127.0.0.1
only, with encryption and compression off and TCP_NODELAY on. A start function writes its configuration into a
temporary directory, starts the server side and the client side, and returns a Running whose `ports` map each
service to the port a load client should use and whose `pids` are the processes to measure (RSS, CPU).

direct    no relay: the services themselves (the reference)
ringtun   ringtun-gateway + ringtun-agent from the release build (--threads: RINGTUN_THREADS, default CPUs), with
          --insecure-plaintext: like the peers below, which run unencrypted
ringtun-1t  the same with --threads 1
ringtun-a1  the gateway with RINGTUN_THREADS loops, the agent with one (on a box it shares with the services)
ringtun-tls  ringtun with TLS 1.3 (its default; pinned self-signed certificate), wolfSSL as the release build has it
          (bundled with AES-NI where the CPU has it)
ringtun-tls-syswolf  the same built against Debian's wolfSSL (no AES-NI; RINGTUN_SYSWOLF_BUILD, default
          build-release-syswolf)
ringtun-ref  ringtun (plaintext, like `ringtun`) from another build, RINGTUN_REF_BUILD: a release build of an earlier
          revision, for a before/after comparison in one run (skipped when unset)
ringtun-tls-ref  the same with TLS, like `ringtun-tls`
haproxy2  two haproxy relays in a row (TCP mode): the same three TCP hops as a tunnel, no framing
rathole   rathole --server + rathole --client (RATHOLE_BIN or PATH)
frp       frps + frpc (FRPS_BIN / FRPC_BIN or PATH), tcp_mux on (frp's default); TOML for frp >= 0.52, INI before
ssh-R     OpenSSH remote forwarding, `ssh -N -R port:127.0.0.1:service` to an sshd of its own on loopback (SSHD_BIN
          or /usr/sbin/sshd, Debian's openssh-server; ssh from openssh-client), cipher aes128-gcm@openssh.com (the
          AES-128-GCM of ringtun-tls), compression off; the sshd session process that relays is measured with the
          listener and the client. Encrypted: compare it with ringtun-tls

A peer that is not installed is reported and skipped, never faked.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "scripts"))
from loopback_util import free_port, wait_for  # noqa: E402,F401

TOKEN = "ringtun-bench-token"
SERVICES = ("echo", "sink", "http")


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def start_after_listen(server, port, client_argv, workdir, env=None):
    """Starts the client side once the server side accepts on `port` (clients that give up on a refused first
    connection, like frpc with login_fail_exit, would otherwise race the server)."""
    try:
        wait_for(lambda: server.alive() and port_open(port), 10, f"{server.name} to listen")
        return Process(client_argv[0], client_argv[1:], workdir, env)
    except Exception:
        server.stop()
        raise


def echo_works(port):
    """One verified round trip through `port` (the relay is up end to end)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
            c.sendall(b"ringtun-probe")
            got = b""
            while len(got) < 13:
                chunk = c.recv(64)
                if not chunk:
                    return False
                got += chunk
            return got == b"ringtun-probe"
    except OSError:
        return False


class Process:
    def __init__(self, name, argv, workdir, env=None):
        self.name = name
        self.log_path = os.path.join(workdir, name + ".log")
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=workdir, env=env)

    @property
    def pid(self):
        return self.proc.pid

    def text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


class Running:
    def __init__(self, name, ports, processes=(), version=""):
        self.name = name
        self.ports = ports            # service -> public port
        self.processes = list(processes)
        self.version = version

    @property
    def pids(self):
        return [p.pid for p in self.processes]

    def check_alive(self):
        dead = [p.name for p in self.processes if not p.alive()]
        if dead:
            raise RuntimeError(f"{self.name}: {', '.join(dead)} exited (logs in {os.path.dirname(self.processes[0].log_path)})")

    def stop(self):
        for p in reversed(self.processes):
            p.stop()


def _ready(running, timeout=15):
    try:
        wait_for(lambda: running.check_alive() or echo_works(running.ports["echo"]), timeout,
                 f"{running.name} to relay the echo service")
    except Exception:
        running.stop()
        raise
    return running


def _version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5)
        text = [l.strip() for l in (out.stdout or out.stderr).splitlines() if l.strip()]
        build = [l.split(":", 1)[1].strip() for l in text if l.startswith("Build Version:")]  # rathole's vergen block
        if build:
            return f"{text[0]} {build[0]}"
        return text[0] if text else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


# ---- direct ----

def start_direct(local, workdir, cfg):
    return Running("direct", dict(local), version="")


# ---- ringtun ----

def _ringtun_in(build, name, hint=""):
    gateway = os.path.join(build, "src/gateway/ringtun-gateway")
    agent = os.path.join(build, "src/edge-agent/ringtun-agent")
    if os.access(gateway, os.X_OK) and os.access(agent, os.X_OK):
        return {"gateway": gateway, "agent": agent}, None
    return None, f"{name}: not built in {build}{hint}"


def find_ringtun(cfg):
    return _ringtun_in(cfg["ringtun_build"], "ringtun")


def find_ringtun_syswolf(cfg):
    build = cfg["ringtun_syswolf_build"]
    return _ringtun_in(build, "ringtun-tls-syswolf", f" (meson setup {build} -Dwolfssl=system ...)")


def find_ringtun_ref(cfg):
    build = os.environ.get("RINGTUN_REF_BUILD")
    if not build:
        return None, "ringtun-ref: RINGTUN_REF_BUILD is not set (a release build of the revision to compare with)"
    return _ringtun_in(os.path.abspath(build), "ringtun-ref")


def _cert_fingerprint(path):
    """sha256:<hex> of the first certificate in a PEM file, as the gateway logs it."""
    import base64
    import hashlib
    text = open(path).read()
    body = text.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return "sha256:" + hashlib.sha256(base64.b64decode("".join(body.split()))).hexdigest()


def start_ringtun(local, workdir, cfg, name="ringtun", threads=None, tls=False, gateway_extra=(), agent_extra=(),
                  agent_threads=None):
    bins = cfg["bins"][name]
    threads = str(threads or cfg["ringtun_threads"])
    agent_threads = str(agent_threads or threads)
    state = os.path.join(workdir, "ringtun-state")
    security = ["--state-dir", state] if tls else ["--insecure-plaintext"]
    # A port of our choosing, not 0: with --http-listen or --tls-listen in gateway_extra the gateway listens on more
    # than one, and which of them /proc lists first is not the tunnel port's business.
    port = free_port()
    gateway = Process("ringtun-gateway", [bins["gateway"], "--listen", f"127.0.0.1:{port}", "--token", TOKEN,
                                          "--threads", threads, "--log-level", "warn"] + security +
                      list(gateway_extra), workdir)
    procs = [gateway]
    try:
        wait_for(lambda: (gateway.alive() or _exited(gateway)) and port_open(port), 10, "ringtun-gateway to listen")
        if tls:
            security = ["--gateway-fingerprint", _cert_fingerprint(os.path.join(state, "gateway-cert.pem"))]
        public = {s: free_port() for s in SERVICES}
        argv = [bins["agent"], "--gateway", f"127.0.0.1:{port}", "--token", TOKEN, "--threads", agent_threads,
                "--agent-id", "bench", "--log-level", "warn"] + security
        for s in SERVICES:
            argv += ["--expose", f"tcp:{s}@{public[s]}=127.0.0.1:{local[s]}"]
        procs.append(Process("ringtun-agent", argv + list(agent_extra), workdir))
    except Exception:
        for p in procs:
            p.stop()
        raise
    version = _version([bins["gateway"], "--version"]) + f", --threads {threads}" + (", TLS 1.3" if tls else "")
    return _ready(Running(name, public, procs, version))


def _exited(process):
    raise RuntimeError(f"{process.name} exited: {process.text()[-2000:]}")


# ---- haproxy2 ----

def find_haproxy(cfg):
    path = os.environ.get("HAPROXY_BIN") or shutil.which("haproxy")
    if path:
        return {"haproxy": path}, None
    return None, "haproxy2: not found, set HAPROXY_BIN (Debian: apt-get install haproxy)"


def _haproxy_config(workdir, name, routes):
    lines = ["global", "  maxconn 8000", "  log stdout format raw local0 err", "defaults", "  mode tcp",
             "  timeout connect 5s", "  timeout client 120s", "  timeout server 120s", "  option dontlognull"]
    for i, (listen, target) in enumerate(routes):
        # HAProxy sets TCP_NODELAY on every TCP socket it uses; MSG_MORE does its batching.
        lines += [f"listen r{i}", f"  bind 127.0.0.1:{listen}", f"  server s{i} 127.0.0.1:{target}"]
    path = os.path.join(workdir, name + ".cfg")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def start_haproxy2(local, workdir, cfg):
    binary = cfg["bins"]["haproxy2"]["haproxy"]
    public = {s: free_port() for s in SERVICES}
    middle = {s: free_port() for s in SERVICES}
    edge_cfg = _haproxy_config(workdir, "haproxy-edge", [(middle[s], local[s]) for s in SERVICES])
    front_cfg = _haproxy_config(workdir, "haproxy-front", [(public[s], middle[s]) for s in SERVICES])
    procs = [Process("haproxy-edge", [binary, "-db", "-f", edge_cfg], workdir)]
    procs.append(Process("haproxy-front", [binary, "-db", "-f", front_cfg], workdir))
    return _ready(Running("haproxy2", public, procs, _version([binary, "-v"])))


# ---- rathole ----

def find_rathole(cfg):
    path = os.environ.get("RATHOLE_BIN") or shutil.which("rathole")
    if path:
        return {"rathole": path}, None
    return None, "rathole: not found, set RATHOLE_BIN"


def start_rathole(local, workdir, cfg):
    binary = cfg["bins"]["rathole"]["rathole"]
    control = free_port()
    public = {s: free_port() for s in SERVICES}
    server = [f'[server]\nbind_addr = "127.0.0.1:{control}"\ndefault_token = "{TOKEN}"\n',
              '[server.transport]\ntype = "tcp"\n[server.transport.tcp]\nnodelay = true\n']
    client = [f'[client]\nremote_addr = "127.0.0.1:{control}"\ndefault_token = "{TOKEN}"\n',
              '[client.transport]\ntype = "tcp"\n[client.transport.tcp]\nnodelay = true\n']
    for s in SERVICES:
        server.append(f'[server.services.{s}]\ntype = "tcp"\nbind_addr = "127.0.0.1:{public[s]}"\nnodelay = true\n')
        client.append(f'[client.services.{s}]\ntype = "tcp"\nlocal_addr = "127.0.0.1:{local[s]}"\nnodelay = true\n')
    server_path = os.path.join(workdir, "rathole-server.toml")
    client_path = os.path.join(workdir, "rathole-client.toml")
    with open(server_path, "w") as f:
        f.write("\n".join(server))
    with open(client_path, "w") as f:
        f.write("\n".join(client))
    env = dict(os.environ, RUST_LOG="warn")
    server_proc = Process("rathole-server", [binary, "--server", server_path], workdir, env)
    procs = [server_proc, start_after_listen(server_proc, control, ["rathole-client", binary, "--client", client_path],
                                             workdir, env)]
    return _ready(Running("rathole", public, procs, _version([binary, "--version"])))


# ---- frp ----

def find_frp(cfg):
    frps = os.environ.get("FRPS_BIN") or shutil.which("frps")
    frpc = os.environ.get("FRPC_BIN") or shutil.which("frpc")
    if frps and frpc:
        return {"frps": frps, "frpc": frpc}, None
    missing = " and ".join(n for n, p in (("frps", frps), ("frpc", frpc)) if not p)
    return None, f"frp: {missing} not found, set FRPS_BIN and FRPC_BIN"


def _frp_uses_ini(version):
    """frp reads TOML from 0.52 on; older releases (e.g. the last one with vendored sources, 0.31) read INI."""
    try:
        major, minor = (int(x) for x in version.strip().lstrip("v").split(".")[:2])
    except ValueError:
        return False
    return (major, minor) < (0, 52)


def start_frp(local, workdir, cfg):
    bins = cfg["bins"]["frp"]
    version = _version([bins["frps"], "--version"])
    control = free_port()
    public = {s: free_port() for s in SERVICES}
    if _frp_uses_ini(version):
        server = ["[common]", "bind_addr = 127.0.0.1", f"bind_port = {control}", "proxy_bind_addr = 127.0.0.1",
                  f"token = {TOKEN}", "tcp_mux = true", "log_file = console", "log_level = warn"]
        client = ["[common]", "server_addr = 127.0.0.1", f"server_port = {control}", f"token = {TOKEN}",
                  "tcp_mux = true", "protocol = tcp", "login_fail_exit = true", "log_file = console",
                  "log_level = warn"]
        for s in SERVICES:
            client += ["", f"[{s}]", "type = tcp", "local_ip = 127.0.0.1", f"local_port = {local[s]}",
                       f"remote_port = {public[s]}", "use_encryption = false", "use_compression = false"]
        ext = "ini"
    else:
        server = ['bindAddr = "127.0.0.1"', f"bindPort = {control}", 'proxyBindAddr = "127.0.0.1"',
                  'auth.method = "token"', f'auth.token = "{TOKEN}"', "transport.tcpMux = true",
                  'log.to = "console"', 'log.level = "warn"']
        client = ['serverAddr = "127.0.0.1"', f"serverPort = {control}", 'auth.method = "token"',
                  f'auth.token = "{TOKEN}"', "transport.tcpMux = true", 'transport.protocol = "tcp"',
                  "loginFailExit = true", 'log.to = "console"', 'log.level = "warn"']
        for s in SERVICES:
            client += ["", "[[proxies]]", f'name = "{s}"', 'type = "tcp"', 'localIP = "127.0.0.1"',
                       f"localPort = {local[s]}", f"remotePort = {public[s]}", "transport.useEncryption = false",
                       "transport.useCompression = false"]
        ext = "toml"
    server_path = os.path.join(workdir, "frps." + ext)
    client_path = os.path.join(workdir, "frpc." + ext)
    with open(server_path, "w") as f:
        f.write("\n".join(server) + "\n")
    with open(client_path, "w") as f:
        f.write("\n".join(client) + "\n")
    server_proc = Process("frps", [bins["frps"], "-c", server_path], workdir)
    procs = [server_proc, start_after_listen(server_proc, control, ["frpc", bins["frpc"], "-c", client_path], workdir)]
    return _ready(Running("frp", public, procs, "frp " + version))


# ---- ssh -R ----

def find_ssh(cfg):
    sshd = os.environ.get("SSHD_BIN") or shutil.which("sshd") or ("/usr/sbin/sshd" if os.access("/usr/sbin/sshd", os.X_OK) else None)
    ssh, keygen = shutil.which("ssh"), shutil.which("ssh-keygen")
    if sshd and ssh and keygen:
        return {"sshd": sshd, "ssh": ssh, "ssh-keygen": keygen}, None
    return None, "ssh-R: sshd, ssh or ssh-keygen not found (Debian: apt-get install openssh-server openssh-client)"


def _descendants(pid):
    """Every process below `pid` (sshd forks one per session: that child relays the forwarded connections)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class _SshRunning(Running):
    """The listener and the client are ours; the session process sshd forked is measured too."""

    def __init__(self, *args, session_pids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.session_pids = list(session_pids)

    @property
    def pids(self):
        return super().pids + self.session_pids


def start_ssh_r(local, workdir, cfg):
    bins = cfg["bins"]["ssh-R"]
    key = os.path.join(workdir, "id_ed25519")
    host_key = os.path.join(workdir, "host_ed25519")
    for path in (key, host_key):
        subprocess.run([bins["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-f", path], check=True,
                       stdout=subprocess.DEVNULL)
    authorized = os.path.join(workdir, "authorized_keys")
    shutil.copyfile(key + ".pub", authorized)
    os.chmod(authorized, 0o600)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # the privilege separation directory a root sshd insists on
    port = free_port()
    config = os.path.join(workdir, "sshd_config")
    with open(config, "w") as f:
        f.write("\n".join([
            "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {host_key}", f"AuthorizedKeysFile {authorized}",
            f"PidFile {os.path.join(workdir, 'sshd.pid')}", "StrictModes no", "UsePAM no",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
            "AllowTcpForwarding remote", "GatewayPorts no", "Compression no", "Ciphers aes128-gcm@openssh.com",
            "LogLevel ERROR"]) + "\n")
    server = Process("sshd", [bins["sshd"], "-D", "-e", "-f", config], workdir)
    public = {s: free_port() for s in SERVICES}
    argv = ["ssh", bins["ssh"], "-N", "-T", "-i", key, "-p", str(port), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={os.devnull}", "-o", "ExitOnForwardFailure=yes",
            "-o", "Compression=no", "-o", "Ciphers=aes128-gcm@openssh.com", "-o", "LogLevel=ERROR"]
    for s in SERVICES:
        argv += ["-R", f"127.0.0.1:{public[s]}:127.0.0.1:{local[s]}"]
    procs = [server, start_after_listen(server, port, argv + ["127.0.0.1"], workdir)]
    running = _ready(_SshRunning("ssh-R", public, procs, _version([bins["ssh"], "-V"])))
    running.session_pids = _descendants(server.pid)
    return running


# name -> (finder, starter). Order is the interleaving order within a round.
SYSTEMS = {
    "direct": (lambda cfg: ({}, None), start_direct),
    "ringtun": (find_ringtun, start_ringtun),
    # The same binaries with one loop each: on a small shared machine, fewer pinned threads than CPUs.
    "ringtun-1t": (find_ringtun, lambda local, workdir, cfg: start_ringtun(local, workdir, cfg, "ringtun-1t", 1)),
    "ringtun-a1": (find_ringtun, lambda local, workdir, cfg: start_ringtun(local, workdir, cfg, "ringtun-a1",
                                                                          agent_threads=1)),
    "ringtun-tls": (find_ringtun, lambda local, workdir, cfg: start_ringtun(local, workdir, cfg, "ringtun-tls",
                                                                           tls=True)),
    "ringtun-tls-syswolf": (find_ringtun_syswolf, lambda local, workdir, cfg: start_ringtun(
        local, workdir, cfg, "ringtun-tls-syswolf", tls=True)),
    "ringtun-ref": (find_ringtun_ref, lambda local, workdir, cfg: start_ringtun(local, workdir, cfg, "ringtun-ref")),
    "ringtun-tls-ref": (find_ringtun_ref, lambda local, workdir, cfg: start_ringtun(
        local, workdir, cfg, "ringtun-tls-ref", tls=True)),
    "haproxy2": (find_haproxy, start_haproxy2),
    "rathole": (find_rathole, start_rathole),
    "frp": (find_frp, start_frp),
    "ssh-R": (find_ssh, start_ssh_r),
}
