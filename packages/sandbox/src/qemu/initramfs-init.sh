#!/bin/sh
# The guest's first program (busybox sh, PID 1 in the initramfs). Loads the boot modules, finds the
# two disks by their serial (berth-base: the shared read-only root; berth-disk: this guest's own),
# mounts the overlay of both as the root, hands the per-guest files in /berth (appended to this
# initramfs by the host) to the real root's tmpfs /run, then switch_root to the guest's init.
# Anything that fails stops the boot with a message on the console (the host's console.log).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() {
  echo "berth-init: $*" >/dev/console
  echo o >/proc/sysrq-trigger 2>/dev/null
  poweroff -f
}
for m in $(cat /modules/order); do
  insmod "/modules/$m" 2>/dev/null || grep -q "^${m%.ko} " /proc/modules || echo "berth-init: insmod $m failed" >/dev/console
done
disk_with_serial() {
  for d in /sys/block/vd*; do
    [ "$(cat "$d/serial" 2>/dev/null)" = "$1" ] && { echo "/dev/${d##*/}"; return 0; }
  done
  return 1
}
i=0
while ! base=$(disk_with_serial berth-base) || ! own=$(disk_with_serial berth-disk); do
  i=$((i + 1))
  [ $i -gt 200 ] && fail "the disks berth-base and berth-disk did not appear"
  sleep 0.05
done
mount -t ext4 -o ro "$base" /lower || fail "cannot mount the base image $base"
mount -t ext4 "$own" /disk || fail "cannot mount this guest's disk $own"
mkdir -p /disk/upper /disk/work
mount -t overlay overlay -o "lowerdir=/lower,upperdir=/disk/upper,workdir=/disk/work" /newroot || fail "cannot mount the overlay root"
mount -t tmpfs -o mode=0755,size=16m run /newroot/run || fail "no tmpfs for /run"
# The container engine's state needs a real filesystem (overlayfs cannot stack its upper dir on
# another overlay): the guest's own disk, directly.
mkdir -p /disk/data /newroot/var/lib/berth
mount --bind /disk/data /newroot/var/lib/berth || fail "cannot bind /var/lib/berth"
mkdir -p /newroot/run/berth /newroot/run/berth-vm
chmod 0700 /newroot/run/berth-vm
cp /berth/token /newroot/run/berth/token && chmod 0600 /newroot/run/berth/token
cp /berth/config /newroot/run/berth-vm/config
hostname=$(cat /berth/hostname)
echo "$hostname" >/newroot/etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$hostname" >/newroot/etc/hosts
rm -rf /berth
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot /usr/bin/tini -s -- /opt/berth/vm/guest-init
