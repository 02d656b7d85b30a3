// PID 1 of a uml guest, written into the root image as /sbin/berth-uml-init. The kernel runs it
// with the non-secret settings from its command line as environment variables (berth_*: the kernel
// hands every unknown `name=value` parameter to init that way) and the secrets on the seed disk
// (/dev/ubdc), which it wipes after reading. It sets up the guest, then starts two agents:
//   - the trusted agent (port TRUSTED_AGENT_PORT, cgroup /berth): runs checks and reads stats,
//     outside the learner's pid namespace, so a learner finds no trace of a running check;
//   - the learner's agent (port LEARNER_AGENT_PORT) in a pid, mount and cgroup namespace of its own,
//     in the cgroup /learner that carries the sandbox's limits, without CAP_SYS_MODULE/SYS_RAWIO.
// The engine runs under the learner's agent and uses the guest's own cgroup v2 (the kernel boots
// with cgroup_no_v1=all: there is no v1 hierarchy to fall back on).

/** Bump when the script changes: it is part of the root image's cache key. */
export const GUEST_INIT_VERSION = 4;
export const GUEST_INIT_PATH = "/sbin/berth-uml-init";
export const LEARNER_AGENT_PORT = 7701;
export const TRUSTED_AGENT_PORT = 7702;
/** debian:bookworm's shared store in the root image (the namespaces driver binds the same at this path). */
export const GUEST_SHARED_IMAGES = "/opt/berth-images";
/** Where the learner's agent finds the lab registry (as in a namespaces sandbox). */
export const GUEST_REGISTRY_SOCKET = "/run/berth-gw/registry.sock";
/** Where the trusted side keeps the pid through which checks enter the learner's namespaces. */
export const LEARNER_PID_FILE = "/run/berth-trusted/learner.pid";

