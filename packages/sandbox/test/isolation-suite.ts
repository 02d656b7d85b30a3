// Two sandboxes side by side: they cannot see each other, the host, or anything of the host that
// was not handed in on purpose. Run against every driver (isolation.test.ts: namespaces,
// uml-isolation.test.ts: uml, qemu-isolation.test.ts: qemu); what a driver does differently by
// design is said where it differs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { AgentClient, type SandboxDriver, type SandboxSpec } from "../src/index.js";
import { sh, testId } from "./sandbox-fixture.js";

export interface DriverUnderTest {
  name: string;
  makeDriver(): SandboxDriver;
  /**
   * "namespaces": the learner shares the host's kernel (user namespace, seccomp, read-only binds);
   * "vm": the learner has a kernel of their own (uml, qemu), whose knobs are theirs to turn.
   */
  kind: "namespaces" | "vm";
  /** How many times slower processes run in it than in a namespaces sandbox (default: the driver's timeScale after prepare()). */
  timeScale?: number;
  /** kind "vm": the names its own virtual disks have in the guest's /proc/partitions (uml: ubda..., qemu: vda...). */
  disks?: RegExp;
  /**
   * Containment: how long hogs are started one after another (default 2 s × timeScale). A guest
   * whose kernel reclaims its page cache under emulation before each OOM kill (qemu under TCG)
   * needs longer for two kills.
   */
  hogWindowSeconds?: number;
  /** Limits for both sandboxes (default: the driver's defaults, what a learner gets). */
  limits?: SandboxSpec["limits"];
}

