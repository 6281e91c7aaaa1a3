#!/usr/bin/env bash
# The "two hosts" test of deepseek.distributed: two network namespaces joined by a veth
# pair stand for two machines; mpirun starts one rank in each (its rsh agent enters the
# other namespace instead of ssh-ing to another host), Open MPI talks TCP only
# (`--mca btl self,tcp`), and the DDP case of crates/deepseek/tests/distributed.rs (DDP on
# 2 ranks == one process on the combined batch over 20 steps) must pass across them.
#
#   bash scripts/test_two_hosts.sh <the distributed test binary>
#
# Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2 (installed with apt when missing).
# Exit status 0: passed; 1: failed; 2: namespaces cannot be made here (the reason printed).
set -euo pipefail
EXE="$(readlink -f "$1")"
if ! command -v ip >/dev/null 2>&1; then
    apt-get install -y -qq iproute2 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq iproute2; }
fi
tag="ds$$"
A="${tag}a" B="${tag}b"
IPA=10.213.77.1 IPB=10.213.77.2 NET=10.213.77.0/24
work="$(mktemp -d)"
cleanup() {
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$B" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
if ! ip netns add "$A" 2>"$work/err"; then
    echo "SKIP two hosts: cannot create a network namespace here: $(cat "$work/err")" >&2
    exit 2
fi
ip netns add "$B"
ip link add "${tag}va" type veth peer name "${tag}vb"
ip link set "${tag}va" netns "$A"
ip link set "${tag}vb" netns "$B"
ip -n "$A" addr add "$IPA/24" dev "${tag}va"
ip -n "$B" addr add "$IPB/24" dev "${tag}vb"
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set "${tag}va" up
ip -n "$B" link set "${tag}vb" up
# mpirun's remote-shell agent: "<agent> <host> <command...>" runs the command in the
# namespace that owns the host's address.
cat >"$work/agent" <<AGENT
#!/bin/sh
host="\$1"; shift
case "\$host" in
    $IPA) ns=$A ;;
    $IPB) ns=$B ;;
    *) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" /bin/sh -c "\$*"
AGENT
chmod +x "$work/agent"
log="$work/log"
set +e
timeout 180 ip netns exec "$A" mpirun --allow-run-as-root -np 2 --host "$IPA,$IPB" \
    --mca plm_rsh_agent "$work/agent" --mca btl self,tcp \
    --mca btl_tcp_if_include "$NET" --mca oob_tcp_if_include "$NET" \
    -x DEEPSEEK_DIST_CASE=ddp -x DEEPSEEK_DIST_TIMEOUT=60 -x DEEPSEEK_NUM_THREADS=1 \
    -x DEEPSEEK_DIST_SHOW_NETNS=1 -x PATH -x LD_LIBRARY_PATH \
    "$EXE" >"$log" 2>&1
rc=$?
set -e
nets="$(grep -ao 'netns net:\[[0-9]*\]' "$log" | sort -u | wc -l)"
if [ "$rc" = 0 ] && [ "$(grep -ac 'case ok' "$log")" = 2 ] && [ "$nets" = 2 ]; then
    grep -a 'netns' "$log"
    echo "ok   two hosts (2 network namespaces over a veth pair, btl self,tcp): DDP == one process"
else
    cat "$log"
    echo "FAIL: two hosts (exit $rc, $nets distinct namespaces)" >&2
    exit 1
fi