export const GUEST_INIT = String.raw`#!/bin/bash
# Berth uml guest init: see packages/sandbox/src/uml/guest-init.ts.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root
say() { echo "berth-uml-init: [$(cut -d' ' -f1 /proc/uptime 2>/dev/null)] $*" >&2; }
# Exiting PID 1 panics the kernel, and the guest process ends on the host: create() sees it.
fail() { say "$*"; exit 1; }

mount -t proc -o nosuid,nodev,noexec proc /proc || fail "no /proc"
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mountpoint -q /dev || mount -t devtmpfs -o nosuid devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs -o nosuid,nodev,mode=1777 shm /dev/shm
mount -t mqueue -o nosuid,nodev,noexec mqueue /dev/mqueue
mount -t tmpfs -o nosuid,nodev,mode=755 run /run
mount -t tmpfs -o nosuid,nodev,mode=1777 tmp /tmp
# Only the unified hierarchy (cgroup_no_v1=all): the guest is a cgroup v2 machine whatever the host is.
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate cgroup2 /sys/fs/cgroup || fail "no cgroup2"
mkdir -p /var/lib/berth
mount -t ext4 -o nodev /dev/ubdb /var/lib/berth || fail "the sandbox disk (ubdb) does not mount"
mkdir -p /var/lib/berth/engine

# The secrets: read once from the seed disk, which is wiped at once (its host file with it).
seed=$(head -c 4096 /dev/ubdc | tr -d '\0')
dd if=/dev/zero of=/dev/ubdc bs=4096 count=1 conv=fsync status=none 2>/dev/null
agent_token=$(sed -n 's/^agent_token=\([0-9a-f]\{64\}\)$/\1/p' <<<"$seed")
trusted_token=$(sed -n 's/^trusted_token=\([0-9a-f]\{64\}\)$/\1/p' <<<"$seed")
unset seed
[ -n "$agent_token" ] && [ -n "$trusted_token" ] || fail "no tokens on the seed disk"
say "mounted"

hostname "$berth_hostname"
echo "$berth_hostname" > /etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$berth_hostname" > /etc/hosts
: > /etc/resolv.conf
for ns in ${"$"}{berth_dns//,/ }; do echo "nameserver $ns" >> /etc/resolv.conf; done

# eth0 is the vector interface on the host's veth peer; the host firewall checks its address.
ip link set lo up
ip link set vec0 name eth0 2>/dev/null || true
ip addr add "$berth_addr/$berth_prefix" dev eth0 || fail "no address on eth0"
ip link set eth0 up
ip route add default via "$berth_gw"

# What the engine and the labs need, loaded now (the kernel also loads others on demand through
# /sbin/modprobe, busybox's).
for m in overlay veth bridge br_netfilter nf_conntrack nf_nat iptable_nat iptable_filter xt_MASQUERADE xt_conntrack xt_addrtype xt_nat xt_tcpudp; do
  modprobe "$m" 2>/dev/null || say "module $m did not load"
done
sysctl -qw net.ipv4.ip_forward=1
say "network and modules ready"

# cgroups: /berth for init and the trusted agent, /learner for everything the learner starts,
# with the sandbox's limits on it.
echo "+cpu +memory +pids +io" > /sys/fs/cgroup/cgroup.subtree_control
mkdir -p /sys/fs/cgroup/berth /sys/fs/cgroup/learner
echo $$ > /sys/fs/cgroup/berth/cgroup.procs
L=/sys/fs/cgroup/learner
echo "$berth_memory" > $L/memory.max
echo 0 > $L/memory.swap.max 2>/dev/null
echo "$berth_pids" > $L/pids.max
echo "$berth_cpu_max 100000" > $L/cpu.max

# The agent inherits its listening socket as fd 3 (as in the namespaces driver); perl makes it.
listen_on() {
  local port=$1; shift
  exec perl -MSocket -e '
    BEGIN { $^F = 255 }  # no close-on-exec on what perl opens: fd 3 must reach the agent
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1);
    bind($s, pack_sockaddr_in($ARGV[0], inet_aton($ARGV[1]))) or die "bind: $!";
    listen($s, 64) or die "listen: $!";
    require POSIX;
    if (fileno($s) != 3) { POSIX::dup2(fileno($s), 3) or die "dup2: $!"; POSIX::close(fileno($s)); }
    shift @ARGV; shift @ARGV; exec { $ARGV[0] } @ARGV or die "exec: $!";
  ' "$port" "$berth_addr" "$@"
}
agent_env=(PATH=$PATH HOME=/root LANG=C.UTF-8 BERTH_AGENT_LISTEN_FD=3)

mkdir -m 700 /run/berth-trusted
printf %s "$trusted_token" > /run/berth-trusted/token
( listen_on ${TRUSTED_AGENT_PORT} env -i "${"$"}{agent_env[@]}" BERTH_AGENT_TOKEN_FILE=/run/berth-trusted/token /usr/bin/node /opt/berth/agent.mjs ) >>/var/log/berth-trusted-agent.log 2>&1 &

mkdir -p -m 755 /run/berth
printf %s "$agent_token" > /run/berth/token
unset agent_token trusted_token
engine_env=()
if [ "$berth_engine" = 1 ]; then
  engine_env=(BERTH_ENGINE_BUNDLE=/opt/berth/engine.mjs BERTH_ENGINE_SHIM=/opt/berth/bin/berth-shim)
  # debian:bookworm, in the root image: the engine links its layer instead of building or copying it.
  if [ -f ${GUEST_SHARED_IMAGES}/image/repositories.json ]; then
    mount --bind ${GUEST_SHARED_IMAGES} ${GUEST_SHARED_IMAGES} && mount -o remount,bind,ro ${GUEST_SHARED_IMAGES} ${GUEST_SHARED_IMAGES}
    engine_env+=(BERTH_ENGINE_SHARED_IMAGES=${GUEST_SHARED_IMAGES})
  fi
fi

# The lab registry: the host's gateway for this sandbox listens on berth_registry (its uplink
# gateway); a relay here turns it into the socket a namespaces sandbox has, from which the agent
# serves localhost:5000 and the engine its mirror. The relay is perl (in the image, a few MB),
# forking per connection, half-closes passed on; it runs in /berth, out of the learner's sight.
if [ -n "$berth_registry" ] && [ "$berth_registry" != none ]; then
  mkdir -p -m 755 /run/berth-gw
  perl -MIO::Socket::UNIX -MIO::Socket::INET -MIO::Select -e '
    my ($path, $to) = @ARGV;
    unlink $path;
    my $srv = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $path, Listen => 64) or die "listen $path: $!";
    chmod 0666, $path;
    $SIG{CHLD} = "IGNORE";
    while (1) {
      my $c = $srv->accept or next;
      my $pid = fork;
      if (defined $pid && $pid == 0) {
        close $srv;
        my $u = IO::Socket::INET->new(PeerAddr => $to, Proto => "tcp") or exit 1;
        my %peer = ($c => $u, $u => $c);
        my $sel = IO::Select->new($c, $u);
        while ($sel->count && (my @ready = $sel->can_read)) {
          for my $s (@ready) {
            my $n = sysread($s, my $buf, 65536);
            if (!$n) { shutdown($peer{$s}, 1); $sel->remove($s); next; }
            for (my $off = 0; $off < $n;) { my $w = syswrite($peer{$s}, $buf, $n - $off, $off); exit 0 unless defined $w; $off += $w; }
          }
        }
        exit 0;
      }
      close $c;
    }
  ' ${GUEST_REGISTRY_SOCKET} "$berth_registry" >>/var/log/berth-registry-relay.log 2>&1 &
  engine_env+=(BERTH_REGISTRY_SOCKET=${GUEST_REGISTRY_SOCKET} BERTH_REGISTRY_MIRROR=http://127.0.0.1:5000)
fi
(
  echo $BASHPID > $L/cgroup.procs
  # unshare keeps this pid (perl execs it) and enters the new mount and cgroup namespaces itself:
  # the trusted side enters them through it.
  listen_on ${LEARNER_AGENT_PORT} unshare --pid --mount --cgroup --fork --mount-proc --propagation private /bin/bash -c '
    umount -l /sys/fs/cgroup && mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate cgroup2 /sys/fs/cgroup
    mount -t tmpfs -o size=4k,mode=700 none /run/berth-trusted
    exec setpriv --bounding-set=-sys_module,-sys_rawio,-syslog env -i "$@" /usr/bin/tini -- /usr/bin/node /opt/berth/agent.mjs
  ' learner "${"$"}{agent_env[@]}" BERTH_AGENT_TOKEN_FILE=/run/berth/token "${"$"}{engine_env[@]}"
) >>/var/log/berth-agent.log 2>&1 &
learner=$!
echo $learner > ${LEARNER_PID_FILE}
# unshare itself stays outside the learner's pid namespace: left in /learner it would be a process
# the learner can neither see (cgroup.procs shows it as 0) nor move, and the learner's cgroup could
# never be emptied to hand controllers down (v2's no-internal-processes rule). Once it has forked
# the namespace's first process (born in /learner, the cgroup namespace's root), it goes to /berth.
for _ in $(seq 200); do [ -n "$(cat /proc/$learner/task/$learner/children 2>/dev/null)" ] && break; sleep 0.05; done
echo $learner > /sys/fs/cgroup/berth/cgroup.procs || say "could not move unshare out of the learner's cgroup"
say "agents started"

# PID 1 reaps orphans until the learner's world ends; then the guest halts.
wait $learner
say "the learner's agent ended; halting"
echo o > /proc/sysrq-trigger
sleep 5
`;
