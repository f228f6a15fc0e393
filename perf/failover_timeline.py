#!/usr/bin/env python3
"""Failover timeline of a load-balancing group: two agents in one --group serve one public port, each with its own
echo service; client threads open connections without pause (connect, 64 B echo checked, close) while one member
fails and comes back. Per 100 ms: the share of connections that succeeded and the share member A served (from the
services' own time-stamped logs). Two runs:

  kill     member A's agent is killed (SIGKILL) at 1 s and started again (same --agent-id) at 3 s;
  health   member A's local service stops at 1 s (agents run --health tcp, interval 100 ms, 2 fails) and is back at 3 s.

  python3 perf/failover_timeline.py [--build build] [--seconds 5] [--clients 4] [--out docs/perf]

Writes OUT/failover.svg (both timelines) and OUT/failover.md (the table), and prints the table. Needs the programs
built in --build. Uses the integration tests' harness (tests/integration/itest.py) to start the processes.
"""
import argparse
import os
import signal
import socket
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

BUCKET_S = 0.1
HEALTH = ["--health", "tcp", "--health-interval-ms", "100", "--health-timeout-ms", "300", "--health-fails", "2"]


def one_connection(port, payload):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            return got == payload
    except OSError:
        return False


def load(port, clients, stop, results):
    def run(k):
        payload = os.urandom(64)
        while not stop.is_set():
            t = time.time()
            results.append((t, one_connection(port, payload)))

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    return threads


def served_times(service):
    """When the echo service finished each connection that carried bytes (its log lines are time-stamped)."""
    out = []
    for line in service.text().splitlines():
        words = line.split()
        if len(words) >= 4 and words[1] == "echo" and words[3].isdigit() and int(words[3]) > 0:
            out.append(float(words[0]))
    return out


def run_case(itest, case, seconds, clients):
    h = itest.Harness("failover-" + case)
    try:
        port_a = itest.free_port()
        svc_a = h.service("echo", port_a)
        svc_b = h.service("echo", itest.free_port())
        gw = h.gateway(extra=["--insecure-plaintext"])
        pub = itest.free_port()
        extra = ["--insecure-plaintext", "--group", "g"] + (HEALTH if case == "health" else [])

        def member(agent_id, local):
            a = h.agent(gw.port, ["tcp:web@%d=127.0.0.1:%d" % (pub, local)], agent_id=agent_id, extra=extra)
            a.wait_log(r"service 'web' .* is served by the gateway", 10)
            h.wait_agent_ready(a)
            return a

        agent_a = member("edge-a", svc_a.port)
        member("edge-b", svc_b.port)
        results = []
        stop = threading.Event()
        t0 = time.time()
        threads = load(pub, clients, stop, results)
        time.sleep(1.0)
        t_fail = time.time()
        if case == "kill":
            agent_a.signal(signal.SIGKILL)
        else:
            svc_a.kill_group()
        time.sleep(2.0)
        t_back = time.time()
        a_services = [svc_a]
        if case == "kill":
            member("edge-a", svc_a.port)
        else:
            a_services.append(h.service("echo", port_a))
        time.sleep(max(0.5, seconds - (time.time() - t0)))
        stop.set()
        for t in threads:
            t.join(5)
        served_a = [t for service in a_services for t in served_times(service)]
        return {"case": case, "t0": t0, "fail": t_fail - t0, "back": t_back - t0, "results": results,
                "served_a": served_a}
    finally:
        h.cleanup()


def buckets(run):
    t0 = run["t0"]
    count = int(max(t for t, _ in run["results"]) - t0) * 10 + 10
    rows = [[0, 0, 0] for _ in range(count)]  # attempts, successes, served by A
    for t, ok in run["results"]:
        i = int((t - t0) / BUCKET_S)
        if 0 <= i < count:
            rows[i][0] += 1
            rows[i][1] += ok
    for t in run["served_a"]:
        i = int((t - t0) / BUCKET_S)
        if 0 <= i < count:
            rows[i][2] += 1
    while rows and rows[-1][0] == 0:
        rows.pop()
    return rows


