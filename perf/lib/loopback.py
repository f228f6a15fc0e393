#!/usr/bin/env python3
"""Loopback comparison: ringtun vs direct, haproxy2, rathole and frp (whichever are present).

Run through perf/run_loopback.sh, which installs the Debian tools and builds ringtun first. Every scenario runs
against every system, interleaved (A B C A B C ...) for several rounds so machine drift is shared; the summary gives
medians with min-max. Writes results/<date>/ (results.json, raw.jsonl, summary.md, plots) and copies the summary
into docs/perf/ (full runs, or --publish).
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402
import systems  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROFILES = {
    # bytes per stream (1 stream), streams x bytes (aggregate), latency requests+warmup, seconds per timed test
    "quick": dict(rounds=2, one_bytes=50_000_000, multi_streams=10, multi_bytes=5_000_000, lat_requests=2000,
                  lat_warmup=200, rate_seconds=1.5, wrk_seconds=2, hold=1000),
    "full": dict(rounds=5, one_bytes=100_000_000, multi_streams=10, multi_bytes=100_000_000, lat_requests=10000,
                 lat_warmup=1000, rate_seconds=4, wrk_seconds=4, hold=1000),
}


def say(text):
    print(text, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def proc_status(pid, key):
    """A kB field of /proc/PID/status (VmRSS, VmHWM), or 0 if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pids):
    """user+system CPU seconds of the processes (all their threads), from /proc/PID/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        except OSError:
            pass
    return total / tick


class Bench:
    def __init__(self, binary, logdir):
        self.binary = binary
        self.logdir = logdir

    def run(self, mode, port, *args, timeout=300, label=""):
        argv = [self.binary, mode, "--target", f"127.0.0.1:{port}", "--label", label, *map(str, args)]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        with open(os.path.join(self.logdir, "bench.log"), "a") as log:
            log.write(" ".join(argv) + "\n" + out.stderr + out.stdout)
        record = None
        for line in out.stdout.splitlines():
            if line.startswith("{"):
                record = json.loads(line)
        if record is None:
            raise RuntimeError(f"ringtun-bench {mode} printed no result: {out.stderr.strip()}")
        record["exit_code"] = out.returncode
        return record


def ringtun_build(build):
    """(cfg, bench binary) for the ringtun programs and ringtun-bench built in `build`; exits with what is missing."""
    build = os.path.abspath(build)
    bins, problem = systems._ringtun_in(build, "ringtun")
    bench_bin = os.path.join(build, "perf/load/ringtun-bench")
    if problem or not os.access(bench_bin, os.X_OK):
        sys.exit(f"build the programs and ringtun-bench first: {problem or bench_bin}")
    return {"bins": {"ringtun": bins}, "ringtun_threads": os.cpu_count()}, bench_bin


def start_services(bench_bin, workdir):
    serve = systems.Process("bench-serve", [bench_bin, "serve", "--echo", "127.0.0.1:0", "--sink", "127.0.0.1:0",
                                            "--threads", "1", "--max-seconds", "3600"], workdir)
    line = systems.wait_for(lambda: "sink " in serve.text() and serve.text(), 10, "ringtun-bench serve")
    words = line.split()
    echo = int(words[words.index("echo") + 1].rsplit(":", 1)[1])
    sink = int(words[words.index("sink") + 1].rsplit(":", 1)[1])
    http = systems.free_port()
    www = os.path.join(workdir, "www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "1k.bin"), "wb") as f:
        f.write(bytes((i * 7) & 0xFF for i in range(1024)))
    for sub in ("tmp", "logs"):
        os.makedirs(os.path.join(workdir, sub), exist_ok=True)
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  tcp_nodelay on;
  keepalive_requests 10000000;
  client_body_temp_path {workdir}/tmp; proxy_temp_path {workdir}/tmp; fastcgi_temp_path {workdir}/tmp;
  uwsgi_temp_path {workdir}/tmp; scgi_temp_path {workdir}/tmp;
  server {{ listen 127.0.0.1:{http}; root {www}; }}
}}
""")
    nginx = systems.Process("nginx", [shutil.which("nginx") or "/usr/sbin/nginx", "-p", workdir, "-c", conf], workdir)
    systems.wait_for(lambda: nginx.alive() and _http_ok(http), 10, "nginx")
    return {"echo": echo, "sink": sink, "http": http}, [serve, nginx]


