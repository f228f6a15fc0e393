#!/usr/bin/env bash
# tune-host.sh: host settings for a busy ringtun gateway (or agent): kernel limits on sockets, backlogs, buffers and
# file descriptors, the locked-memory limit io_uring needs, whether io_uring is allowed at all, and NIC interrupt /
# RPS / XPS spreading over the CPUs the loops run on. Without --apply it only prints current and recommended values
# and touches nothing. --apply saves the current values to a restore file first; --restore FILE puts them back.
# What each setting is for: docs/operations.md, "Host tuning".
set -euo pipefail

usage() {
  cat <<'TEXT'
Usage: scripts/tune-host.sh [--iface NAME] [--cpus LIST] [--apply [--state FILE]]
       scripts/tune-host.sh --restore FILE

Prints each setting with its current and recommended value; changes nothing unless --apply is given.

  --apply         set the recommended values (sysctl -w; NIC IRQ affinity, RPS and XPS with --iface), after
                  saving the current ones to the state file. Needs root.
  --state FILE    where --apply saves the values it changes (default /var/lib/ringtun/tune-host.restore);
                  an existing file is not overwritten (restore it first)
  --restore FILE  write back the values saved in FILE by --apply. Needs root.
  --iface NAME    also spread NAME's interrupts and receive/transmit queues over --cpus
  --cpus LIST     the CPUs the ringtun loops run on, e.g. 0-3 or 0,2,4-7 (default: all online CPUs)
  -h, --help      print this help

Exit status: 0 done, 1 a setting could not be read or written, 2 bad arguments.
TEXT
}

die_usage() {
  echo "tune-host.sh: $1 (see --help)" >&2
  exit 2
}
die() {
  echo "tune-host.sh: $1" >&2
  exit 1
}

apply=0
state=/var/lib/ringtun/tune-host.restore
restore=
iface=
cpus=
while (($# > 0)); do
  case "$1" in
    --apply) apply=1 ;;
    --state | --restore | --iface | --cpus)
      (($# >= 2)) || die_usage "$1: missing value"
      case "$1" in
        --state) state=$2 ;;
        --restore) restore=$2 ;;
        --iface) iface=$2 ;;
        --cpus) cpus=$2 ;;
      esac
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
  shift
done
[[ -n $restore && $apply == 1 ]] && die_usage "--restore cannot be combined with --apply"
[[ -z $cpus ]] && cpus=$(cat /sys/devices/system/cpu/online)
[[ $cpus =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] || die_usage "--cpus: '$cpus' is not a CPU list like 0-3,6"
if [[ -n $iface ]]; then
  [[ $iface =~ ^[A-Za-z0-9_.:@-]{1,15}$ ]] || die_usage "--iface: '$iface' is not an interface name"
  [[ -d /sys/class/net/$iface ]] || die_usage "--iface: no interface '$iface' (see ip link)"
fi

# ------------------------------------------------------------------------------------------------ restore

if [[ -n $restore ]]; then
  [[ -r $restore ]] || die "--restore: cannot read '$restore'"
  ((EUID == 0)) || die "--restore needs root"
  while read -r kind target value; do
    case "$kind" in
      sysctl)
        [[ $target =~ ^[a-z0-9_.-]+$ ]] || die "$restore: bad sysctl name '$target'"
        sysctl -q -w "$target=$value" || die "sysctl -w $target failed"
        echo "restored $target = $value"
        ;;
      write)
        [[ $target =~ ^(/proc/irq/[0-9]+/smp_affinity_list|/sys/class/net/[^/]+/queues/[rt]x-[0-9]+/[rx]ps_cpus)$ ]] ||
          die "$restore: refusing to write '$target'"
        printf '%s\n' "$value" >"$target" || die "cannot write $target"
        echo "restored $target = $value"
        ;;
      '' | '#'*) ;;
      *) die "$restore: unknown line '$kind $target'" ;;
    esac
  done <"$restore"
  exit 0
fi

# ------------------------------------------------------------------------------------------------ plan

# Each planned change: "kind target value" (kind sysctl or write), with the value it replaces in old_values.
changes=()
old_values=()

