
set terminal png size 900,480 font ",10"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set grid ytics
set yrange [0:*]
set output '/work/main/perf/results/2026-12-02_085840/throughput.png'
set title 'Loopback throughput (MB/s, median of rounds)'
plot '/work/main/perf/results/2026-12-02_085840/throughput.dat' using 2:xtic(1) title '1 stream', '' using 3 title '10 streams'
set output '/work/main/perf/results/2026-12-02_085840/memory.png'
set title 'Relay memory per held connection (KB, 1,000 connections, server+client)'
plot '/work/main/perf/results/2026-12-02_085840/memory.dat' using 2:xtic(1) title 'RSS growth / conn', '' using 3 title 'peak RSS / conn'
set output '/work/main/perf/results/2026-12-02_085840/latency.png'
set title '64 B round-trip latency percentiles (us, log scale)'
set style data linespoints
set logscale y
set yrange [*:*]
set key left top
plot for [i=2:5] '/work/main/perf/results/2026-12-02_085840/latency.dat' using i:xtic(1) title columnheader(i)