def svg(runs, path):
    w, h, pad = 900, 260, 50
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
             'font-size="12">' % (w, h * len(runs))]
    for k, run in enumerate(runs):
        rows = buckets(run)
        top = k * h
        x = lambda i: pad + (w - 2 * pad) * i / max(1, len(rows))  # noqa: E731
        y = lambda v: top + h - pad - (h - 2 * pad) * v  # noqa: E731
        parts.append('<text x="%d" y="%d" font-weight="bold">%s: member A %s at %.1f s, back at %.1f s</text>' % (
            pad, top + 20, run["case"], "killed" if run["case"] == "kill" else "service stopped", run["fail"],
            run["back"]))
        parts.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>' % (
            pad, y(1), w - 2 * pad, y(0) - y(1)))
        for v in (0, 0.5, 1):
            parts.append('<text x="%d" y="%d" text-anchor="end">%d%%</text>' % (pad - 4, y(v) + 4, v * 100))
        for s in range(0, len(rows) // 10 + 1):
            parts.append('<text x="%d" y="%d" text-anchor="middle">%d s</text>' % (x(s * 10), y(0) + 16, s))
        for t, colour in ((run["fail"], "#c00"), (run["back"], "#080")):
            parts.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="4"/>' % (
                x(t / BUCKET_S), y(0), x(t / BUCKET_S), y(1), colour))
        ok = " ".join("%.1f,%.1f" % (x(i + 0.5), y(r[1] / r[0])) for i, r in enumerate(rows) if r[0])
        share = " ".join("%.1f,%.1f" % (x(i + 0.5), y(min(1, r[2] / r[1]))) for i, r in enumerate(rows) if r[1])
        parts.append('<polyline points="%s" fill="none" stroke="#06c" stroke-width="2"/>' % ok)
        parts.append('<polyline points="%s" fill="none" stroke="#e80" stroke-width="1.5"/>' % share)
        parts.append('<text x="%d" y="%d" fill="#06c">connections that succeeded</text>' % (w - 400, top + 20))
        parts.append('<text x="%d" y="%d" fill="#e80">share served by member A</text>' % (w - 210, top + 20))
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def table(runs):
    out = ["| time (s) | " + " | ".join("%s: tried / ok / to A" % r["case"] for r in runs) + " |",
           "|---" * (len(runs) + 1) + "|"]
    rows = [buckets(r) for r in runs]
    for i in range(max(len(r) for r in rows)):
        cells = []
        for r in rows:
            cells.append("%d / %d / %d" % tuple(r[i]) if i < len(r) else "")
        out.append("| %.1f | %s |" % (i * BUCKET_S, " | ".join(cells)))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "perf"))
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    os.environ["RINGTUN_GATEWAY"] = os.path.join(build, "src/gateway/ringtun-gateway")
    os.environ["RINGTUN_AGENT"] = os.path.join(build, "src/edge-agent/ringtun-agent")
    import itest  # noqa: E402  (reads the environment above)
    runs = [run_case(itest, case, args.seconds, args.clients) for case in ("kill", "health")]
    os.makedirs(args.out, exist_ok=True)
    svg(runs, os.path.join(args.out, "failover.svg"))
    text = table(runs)
    for run in runs:
        after = [ok for t, ok in run["results"] if t - run["t0"] > run["fail"]]
        late = [t - run["t0"] - run["fail"] for t, ok in run["results"]
                if not ok and t - run["t0"] > run["fail"]]
        text += "\n\n%s: %d connections in all, %d after the failure, %d of them failed (the last %.3f s after it)" % (
            run["case"], len(run["results"]), len(after), len(late), max(late) if late else 0)
    with open(os.path.join(args.out, "failover.md"), "w") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
