#!/usr/bin/env bash
# Runs `ringbench run --topology hosts` against a stand-in client host on
# this machine, as the tests do: Debian's sshd in a network namespace joined
# to this one by a veth pair (management: ssh), with a generated host key
# and client key, listening on that pair's address only; a second pair
# carries the test traffic, as a lab's test NIC does (a DPDK port takes its
# interface over, ssh included). Extra arguments go to `run`
# (default: an epoll TCP echo); {iface} in them names this host's end of
# the test link, for DPDK: --opt vdev=net_af_xdp0,iface={iface}. Everything it
# makes is removed on exit.
# Needs root and openssh-server.
set -euo pipefail
bin=${BIN:-bin/ringbench}
[ "$(id -u)" -eq 0 ] || { echo "hosts-demo: needs root" >&2; exit 1; }
[ -x /usr/sbin/sshd ] || { echo "hosts-demo: needs /usr/sbin/sshd (openssh-server)" >&2; exit 1; }
id=$$
ns=rbdemo-$id
here=rbdh$id
there=rbdc$id
net=10.206.$((id % 250))
dhere=rbdd$id # the test link
dthere=rbde$id
dnet=10.207.$((id % 250))
tmp=$(mktemp -d)
sshd_pid=
cleanup() {
  [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null && wait "$sshd_pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null || true
  ip link del "$here" 2>/dev/null || true
  ip link del "$dhere" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

ip netns add "$ns"
ip link add "$here" type veth peer name "$there" netns "$ns"
ip addr add "$net.1/30" dev "$here"
ip link set "$here" up
ip -n "$ns" addr add "$net.2/30" dev "$there"
ip -n "$ns" link set "$there" up
ip -n "$ns" link set lo up
ip link add "$dhere" type veth peer name "$dthere" netns "$ns"
ip addr add "$dnet.1/30" dev "$dhere"
ip link set "$dhere" up
ip -n "$ns" addr add "$dnet.2/30" dev "$dthere"
ip -n "$ns" link set "$dthere" up

ssh-keygen -q -t ed25519 -N '' -f "$tmp/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/id"
cp "$tmp/id.pub" "$tmp/authorized_keys"
cat > "$tmp/sshd_config" <<CONF
ListenAddress $net.2
HostKey $tmp/host_key
PermitRootLogin prohibit-password
AuthorizedKeysFile $tmp/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
PidFile $tmp/sshd.pid
CONF
mkdir -p /run/sshd # sshd's privilege-separation folder
ip netns exec "$ns" /usr/sbin/sshd -D -e -f "$tmp/sshd_config" 2>"$tmp/sshd.log" &
sshd_pid=$!
ssh_cmd="ssh -F /dev/null -i $tmp/id -o UserKnownHostsFile=$tmp/known -o StrictHostKeyChecking=accept-new -o BatchMode=yes -o ConnectTimeout=5"
for _ in $(seq 50); do
  $ssh_cmd "root@$net.2" true 2>/dev/null && break
  sleep 0.1
done

args=("${@//\{iface\}/$dhere}") # {iface}: this host's end of the test link (for --opt vdev=...,iface={iface})
# The stand-in client host shares this machine's CPUs: its generator keeps to
# CPU 0, off the server's core.
[ ${#args[@]} -gt 0 ] || args=(--backend epoll --workload echo --proto tcp --conns 16 --depth 4 --size 64 --duration 3s --client-cpus 0)
set -x
"$bin" run --topology hosts --client-host "root@$net.2" --server-addr "$dnet.1" --ssh "$ssh_cmd" \
  --remote-dir "$tmp/remote" --out "$tmp/out" "${args[@]}"
