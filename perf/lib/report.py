"""Summary of a loopback run: medians with min-max per system, ratios to direct, markdown tables, gnuplot plots."""
import datetime
import os
import statistics
import subprocess

# key: (scenario, field, unit, label)
METRICS = {
    "tput_1": ("throughput_1", "mb_per_s", "MB/s", "throughput, 1 stream"),
    "tput_n": ("throughput_n", "mb_per_s", "MB/s", "throughput, 10 streams (aggregate)"),
    "cpu_1": ("throughput_1", "relay_cpu_s_per_gb", "CPU s/GB", "relay CPU per GB, 1 stream"),
    "cpu_n": ("throughput_n", "relay_cpu_s_per_gb", "CPU s/GB", "relay CPU per GB, 10 streams"),
    "p50": ("latency", "p50_us", "us", "64 B RTT p50"),
    "p90": ("latency", "p90_us", "us", "p90"),
    "p99": ("latency", "p99_us", "us", "p99"),
    "p999": ("latency", "p999_us", "us", "p99.9"),
    "max": ("latency", "max_us", "us", "max"),
    "mean": ("latency", "mean_us", "us", "mean"),
    "cps": ("connect_rate", "per_second", "conn/s", "new connections/s (connect, 16 B echo, close)"),
    "cps_err": ("connect_rate", "errors", "errors", "connect-rate errors"),
    "rps": ("http", "rps", "req/s", "HTTP requests/s (wrk, 32 conns, 1 KB file)"),
    "rps_err": ("http", "errors", "errors", "wrk errors"),
    "cps_cpu": ("connect_rate", "relay_cpu_us_per_conn", "us/conn", "relay CPU per new connection"),
    "rps_cpu": ("http", "relay_cpu_us_per_req", "us/req", "relay CPU per HTTP request"),
    "kb_conn": ("hold", "kb_per_conn", "KB/conn", "RSS growth per held connection"),
    "peak_kb_conn": ("hold", "peak_kb_per_conn", "KB/conn", "peak RSS of server+client / connections"),
    "peak_mb": ("hold", "rss_peak_kb", "MB", "peak RSS of server+client (VmHWM)"),
}