export function isolationTests(t: DriverUnderTest): void {
  if (t.kind === "vm" && !t.disks) throw new Error(`isolation suite (${t.name}): a VM driver must say what its own disks are called (disks)`);
  const driver = t.makeDriver();
  // Known after prepare() (a VM driver's accelerator decides it).
  const scale = () => t.timeScale ?? driver.timeScale ?? 1;
  const idA = testId("isoa");
  const idB = testId("isob");
  let a: AgentClient;
  let b: AgentClient;

  beforeAll(async () => {
    await driver.prepare();
    await Promise.all([driver.create({ id: idA, hostname: "box-a", limits: t.limits }), driver.create({ id: idB, hostname: "box-b", limits: t.limits })]);
    // (the endpoints carry the driver's timeScale: the handshake is stretched by the client)
    a = await AgentClient.connect(await driver.connect(idA));
    b = await AgentClient.connect(await driver.connect(idB));
  });

  afterAll(async () => {
    a?.close();
    b?.close();
    await Promise.all([driver.destroy(idA), driver.destroy(idB)]);
  });

  describe(`isolation between sandboxes (${t.name})`, () => {
    it("each has its own hostname", async () => {
      expect((await sh(a, "hostname")).stdout).toBe("box-a\n");
      expect((await sh(b, "hostname")).stdout).toBe("box-b\n");
    });

    it("a file written in one is absent in the other (and from the shared base)", async () => {
      expect((await sh(a, "echo secret > /root/only-in-a && echo x > /etc/only-in-a && cat /root/only-in-a")).stdout).toBe("secret\n");
      const r = await sh(b, "ls /root/only-in-a /etc/only-in-a 2>&1; echo rc=$?");
      expect(r.stdout).toMatch(/No such file[\s\S]*No such file[\s\S]*rc=2/);
    });

    it("processes of one are invisible from the other, and the host's from both", async () => {
      await sh(a, "exec -a berth-marker-in-a sleep 1000 & disown; true");
      const psA = (await sh(a, "ps -eo args")).stdout;
      expect(psA).toContain("berth-marker-in-a");
      for (const c of [a, b]) {
        const ps = (await sh(c, "ps -eo pid,args --no-headers")).stdout;
        if (c === b) expect(ps).not.toContain("berth-marker-in-a");
        // Only the sandbox's own: tini as PID 1, the agent, this command. No vitest, no host init.
        // (qemu's tini runs with -s, as a subreaper; it is PID 1 all the same)
        expect(ps).toMatch(/^\s*1 \/usr\/bin\/tini (-s )?-- \/usr\/bin\/node \/opt\/berth\/agent\.mjs/);
        expect(ps).not.toMatch(/vitest|process_api|runc|dockerd|containerd/);
      }
    });

    it.runIf(t.kind === "namespaces")("sees no host docker socket, no repository, and only the agent and engine in /opt/berth (read-only)", async () => {
      const r = await sh(
        a,
        [
          // The sandbox's docker.sock is its own engine's (a socket the agent's child made inside),
          // never a mount: the host's socket is not handed in, and neither is any docker state.
          "for i in $(seq 100); do test -S /var/run/docker.sock && break; sleep 0.1; done; test -S /var/run/docker.sock && echo own-socket",
          "grep -c 'docker\\.sock\\|/var/lib/docker\\|containerd' /proc/self/mountinfo",
          "grep -c ' /usr/local/bin/docker ro,' /proc/self/mountinfo",
          "ls /work /labs 2>&1 | grep -c 'No such file'",
          "ls /opt/berth | tr '\\n' ' '; echo",
          "ls /opt/berth/node_modules | tr '\\n' ' '; echo",
          "touch /opt/berth/x 2>&1 | grep -c 'Read-only'",
          "touch /usr/bin/node 2>/dev/null; echo node-write=$?",
          "grep -c ' /usr/bin/node ro,' /proc/self/mountinfo",
        ].join("; "),
      );
      expect(r.stdout).toBe("own-socket\n0\n1\n2\nagent.mjs bin engine.mjs node_modules \nfs-xattr node-pty \n1\nnode-write=1\n1\n");
    });

    it("cannot read the agent's token: the file is gone and the environment never had it", async () => {
      const r = await sh(a, "echo $(ls -A /run/berth); grep -c BERTH_AGENT_TOKEN= /proc/1/environ /proc/$(pgrep -f agent.mjs | head -1)/environ");
      // (empty: the agent's socket is the host's, inherited as an fd; the token file is deleted. A
      // qemu guest's agent listens on its socket there, which its link dials: no token in it.)
      expect(r.stdout.split("\n")[0].replace(t.kind === "vm" ? "agent.sock" : "", "").trim()).toBe("");
      expect(r.stdout).not.toMatch(/environ:[1-9]/);
      const token = (await driver.connect(idA)).token;
      const grep = await sh(a, `grep -rl ${token} /run /root /tmp /etc /var 2>/dev/null | wc -l`);
      expect(grep.stdout).toBe("0\n");
    });

    it.runIf(t.kind === "namespaces")("cannot use the kernel keyring (shared per host uid) or other denied syscalls", async () => {
      // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING) = 250 and bpf = 321 on x86_64.
      const r = await sh(a, `perl -e 'my $r = syscall(250, 0, -4, 0); print "$r ", $!+0, "\n"; $r = syscall(321, 0, 0, 0); print "$r ", $!+0, "\n"'`);
      expect(r.stdout).toBe("-1 1\n-1 1\n");
      // Not everything is refused: unshare, mount and friends are the course.
      expect((await sh(a, "unshare --mount --uts hostname")).stdout).toBe("box-a\n");
    });

    it.runIf(t.kind === "namespaces")("root inside is not root on the host: kernel knobs, raw memory and host devices are refused", async () => {
      const r = await sh(
        a,
        [
          "echo '|/tmp/x' > /proc/sys/kernel/core_pattern 2>/dev/null; echo core_pattern=$?",
          "echo b > /proc/sysrq-trigger 2>/dev/null; echo sysrq=$?",
          "head -c1 /proc/kcore >/dev/null 2>&1; echo kcore=$?",
          "mount -t sysfs sysfs /mnt 2>/dev/null; echo sysfs=$?",
          "mknod /tmp/disk b 8 0 2>/dev/null; echo mknod=$?",
          "ls /dev | tr '\\n' ' '; echo",
          "cat /proc/self/uid_map",
        ].join("; "),
      );
      expect(r.stdout).toMatch(/core_pattern=1\nsysrq=1\nkcore=1\nsysfs=(1|32)\nmknod=1\n/);
      expect(r.stdout).not.toMatch(/\b(sd|vd|nvme|loop)/);
      expect(r.stdout).toMatch(/^\s*0\s+100000\s+65536$/m);
    });
  });

  describe.runIf(t.kind === "vm")(`a kernel of its own (${t.name})`, () => {
    it("sees no host docker socket, no repository, and the agent and engine in /opt/berth", async () => {
      const r = await sh(
        a,
        [
          // The engine starts after the agent: in a guest that takes a while (30 s at timeScale 1).
          `for i in $(seq ${Math.round(300 * scale())}); do test -S /var/run/docker.sock && break; sleep 0.1; done; test -S /var/run/docker.sock && echo own-socket`,
          "grep -c 'docker\\.sock\\|/var/lib/docker\\|containerd' /proc/self/mountinfo",
          "ls /work /labs 2>&1 | grep -c 'No such file'",
          "ls /opt/berth | tr '\\n' ' '; echo",
        ].join("; "),
        { timeoutMs: Math.min(600_000, 60_000 * scale()) },
      );
      // (qemu: vm/ holds the guest's own init and link program, nothing of the host's)
      expect(r.stdout).toMatch(/^own-socket\n0\n2\nagent\.mjs bin engine\.mjs node_modules (vm )?\n$/);
    });

    it("its kernel's knobs are its own: core_pattern and hostname changed inside leave the host's alone", async () => {
      const host = readFileSync("/proc/sys/kernel/core_pattern", "utf8");
      const r = await sh(a, "echo '|/tmp/x %p' > /proc/sys/kernel/core_pattern && cat /proc/sys/kernel/core_pattern; uname -r; grep -c . /proc/modules");
      expect(r.stdout.split("\n")[0]).toBe("|/tmp/x %p");
      // Another kernel than the host's (whose release this process sees).
      expect(r.stdout.split("\n")[1]).not.toBe(readFileSync("/proc/sys/kernel/osrelease", "utf8").trim());
      expect(readFileSync("/proc/sys/kernel/core_pattern", "utf8")).toBe(host);
      expect((await sh(b, "cat /proc/sys/kernel/core_pattern")).stdout).not.toContain("/tmp/x");
    });

    it("sees none of the host's devices or disks but its own", async () => {
      const r = await sh(a, "ls /dev | tr '\\n' ' '; echo; awk 'NR > 2 && NF == 4 {print $4}' /proc/partitions | tr '\\n' ' '");
      const [dev, partitions] = r.stdout.split("\n").map((l) => l.trim().split(/\s+/).filter(Boolean));
      // Every block device the guest has is one of its own virtual disks; no host disk, loop
      // device or NVMe namespace shows through.
      expect(partitions.length).toBeGreaterThan(0);
      for (const p of partitions) expect(p).toMatch(t.disks!);
      const blockish = dev.filter((d) => /^(sd|vd|hd|xvd|nvme|ubd|loop\d|mmcblk|dm-|md\d)/.test(d));
      for (const d of blockish) expect(d).toMatch(t.disks!);
    });
  });
}
