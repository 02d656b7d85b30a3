/**
 * `docker run` options a workshop's advanced chapters use, against a real dockerd: --group-add,
 * --ulimit, --oom-score-adj (lowering refused: no CAP_SYS_RESOURCE here), --sysctl, --add-host,
 * --dns-option, --domainname, --device, --uts host, --pid host and --pid container:<name>; exec
 * refused in a paused container; OOMKilled when the OOM killer took a process but not PID 1;
 * --privileged.
 */
import fs from "node:fs";
import { describe, expect, it } from "vitest";

import { same, sh, steps, berthAndDockerd } from "./differential";

const pair = berthAndDockerd();

describe("run options", () => {
  it("--group-add, --ulimit, --oom-score-adj, --sysctl", async () => {
    await same(pair.berth, pair.dockerd, steps(
      "docker run --rm --group-add 10 --group-add 4242 busybox id",
      "docker run --rm --group-add audio busybox id",
      "docker run --rm --ulimit nofile=512:1024 --ulimit nproc=100 busybox sh -c 'ulimit -n; ulimit -Hn; ulimit -u'",
      "docker run --rm --oom-score-adj 500 busybox cat /proc/self/oom_score_adj",
      "docker run --rm --oom-score-adj -500 busybox true 2>/dev/null",
      "docker run --rm --sysctl net.ipv4.ip_forward=1 --sysctl kernel.shmmax=1000000 busybox sh -c 'cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward'",
      "docker run --rm busybox cat /proc/sys/kernel/shmmax",
      "docker run --rm --sysctl vm.swappiness=10 busybox true",
    ));
  });

  it("--add-host, --dns-option, --domainname, --device", async () => {
    await same(pair.berth, pair.dockerd, steps(
      "docker run --rm --add-host db:10.0.0.5 --add-host 'h2:::1' busybox cat /etc/hosts",
      "docker run --rm --dns-option ndots:2 --dns-option edns0 busybox grep options /etc/resolv.conf",
      "docker run --rm --domainname example.org --hostname web busybox sh -c 'hostname; cat /proc/sys/kernel/domainname'",
      "docker inspect -f '{{.Config.Domainname}} {{.HostConfig.ExtraHosts}}' $(docker create --domainname example.org --add-host a:1.2.3.4 busybox)",
      "docker run --rm --device /dev/null:/dev/mynull busybox sh -c 'ls -l /dev/mynull | cut -c1-10,35-45; echo hi > /dev/mynull && echo written'",
      "docker run --rm --device /dev/no-such-device busybox true",
      "docker container prune -f >/dev/null",
    ));
  });

  it("--uts host, --pid host, --pid container:<name>; exec in a paused container", async () => {
    await same(pair.berth, pair.dockerd, steps(
      "test \"$(docker run --rm --uts host busybox hostname)\" = \"$(hostname)\"",
      "docker run --rm --pid host busybox sh -c 'test $(ps | wc -l) -gt 10 && echo sees the host'",
      "docker run -d --name pid-a busybox sleep 100 >/dev/null",
      "docker run --rm --pid container:pid-a busybox ps -o comm",
      "docker run -d --name pid-done busybox true >/dev/null; docker wait pid-done >/dev/null",
      "docker run --rm --pid container:pid-done busybox true",
      "docker pause pid-a >/dev/null",
      "docker exec pid-a true",
      "docker rm -f pid-a pid-done >/dev/null",
    ));
  });

  // dockerd cannot run --privileged on a host whose root lacks some capabilities (runc: "unable to
  // apply caps: operation not permitted"), so ours is checked on its own: every capability the
  // engine itself holds, mounts allowed, /sys writable.
  it("--privileged: every capability the engine holds, mounts allowed, /sys writable (ours)", async () => {
    const bounding = /CapBnd:\s*([0-9a-f]+)/.exec(fs.readFileSync("/proc/self/status", "utf8"))![1]!;
    const out = await sh(pair.berth, steps(
      "docker run --rm --privileged busybox grep CapEff /proc/self/status",
      "docker run --rm --privileged busybox sh -c 'mount -t tmpfs none /tmp && echo mounted'",
      "docker run --rm busybox sh -c 'mount -t tmpfs none /tmp && echo mounted'",
      "docker run --rm --privileged busybox sh -c 'grep \" /sys \" /proc/mounts | cut -d\" \" -f4 | cut -d, -f1'",
      "docker run --rm busybox sh -c 'grep \" /sys \" /proc/mounts | cut -d\" \" -f4 | cut -d, -f1'",
    ));
    expect(out.out).toBe(`CapEff:\t${bounding}\n[0]\nmounted\n[0]\n[1]\nrw\n[0]\nro\n[0]\n\n--stderr--\nmount: permission denied (are you root?)\n`);
  });

  it("OOMKilled when the OOM killer took a child and the container went on to exit 0", async () => {
    // The child makes itself the OOM killer's first choice (oom_score_adj 1000, as any process may
    // raise its own), so PID 1 is never the victim: on a busy host either engine sometimes picked
    // PID 1 (the whole container, 137) instead, and this is about a child.
    await same(pair.berth, pair.dockerd, steps(
      "docker run --name oom-child -m 8m busybox sh -c 'sh -c \"echo 1000 > /proc/self/oom_score_adj; x=\\$(head -c 20000000 /dev/zero | tr \\\"\\\\\\\\0\\\" x)\"; echo child=$?'",
      "docker inspect -f '{{.State.ExitCode}} {{.State.OOMKilled}}' oom-child",
      "docker rm oom-child >/dev/null",
    ));
  });
});