# name, recommended value, why. Values only ever go up: a host already above a recommendation keeps its own.
sysctls=(
  "net.core.somaxconn|65535|accept backlog of each listener (public ports, tunnel port)"
  "net.ipv4.tcp_max_syn_backlog|65535|half-open connections queued during a connection burst"
  "net.ipv4.ip_local_port_range|1024 65535|source ports for the agent's connections to local services"
  "net.core.rmem_max|67108864|largest receive buffer a socket may ask for (64 MiB)"
  "net.core.wmem_max|67108864|largest send buffer a socket may ask for (64 MiB)"
  "net.ipv4.tcp_rmem|4096 131072 67108864|TCP receive buffer min/default/max: autotuning room for tunnels"
  "net.ipv4.tcp_wmem|4096 65536 67108864|TCP send buffer min/default/max"
  "net.core.netdev_max_backlog|16384|packets queued per CPU between the NIC and the stack"
  "fs.nr_open|1048576|per-process descriptor ceiling (LimitNOFILE= cannot exceed it)"
  "fs.file-max|2097152|system-wide open files"
)

# 0 if `current` already meets `recommended`: each field at least as large, except a port range's low end, which
# should be at most as large (a wider range is better).
meets() {
  local name=$1 current=$2 recommended=$3
  local -a cur rec
  read -r -a cur <<<"$current"
  read -r -a rec <<<"$recommended"
  ((${#cur[@]} == ${#rec[@]})) || return 1
  local i
  for i in "${!rec[@]}"; do
    [[ ${cur[i]} =~ ^[0-9]+$ ]] || return 1
    if [[ $name == net.ipv4.ip_local_port_range && $i == 0 ]]; then
      ((cur[i] <= rec[i])) || return 1
    elif [[ $name == net.ipv4.tcp_[rw]mem && $i == 0 ]]; then
      continue  # the minimum is the kernel's business
    else
      ((cur[i] >= rec[i])) || return 1
    fi
  done
}

echo "Kernel settings (sysctl):"
for entry in "${sysctls[@]}"; do
  IFS='|' read -r name recommended why <<<"$entry"
  file=/proc/sys/${name//.//}
  if [[ ! -r $file ]]; then
    printf '  %-30s %-22s %-22s %s\n' "$name" "(absent)" "$recommended" "skipped: not on this kernel"
    continue
  fi
  current=$(tr -s '\t ' ' ' <"$file")
  if meets "$name" "$current" "$recommended"; then
    status=ok
  else
    status="would set"
    ((apply)) && status="set"
    changes+=("sysctl $name $recommended")
    old_values+=("$current")
  fi
  printf '  %-30s current %-22s recommended %-22s %-9s %s\n' "$name" "$current" "$recommended" "$status" "$why"
done

echo
echo "Locked memory (io_uring rings):"
memlock=$(ulimit -l)
echo "  ulimit -l here: $memlock (KiB). The systemd units set LimitMEMLOCK=infinity; elsewhere raise it in"
echo "  /etc/security/limits.conf (memlock) or run with 'ulimit -l unlimited'. Kernels >= 5.12 charge io_uring"
echo "  to the memory cgroup instead."

echo
echo "io_uring availability:"
if [[ -r /proc/sys/kernel/io_uring_disabled ]]; then
  disabled=$(cat /proc/sys/kernel/io_uring_disabled)
  case "$disabled" in
    0) echo "  kernel.io_uring_disabled = 0: io_uring allowed for every process (ok)" ;;
    1) echo "  WARNING: kernel.io_uring_disabled = 1: only root and members of kernel.io_uring_group may create rings;"
       echo "  WARNING: ringtun fails at start-up unless its user is in that group (or set it to 0)." ;;
    *) echo "  WARNING: kernel.io_uring_disabled = $disabled: io_uring is disabled for everyone;"
       echo "  WARNING: ringtun CANNOT RUN on this host until it is set to 0 (sysctl -w kernel.io_uring_disabled=0)." ;;
  esac
else
  echo "  kernel.io_uring_disabled: absent (kernel before 6.6): io_uring allowed (ok)"
fi

# CPU list -> one CPU number per line.
expand_cpus() {
  local part
  local -a parts
  IFS=',' read -r -a parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ $part == *-* ]]; then
      seq "${part%-*}" "${part#*-}"
    else
      echo "$part"
    fi
  done
}

# CPU numbers -> the kernel's hex mask: 32-bit groups, most significant first, comma-separated.
cpu_mask() {
  local -a words=()
  local cpu max=0 i out=
  for cpu in "$@"; do ((cpu > max)) && max=$cpu; done
  for ((i = 0; i <= max / 32; i++)); do words[i]=0; done
  for cpu in "$@"; do ((words[cpu / 32] |= 1 << (cpu % 32))); done
  for ((i = max / 32; i >= 0; i--)); do
    if [[ -z $out ]]; then out=$(printf '%x' "${words[i]}"); else out+=,$(printf '%08x' "${words[i]}"); fi
  done
  echo "$out"
}

