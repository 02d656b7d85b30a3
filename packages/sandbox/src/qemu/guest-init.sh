#!/bin/bash
# The qemu guest's init, run by tini (PID 1) after the initramfs has mounted the root. Two worlds:
#  - trusted: this script and berth-vmmux (the link to the host, stats, trusted checks), in the
#    guest's first pid and mount namespaces;
#  - the learner's: the agent and everything it starts, in a pid, mount and cgroup namespace of
#    their own, in the cgroup "learner" with the sandbox's pids limit, where /run/berth-vm (this
#    side's state) is covered by an empty tmpfs.
# The learner is root in this kernel, so the split is about not getting in each other's way (and
# not seeing the checks), not a boundary: the boundary is the VM (docs/sandboxes.md, "qemu").
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
log() { echo "guest-init: $*" >/dev/console; }
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=1777 tmp /tmp
hostname "$(cat /etc/hostname)"
ip link set lo up
# BERTH_PIDS_MAX, BERTH_ENGINE, BERTH_REGISTRY: exported, the learner's bash -c below reads the last two.
set -a
. /run/berth-vm/config
set +a

# Controllers for the learner's cgroup; the learner's limits inside the VM (the VM's memory and
# CPUs are the real ones, set by the host).
echo "+cpu +memory +pids" >/sys/fs/cgroup/cgroup.subtree_control
mkdir -p /sys/fs/cgroup/learner
echo "$BERTH_PIDS_MAX" >/sys/fs/cgroup/learner/pids.max
# The learner gets the VM's memory less a reserve for this side (the link, checks), so a hog meets
# the learner's own limit (a quick OOM kill of the hog, counted in memory.events) before the whole
# guest runs out and thrashes on the root image's pages.
total_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
echo $(( (total_kb - 24 * 1024) * 1024 )) >/sys/fs/cgroup/learner/memory.max

port=
for p in /sys/class/virtio-ports/*; do
  [ "$(cat "$p/name" 2>/dev/null)" = org.berth.link ] && port=/dev/${p##*/}
done
[ -n "$port" ] || log "no virtio-serial port org.berth.link: the host cannot reach this guest"

# The lab registry (BERTH_REGISTRY=1): berth-vmmux listens on /run/berth-gw/registry.sock and makes
# each connection a registry channel to the host's gateway for this sandbox; the agent's forwarder
# makes that localhost:5000, and the engine's docker.io mirror.
reg_args=()
if [ -n "${BERTH_REGISTRY:-}" ]; then
  mkdir -p -m 0755 /run/berth-gw
  reg_args=(/run/berth-gw/registry.sock)
fi

# The learner's world. The agent binds /run/berth/agent.sock (the mux connects to it) and reads
# then deletes /run/berth/token. Its stderr goes to the console (the host's vm/console.log, bounded
# by QEMU's file size limit), where a create() that fails shows it.
(
  echo "$BASHPID" >/sys/fs/cgroup/learner/cgroup.procs
  exec unshare --pid --fork --mount --cgroup --mount-proc --propagation private -- /bin/bash -c '
    mount -t tmpfs -o size=4k,mode=0700 none /run/berth-vm
    exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=xterm-256color \
      BERTH_AGENT_SOCKET=/run/berth/agent.sock BERTH_AGENT_TOKEN_FILE=/run/berth/token \
      ${BERTH_ENGINE:+BERTH_ENGINE_BUNDLE=/opt/berth/engine.mjs} \
      ${BERTH_REGISTRY:+BERTH_REGISTRY_SOCKET=/run/berth-gw/registry.sock BERTH_REGISTRY_MIRROR=http://127.0.0.1:5000} \
      /usr/bin/tini -s -- /usr/bin/node /opt/berth/agent.mjs'
) >/dev/console 2>&1 &
echo $! >/run/berth-vm/learner.pid

/opt/berth/vm/berth-vmmux guest "$port" /run/berth/agent.sock /run/berth-vm/learner.pid "${reg_args[@]}" >/dev/console 2>&1 &
log "up"
# tini reaps; this script just stays (its exit would end the guest's init).
while :; do wait; sleep 3600; done