def _stat(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def summarize(raw, system_names):
    summary = {"systems": system_names, "metrics": {}, "errors": {}, "verified": {}, "load": {}, "versions": {}}
    for name in system_names:
        rows = [r for r in raw if r.get("system") == name]
        summary["versions"][name] = next((r.get("version", "") for r in rows if r.get("version")), "")
        loads = [r[k] for r in rows for k in ("load_before", "load_after") if k in r]
        summary["load"][name] = [min(loads), max(loads)] if loads else None
        summary["errors"][name] = [
            f"round {r['round'] + 1} {r.get('scenario')}: {r.get('error') or r.get('first_error') or 'exit ' + str(r.get('exit_code'))}"
            for r in rows if r.get("scenario") == "failure" or r.get("exit_code", 0) != 0]
        verify = [r for r in rows if r.get("scenario") == "verify"]
        summary["verified"][name] = bool(verify) and all(r.get("exit_code") == 0 and r.get("verify_failures") == 0
                                                        for r in verify)
        per = {}
        for key, (scenario, field, unit, _) in METRICS.items():
            values = [r.get(field) for r in rows if r.get("scenario") == scenario]
            if key == "peak_mb":
                values = [v / 1024 if v is not None else None for v in values]
            per[key] = _stat(values)
        summary["metrics"][name] = per
    return summary


def one_line(results):
    by = {r["scenario"]: r for r in results}
    parts = []
    if "throughput_1" in by:
        parts.append(f"1x {by['throughput_1'].get('mb_per_s', 0):.0f} MB/s")
    if "throughput_n" in by:
        parts.append(f"10x {by['throughput_n'].get('mb_per_s', 0):.0f} MB/s")
    if "latency" in by:
        l = by["latency"]
        parts.append(f"p50/p99/p99.9 {l.get('p50_us', 0):.0f}/{l.get('p99_us', 0):.0f}/{l.get('p999_us', 0):.0f} us")
    if "connect_rate" in by:
        parts.append(f"{by['connect_rate'].get('per_second', 0):.0f} conn/s")
    if "http" in by:
        parts.append(f"{by['http'].get('rps', 0):.0f} req/s")
    if by.get("hold", {}).get("kb_per_conn") is not None:
        parts.append(f"{by['hold']['kb_per_conn']:.1f} KB/conn")
    bad = [r["scenario"] for r in results if r.get("exit_code", 0) != 0]
    if bad:
        parts.append("ERRORS in " + ", ".join(bad))
    return "; ".join(parts)


def _fmt(value, unit):
    if value is None:
        return "-"
    if unit in ("MB/s", "conn/s", "req/s"):
        return f"{value:,.0f}"
    if unit == "us":
        return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    if unit == "errors":
        return f"{value:,.0f}"
    return f"{value:,.2f}" if value < 10 else f"{value:,.1f}"


def _cell(stat, unit):
    if stat is None:
        return "-"
    if stat["n"] == 1 or stat["min"] == stat["max"]:
        return _fmt(stat["median"], unit)
    return f"{_fmt(stat['median'], unit)} ({_fmt(stat['min'], unit)}-{_fmt(stat['max'], unit)})"


def _ratio(summary, name, key):
    base = summary["metrics"].get("direct", {}).get(key)
    mine = summary["metrics"][name].get(key)
    if not base or not mine or not base["median"]:
        return "-"
    return f"{mine['median'] / base['median']:.2f}x"


def _table(summary, keys, title, with_ratio=True):
    names = summary["systems"]
    lines = [f"### {title}", "", "| system | " + " | ".join(METRICS[k][3] + f" ({METRICS[k][2]})" for k in keys) + " |",
             "|---|" + "---|" * len(keys)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(_cell(summary["metrics"][name][k], METRICS[k][2]) for k in keys) + " |")
    if with_ratio and "direct" in names:
        for name in names:
            if name != "direct":
                lines.append(f"| {name} / direct | " + " | ".join(_ratio(summary, name, k) for k in keys) + " |")
    return lines + [""]


def markdown(summary, info, plots, command):
    names = summary["systems"]
    out = ["# Loopback comparison: ringtun vs direct and other relays", "",
           f"Generated by `{command}` on {info['date']} ({info['profile']} profile, {info['rounds']} interleaved "
           f"rounds, {info['seconds']} s). Medians across rounds, (min-max) beside them; the `/ direct` rows are "
           "median ratios to the direct reference.", "",
           f"- Machine: {info['cpu']}, {info['cpus']} CPUs, kernel {info['kernel']}, Debian {info['debian']}; "
           f"g++ {info['gxx']}, liburing {info['liburing']}.",
           f"- ringtun: {info['ringtun_build']}, gateway and agent `--threads {info['ringtun_threads']}` (ringtun-1t: `--threads 1`). "
           "Load clients and the echo/sink services: `ringtun-bench` (one thread each).",
           "- Versions: " + "; ".join(f"{n}: {summary['versions'].get(n) or '-'}" for n in names if n != "direct")
           + f"; {info.get('nginx', '')}; {info.get('wrk', '')}.",
           "- Load average (1 min) during each system's rounds: " + ", ".join(
               f"{n} {summary['load'][n][0]:.1f}-{summary['load'][n][1]:.1f}" for n in names if summary["load"].get(n))
           + f". The machine is shared: treat differences under ~10% as noise.",
           "- Skipped: " + ("; ".join(info["skipped"].values()) if info.get("skipped") else "none") + ".",
           "- Data verified byte-exact end to end (10 streams x 2 MB, hashed by the sink): " + ", ".join(
               f"{n} {'yes' if summary['verified'].get(n) else 'NO'}" for n in names) + ".",
           ] + [f"- {note}" for note in info.get("notes", [])] + [
           "", "Reproduce: `perf/run_loopback.sh` (add `--quick` for a 3-minute run). Peers are found on PATH or "
           "through RATHOLE_BIN, FRPS_BIN, FRPC_BIN, HAPROXY_BIN, SSHD_BIN; a missing one is reported and skipped.",
           "", "Settings: " + ", ".join(f"{k}={v}" for k, v in info.get("settings", {}).items()) + ".", ""]
    out += _table(summary, ["tput_1", "tput_n"], "Throughput (sink; every byte acknowledged by the service)")
    out += _table(summary, ["p50", "p90", "p99", "p999", "max", "mean"],
                  "Latency: 64-byte echo round trips after warm-up (log-bucketed histogram, 3 significant digits)")
    out += _table(summary, ["cps", "cps_err", "cps_cpu", "rps", "rps_err", "rps_cpu"], "Connections and HTTP")
    out += _table(summary, ["kb_conn", "peak_kb_conn", "peak_mb", "cpu_1", "cpu_n"],
                  "Memory (1,000 held connections) and CPU (user+system of the relay processes)", with_ratio=False)
    errors = {n: e for n, e in summary["errors"].items() if e}
    if errors:
        out += ["### Errors", ""] + [f"- {n}: {msg}" for n, es in errors.items() for msg in es[:10]] + [""]
    if plots:
        out += ["### Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    out += ["How to read: direct is the services without any relay. haproxy2 is two HAProxy TCP relays in a row: the "
            "same three TCP hops as a tunnel without framing, a practical ceiling. KB/conn is the growth of the "
            "relays' resident memory (server + client side) from idle to 1,000 held connections, divided by 1,000; "
            "kernel socket buffers are not in it. CPU s/GB is the relays' user+system CPU during the transfer per "
            "10^9 bytes delivered.", ""]
    return "\n".join(out)


def plots(summary, outdir):
    """Bar charts of throughput and memory and a latency percentile plot, with gnuplot if it is installed."""
    if subprocess.run(["sh", "-c", "command -v gnuplot"], capture_output=True).returncode != 0:
        return []
    names = summary["systems"]
    m = summary["metrics"]

    def val(name, key):
        s = m[name].get(key)
        return s["median"] if s else 0

    made = []
    with open(os.path.join(outdir, "throughput.dat"), "w") as f:
        for n in names:
            f.write(f"{n} {val(n, 'tput_1'):.1f} {val(n, 'tput_n'):.1f}\n")
    with open(os.path.join(outdir, "memory.dat"), "w") as f:
        for n in names:
            if n != "direct":
                f.write(f"{n} {val(n, 'kb_conn'):.2f} {val(n, 'peak_kb_conn'):.2f}\n")
    with open(os.path.join(outdir, "latency.dat"), "w") as f:
        f.write("pct " + " ".join(names) + "\n")
        for label, key in (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99.9", "p999")):
            f.write(label + " " + " ".join(f"{val(n, key):.1f}" for n in names) + "\n")
    script = f"""
set terminal png size 900,480 font ",10"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set grid ytics
set yrange [0:*]
set output '{outdir}/throughput.png'
set title 'Loopback throughput (MB/s, median of rounds)'
plot '{outdir}/throughput.dat' using 2:xtic(1) title '1 stream', '' using 3 title '10 streams'
set output '{outdir}/memory.png'
set title 'Relay memory per held connection (KB, 1,000 connections, server+client)'
plot '{outdir}/memory.dat' using 2:xtic(1) title 'RSS growth / conn', '' using 3 title 'peak RSS / conn'
set output '{outdir}/latency.png'
set title '64 B round-trip latency percentiles (us, log scale)'
set style data linespoints
set logscale y
set yrange [*:*]
set key left top
plot for [i=2:{len(names) + 1}] '{outdir}/latency.dat' using i:xtic(1) title columnheader(i)
"""
    gp = os.path.join(outdir, "plots.gp")
    with open(gp, "w") as f:
        f.write(script)
    if subprocess.run(["gnuplot", gp], capture_output=True).returncode == 0:
        made = ["throughput.png", "memory.png", "latency.png"]
    return made


def first_line(argv, timeout=10):
    """The first line a command prints (stdout, else stderr), or "unknown": for version strings."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return (out.stdout.strip() or out.stderr.strip()).splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine_basics():
    """What every result file says about the machine: date, CPU model and count, kernel, compiler."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "cpu": cpu,
            "cpus": os.cpu_count(), "kernel": first_line(["uname", "-r"]), "gxx": first_line(["g++", "-dumpfullversion"])}