def _http_ok(port):
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
            c.sendall(b"GET /1k.bin HTTP/1.0\r\n\r\n")
            return c.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def run_wrk(port, seconds, logdir):
    argv = ["wrk", "-t1", "-c32", f"-d{seconds}s", f"http://127.0.0.1:{port}/1k.bin"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    with open(os.path.join(logdir, "wrk.log"), "a") as log:
        log.write(" ".join(argv) + "\n" + out.stdout + out.stderr)
    rps, errors = 0.0, 0
    for line in out.stdout.splitlines():
        line = line.strip()
        if line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
        if line.startswith("Socket errors:") or line.startswith("Non-2xx"):
            errors += sum(int(w.rstrip(",")) for w in line.replace(",", " ").split() if w.isdigit())
    return {"scenario": "http", "rps": rps, "errors": errors, "exit_code": out.returncode}


def hold_memory(bench, running, n, logdir):
    """Opens n verified connections through the system and samples its processes' RSS while they are held."""
    pids = running.pids
    base = sum(proc_status(p, "VmRSS") for p in pids)
    argv = [bench.binary, "hold", "--target", f"127.0.0.1:{running.ports['echo']}", "--connections", str(n),
            "--max-seconds", "120", "--label", running.name]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = None
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if '"hold_ready"' in line:
            ready = json.loads(line)
            break
    time.sleep(0.5)  # let the relays settle (lazy allocations after the last verify)
    held = sum(proc_status(p, "VmRSS") for p in pids)
    peak = sum(proc_status(p, "VmHWM") for p in pids)
    proc.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    with open(os.path.join(logdir, "bench.log"), "a") as log:
        log.write(" ".join(argv) + "\n" + stderr + stdout)
    record = next((json.loads(l) for l in stdout.splitlines() if l.startswith('{"scenario"')), {})
    record.update(scenario="hold", exit_code=proc.returncode, ready=ready is not None)
    if pids:
        record.update(rss_base_kb=base, rss_held_kb=held, rss_peak_kb=peak,
                      kb_per_conn=(held - base) / n, peak_kb_per_conn=peak / n)
    return record


def with_relay_cpu(running, work):
    """Runs work() and adds to the record it returns the relay processes' CPU seconds spent during it (relay_cpu_s;
    not for direct, which has no relay)."""
    before = cpu_seconds(running.pids)
    record = work()
    if running.pids:
        record["relay_cpu_s"] = cpu_seconds(running.pids) - before
    return record


def measured(bench, running, scenario, *args, **kwargs):
    """Runs one bench scenario with the relays' CPU during it (with_relay_cpu), and per GB for transfers."""
    record = with_relay_cpu(running, lambda: bench.run(scenario, *args, **kwargs))
    if not running.pids:
        return record  # direct: no relay
    if record.get("bytes"):
        record["relay_cpu_s_per_gb"] = record["relay_cpu_s"] / (record["bytes"] / 1e9)
    return record


def system_round(name, start, local, bench, cfg, profile, round_index, workdir):
    logdir = os.path.join(workdir, f"r{round_index}-{name}")
    os.makedirs(logdir, exist_ok=True)
    bench.logdir = logdir
    load_before = loadavg()
    running = start(local, logdir, cfg)
    results = []
    try:
        label = f"{name}/r{round_index}"
        results.append(hold_memory(bench, running, profile["hold"], logdir))
        running.check_alive()
        if round_index == 0:
            results.append(bench.run("throughput", running.ports["sink"], "--streams", 10, "--bytes", 2_000_000,
                                     "--verify", label=label + "/verify") | {"scenario": "verify"})
        one = measured(bench, running, "throughput", running.ports["sink"], "--streams", 1, "--bytes",
                       profile["one_bytes"], label=label)
        results.append(one | {"scenario": "throughput_1"})
        multi = measured(bench, running, "throughput", running.ports["sink"], "--streams", profile["multi_streams"],
                         "--bytes", profile["multi_bytes"], label=label)
        results.append(multi | {"scenario": "throughput_n"})
        results.append(bench.run("latency", running.ports["echo"], "--size", 64, "--requests", profile["lat_requests"],
                                 "--warmup", profile["lat_warmup"], label=label))
        rate = measured(bench, running, "connect-rate", running.ports["echo"], "--seconds", profile["rate_seconds"],
                        "--concurrency", 8, label=label)
        if rate.get("relay_cpu_s") is not None and rate.get("completed"):
            rate["relay_cpu_us_per_conn"] = rate["relay_cpu_s"] / rate["completed"] * 1e6
        results.append(rate)
        http = with_relay_cpu(running, lambda: run_wrk(running.ports["http"], profile["wrk_seconds"], logdir))
        if http.get("relay_cpu_s") is not None and http["rps"]:
            http["relay_cpu_us_per_req"] = http["relay_cpu_s"] / (http["rps"] * profile["wrk_seconds"]) * 1e6
        results.append(http)
        running.check_alive()
    finally:
        running.stop()
    load_after = loadavg()
    for r in results:
        r.update(system=name, round=round_index, load_before=load_before, load_after=load_after,
                 version=running.version)
    return results


def machine_info(cfg):
    info = report.machine_basics()
    info.update({
        "debian": report.first_line(["cat", "/etc/debian_version"]),
        "liburing": report.first_line(["pkg-config", "--modversion", "liburing"]),
        "ringtun_build": "release, LTO (" + os.path.relpath(cfg["ringtun_build"], ROOT) + ")",
        "ringtun_threads": cfg["ringtun_threads"],
        "nginx": report.first_line(["nginx", "-v"]), "wrk": report.first_line(["wrk", "--version"]),
    })
    return info


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 rounds, smaller transfers (< 3 minutes)")
    parser.add_argument("--rounds", type=int, help="override the profile's number of rounds")
    parser.add_argument("--systems", default=",".join(systems.SYSTEMS), help="comma-separated subset")
    parser.add_argument("--bench", required=True, help="ringtun-bench binary")
    parser.add_argument("--ringtun-build", required=True, help="ringtun release build directory")
    parser.add_argument("--hold", type=int, help="connections held for the memory figure (default 1000)")
    parser.add_argument("--note", action="append", default=[], help="a line for the summary (e.g. how a peer was built)")
    parser.add_argument("--out", default=os.path.join(ROOT, "perf", "results"))
    parser.add_argument("--publish", action="store_true", help="copy the summary to docs/perf/ (default for full runs)")
    parser.add_argument("--no-publish", action="store_true")
    args = parser.parse_args()
    args.bench = os.path.abspath(args.bench)

    profile = dict(PROFILES["quick" if args.quick else "full"])
    if args.rounds:
        profile["rounds"] = args.rounds
    if args.hold:
        profile["hold"] = args.hold
    cfg = {"ringtun_build": os.path.abspath(args.ringtun_build),
           "ringtun_syswolf_build": os.path.abspath(os.environ.get("RINGTUN_SYSWOLF_BUILD",
                                                                   args.ringtun_build + "-syswolf")),
           "ringtun_threads": int(os.environ.get("RINGTUN_THREADS", os.cpu_count() or 1)), "bins": {}}
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H%M%S")
    outdir = os.path.join(args.out, stamp + ("-quick" if args.quick else ""))
    os.makedirs(outdir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="ringtun-loopback-")
    started = time.time()

    present, skipped = [], {}
    for name in args.systems.split(","):
        if name not in systems.SYSTEMS:
            parser.error(f"unknown system {name}")
        finder, start = systems.SYSTEMS[name]
        bins, why = finder(cfg)
        if why:
            say(why)
            skipped[name] = why
            continue
        cfg["bins"][name] = bins
        present.append((name, start))
    say(f"systems: {', '.join(n for n, _ in present)}; {profile['rounds']} round(s); load average {loadavg():.2f}")

    local, services = start_services(args.bench, workdir)
    bench = Bench(args.bench, workdir)
    raw = []
    try:
        for r in range(profile["rounds"]):
            for name, start in present:
                t0 = time.time()
                try:
                    results = system_round(name, start, local, bench, cfg, profile, r, workdir)
                except Exception as e:  # a relay that fails is reported, and the others still run
                    say(f"  round {r + 1} {name}: FAILED: {e}")
                    raw.append({"system": name, "round": r, "scenario": "failure", "error": str(e)})
                    continue
                raw.extend(results)
                say(f"  round {r + 1} {name:8} {report.one_line(results)} ({time.time() - t0:.0f} s)")
    finally:
        for p in services:
            p.stop()

    info = machine_info(cfg)
    info.update(profile=("quick" if args.quick else "full"), rounds=profile["rounds"], seconds=round(time.time() - started),
                loadavg_end=loadavg(), skipped=skipped, workdir=workdir, settings=profile, notes=args.note)
    with open(os.path.join(outdir, "raw.jsonl"), "w") as f:
        for r in raw:
            f.write(json.dumps(r) + "\n")
    summary = report.summarize(raw, [n for n, _ in present])
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"machine": info, "summary": summary}, f, indent=1)
    plots = report.plots(summary, outdir)
    markdown = report.markdown(summary, info, plots, " ".join(["perf/run_loopback.sh"] + (["--quick"] if args.quick else [])))
    with open(os.path.join(outdir, "summary.md"), "w") as f:
        f.write(markdown)
    say("")
    say(markdown)
    say(f"results: {outdir} (logs: {workdir})")
    if (args.publish or not args.quick) and not args.no_publish:
        dest = os.path.join(ROOT, "docs", "perf", "results", os.path.basename(outdir))
        os.makedirs(dest, exist_ok=True)
        for name in ["results.json", "raw.jsonl", "summary.md"] + plots:
            shutil.copy(os.path.join(outdir, name), dest)
        with open(os.path.join(ROOT, "docs", "perf", "loopback.md"), "w") as f:
            f.write(report.markdown(summary, info, [os.path.join("results", os.path.basename(outdir), p) for p in plots],
                                    " ".join(["perf/run_loopback.sh"] + (["--quick"] if args.quick else []))))
        say(f"published: docs/perf/loopback.md and {os.path.relpath(dest, ROOT)}")
    failures = [r for r in raw if r.get("scenario") == "failure" or r.get("exit_code", 0) != 0]
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