plan_write() {
  local path=$1 value=$2 current
  if ! current=$(cat "$path" 2>/dev/null); then
    printf '  %-52s skipped: the kernel does not let it be read (a single-queue device?)\n' "$path"
    return 0
  fi
  local status=ok
  if [[ $current != "$value" ]]; then
    status="would set"
    ((apply)) && status="set"
    changes+=("write $path $value")
    old_values+=("$current")
  fi
  printf '  %-52s current %-12s recommended %-12s %s\n' "$path" "$current" "$value" "$status"
}

echo
mapfile -t cpu_list < <(expand_cpus "$cpus")
echo "NIC interrupts and queues (CPUs: $cpus):"
if [[ -z $iface ]]; then
  echo "  no --iface given: pass --iface NAME to spread a NIC's IRQs, RPS and XPS over the loops' CPUs"
elif [[ $iface == lo || ! -e /sys/class/net/$iface/device ]]; then
  echo "  $iface: a loopback or virtual interface has no IRQs or hardware queues: nothing to spread"
else
  # MSI(-X) vectors of the device, one per queue on a multi-queue NIC.
  irqs=()
  if [[ -d /sys/class/net/$iface/device/msi_irqs ]]; then
    mapfile -t irqs < <(find /sys/class/net/"$iface"/device/msi_irqs/ -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n)
  fi
  if ((${#irqs[@]} == 0)); then
    mapfile -t irqs < <(awk -v dev="$iface" '$0 ~ dev { sub(":", "", $1); print $1 }' /proc/interrupts)
  fi
  if ((${#irqs[@]} == 0)); then
    echo "  $iface: no IRQs found in msi_irqs or /proc/interrupts"
  fi
  i=0
  for irq in "${irqs[@]}"; do
    [[ -w /proc/irq/$irq/smp_affinity_list || -r /proc/irq/$irq/smp_affinity_list ]] || continue
    plan_write "/proc/irq/$irq/smp_affinity_list" "${cpu_list[i % ${#cpu_list[@]}]}"
    i=$((i + 1))
  done
  # RPS: each receive queue may hand packets to any loop CPU. XPS: transmit queue i belongs to one CPU.
  all_mask=$(cpu_mask "${cpu_list[@]}")
  for queue in /sys/class/net/"$iface"/queues/rx-*; do
    [[ -e $queue/rps_cpus ]] && plan_write "$queue/rps_cpus" "$all_mask"
  done
  i=0
  for queue in /sys/class/net/"$iface"/queues/tx-*; do
    [[ -e $queue/xps_cpus ]] || continue
    plan_write "$queue/xps_cpus" "$(cpu_mask "${cpu_list[i % ${#cpu_list[@]}]}")"
    i=$((i + 1))
  done
  echo "  (irqbalance may move IRQs back: stop it, or ban these IRQs in its configuration)"
fi

echo
if ((!apply)); then
  echo "${#changes[@]} change(s) planned; nothing was touched. Run with --apply (as root) to make them."
  exit 0
fi
if ((${#changes[@]} == 0)); then
  echo "Nothing to change."
  exit 0
fi

# ------------------------------------------------------------------------------------------------ apply

((EUID == 0)) || die "--apply needs root"
[[ -e $state ]] && die "--state: '$state' exists already (run --restore '$state' first, or pass another --state)"
mkdir -p "$(dirname "$state")"
{
  echo "# written by tune-host.sh --apply on $(date -u +%Y-%m-%dT%H:%M:%SZ); undo with: tune-host.sh --restore FILE"
  for i in "${!changes[@]}"; do
    read -r kind target _ <<<"${changes[i]}"
    echo "$kind $target ${old_values[i]}"
  done
} >"$state" || die "cannot write $state"
echo "Saved the current values to $state"
for change in "${changes[@]}"; do
  read -r kind target value <<<"$change"
  if [[ $kind == sysctl ]]; then
    sysctl -q -w "$target=$value" || die "sysctl -w $target failed (restore with --restore $state)"
  else
    printf '%s\n' "$value" >"$target" || die "cannot write $target (restore with --restore $state)"
  fi
  echo "set $target = $value"
done
echo "Done. These settings do not survive a reboot: put the sysctls in /etc/sysctl.d/90-ringtun.conf to keep them."
