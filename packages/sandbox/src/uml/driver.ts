// The uml driver: each sandbox is a User-mode Linux guest, a Linux kernel of its own running as an
// ordinary, confined host process. Inside it the same agent and engine run as in the namespaces
// driver, on the guest's own cgroup v2. Design, security argument and numbers: docs/sandboxes.md
// ("The uml driver").
//
// On the host, per sandbox (stateDir/sandboxes/<id>/):
//   meta.json         what list() reports after an orchestrator restart (with the launcher's pid)
//   token, trusted-token   the two agents' tokens (host root only)
//   vm/               owned by the guest's host uid: root.cow (the root image's copy-on-write
//                     file), disk.img (/var/lib/berth, the sandbox's disk limit), seed.img (the
//                     tokens, wiped by the guest at boot)
//   jail/             an empty mount point: the guest process's whole view of the host
//   agent.sock, trusted.sock   socat relays to the guest's two agents (TCP over the uplink)
//   uml.log           the guest's console and the launcher's errors
//
// The guest process: `unshare` gives it new net, mount, ipc, uts and pid namespaces; in the new
// mount namespace a tmpfs jail holds /usr read-only, the sandbox's vm/ files, the root image
// read-only and a tmpfs for guest RAM; then chroot and setpriv drop it to an unprivileged uid with
// no capability but CAP_NET_RAW and no new privileges (its vector interface is a raw socket on the veth peer, the only
// interface in its netns). A host cgroup (berth/<id>, as in the namespaces driver) caps its memory
// (guest RAM + the kernel's own), CPU and processes.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { chown, mkdir, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { ensureBaseRootfs, DEFAULT_STATE_DIR, SANDBOX_ID_BASE } from "../rootfs/build.js";
import { AgentClient } from "../agent-client.js";
import { waitForAgentHealth } from "../wait-agent.js";
import {
  DEFAULT_LIMITS,
  SANDBOX_ID_PATTERN,
  type AgentEndpoint,
  type SandboxDriver,
  type SandboxInfo,
  type SandboxLimits,
  type SandboxSpec,
  type SandboxStats,
  type TrustedExecOptions,
  type TrustedExecResult,
} from "../driver.js";
import { ensureAgentDir } from "../namespaces/agent-dir.js";
import { SandboxCgroup } from "../namespaces/cgroups.js";
import { runHostCommand } from "../namespaces/host-command.js";
import { findHostTools } from "../namespaces/host-tools.js";
import { MIN_DISK_BYTES } from "../namespaces/disk.js";
import { DEFAULT_EGRESS_ALLOW, EgressProxy } from "../namespaces/egress.js";
import { claimSlot, DEFAULT_UPLINK_NET, detachUplinksOf, ensureHostNetwork, GATEWAY_REGISTRY_PORT, removeStaleUplinks, repairHostNetwork, type UplinkNet, type UplinkSlot } from "../namespaces/network.js";
import { registryOwner } from "../namespaces/registry-gateway.js";
import type { RegistryQuota } from "../namespaces/registry-quota.js";
import { GuestRegistry } from "./registry.js";
import { LEARNER_AGENT_PORT, LEARNER_PID_FILE, TRUSTED_AGENT_PORT } from "./guest-init.js";
import { ensureUmlRootImage, removeUnusedUmlImages, UML_KERNEL } from "./image.js";
import { ensureSharedImages } from "../namespaces/shared-images.js";

/**
 * The host uid a guest kernel process runs as: this + its uplink slot (unique among live sandboxes
 * host-wide), so no two guests share a uid. Clear of the namespaces driver's 100000–165535 and the
 * qemu driver's 300000+.
 */
export const UML_HOST_UID_BASE = 400_000;
/** Guest RAM beyond the learner's memory limit: the guest kernel, init, the trusted agent, page cache. */
const GUEST_OVERHEAD_BYTES = 160 * 1024 * 1024;
/** Host memory beyond guest RAM: the kernel binary, page tables, the host processes of guest address spaces. */
const HOST_OVERHEAD_BYTES = 96 * 1024 * 1024;

export interface UmlDriverOptions {
  stateDir?: string;
  /** How long create() waits for the agent to answer health (quiet host: ~2 s to boot, ~2 s for the agents; far more on a loaded one). */
  agentTimeoutMs?: number;
  /** Run the container engine in each sandbox (default true). */
  engine?: boolean;
  /** The names a guest may reach over HTTP, through its egress proxy (as the namespaces driver). */
  egressAllow?: string[];
  /** The uplinks' subnet and slot directory, host-wide (as the namespaces driver's). */
  uplinkNet?: UplinkNet;
  /**
   * The lab registry (e.g. "http://127.0.0.1:5000"): each guest gets localhost:5000 and the
   * engine's mirror through a gateway of its own, as a namespaces sandbox (uml/registry.ts).
   */
  registryUpstream?: string;
  /** Each learner's storage quota in the lab registry (with registryUpstream), as the namespaces driver's. */
  registryQuota?: RegistryQuota;
  /**
   * execTrusted's timeouts are written for a namespaces sandbox (a lab's `timeout=3s`); a guest
   * runs processes several times slower (every system call is trapped), so they are stretched by
   * this factor (default 6).
   */
  timeScale?: number;
}

interface UmlMeta {
  id: string;
  hostname: string;
  createdAt: string;
  limits: SandboxLimits;
  driver: "uml";
  image: string;
  uplink: UplinkSlot;
  /** The host uid the guest kernel runs as. */
  hostUid?: number;
  /** The `unshare` that holds the guest's namespaces; its start time guards against pid reuse. */
  pid?: number;
  pidStart?: string;
  relays?: number[];
  /** The namespace of its pushes in the lab registry, when it has a gateway. */
  registryOwner?: string;
}

const MAX_SOCKET_PATH = 107;

export class UmlDriver implements SandboxDriver {
  readonly name = "uml";
  readonly stateDir: string;
  private readonly agentTimeoutMs: number;
  private readonly engine: boolean;
  private readonly egressAllow: string[];
  readonly timeScale: number;
  /** This process's egress proxies by sandbox id (the guest's HTTP goes there, as a namespaces sandbox's). */
  private readonly egress = new Map<string, Promise<EgressProxy>>();
  /** This process's registry gateways by sandbox id. */
  private readonly registries = new Map<string, Promise<GuestRegistry>>();
  private readonly registryUpstream: string | undefined;
  private readonly registryQuota: RegistryQuota | undefined;
  private readonly uplinkNet: UplinkNet;
  private nameservers: string[] = [];
  private prepared: Promise<{ image: string }> | undefined;

  constructor(opts: UmlDriverOptions = {}) {
    this.stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
    this.agentTimeoutMs = opts.agentTimeoutMs ?? 300_000;
    this.engine = opts.engine ?? true;
    this.egressAllow = opts.egressAllow ?? DEFAULT_EGRESS_ALLOW;
    this.timeScale = opts.timeScale ?? 6;
    this.registryUpstream = opts.registryUpstream;
    this.registryQuota = opts.registryQuota;
    this.uplinkNet = opts.uplinkNet ?? DEFAULT_UPLINK_NET;
    if (this.registryUpstream !== undefined && !/^http:\/\/[^/]+\/?$/.test(this.registryUpstream)) {
      throw new Error(`registryUpstream ${JSON.stringify(this.registryUpstream)}: want http://host:port (the lab registry on this host)`);
    }
  }

  async prepare(onProgress?: (line: string) => void): Promise<void> {
    await this.prepareOnce(onProgress);
    // Guests outlive the process that made them: serve the egress of those no live process serves.
    for (const id of await readdir(join(this.stateDir, "sandboxes"))) {
      const meta = await this.readMeta(id).catch(() => undefined);
      if (!meta || this.egress.has(id) || !this.alive(meta)) continue;
      await this.serveEgress(id, meta.uplink).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "EADDRINUSE") onProgress?.(`sandbox: ${id}: no egress proxy (${err.message})`);
      });
      if (meta.registryOwner) {
        await this.serveRegistry(id, meta.uplink, meta.registryOwner).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== "EADDRINUSE") onProgress?.(`sandbox: ${id}: no registry gateway (${err.message})`);
        });
      }
    }
  }

  /** The guest's registry gateway (uml/registry.ts); EADDRINUSE: another live process serves it. */
  private async serveRegistry(id: string, uplink: UplinkSlot, owner: string): Promise<void> {
    if (!this.registryUpstream) return;
    let reg = this.registries.get(id);
    if (!reg) {
      reg = GuestRegistry.listen({ dir: this.dir(id), uplink, upstream: this.registryUpstream, owner, quota: this.registryQuota });
      this.registries.set(id, reg);
      reg.catch(() => this.registries.get(id) === reg && this.registries.delete(id));
    }
    await reg;
  }

  private prepareOnce(onProgress?: (line: string) => void): Promise<{ image: string }> {
    if (!this.prepared) {
      this.prepared = (async () => {
        if (process.getuid?.() !== 0) throw new Error("the uml driver needs root (host cgroups, the uplink, the guest's jail)");
        if (!existsSync(UML_KERNEL)) throw new Error(`${UML_KERNEL} is missing: install Debian's user-mode-linux (apt-get install user-mode-linux)`);
        const baseRootfs = await ensureBaseRootfs({ stateDir: this.stateDir, onProgress });
        onProgress?.("sandbox (uml): building the agent bundle");
        const agentDir = await ensureAgentDir(this.stateDir);
        // debian:bookworm for the engine inside, as in a namespaces sandbox (built once, ~16 s,
        // from Debian's archive); without it a guest still works, and prepare() says so.
        const sharedImages = this.engine
          ? await ensureSharedImages(this.stateDir, SANDBOX_ID_BASE, onProgress).catch((err: Error) => {
              onProgress?.(`sandbox (uml): no shared debian:bookworm (${err.message})`);
              return undefined;
            })
          : undefined;
        const image = await ensureUmlRootImage({ stateDir: this.stateDir, baseRootfs, idBase: SANDBOX_ID_BASE, agentDir, hostTools: findHostTools(onProgress), sharedImages, onProgress });
        await mkdir(join(this.stateDir, "sandboxes"), { recursive: true });
        ({ nameservers: this.nameservers } = await ensureHostNetwork(this.uplinkNet));
        for (const slot of await removeStaleUplinks(this.uplinkNet)) onProgress?.(`sandbox: removed a stale uplink (berthv${slot})`);
        await repairHostNetwork(this.uplinkNet);
        const inUse = new Set([image]);
        for (const id of await readdir(join(this.stateDir, "sandboxes"))) {
          const meta = await this.readMeta(id).catch(() => undefined);
          if (meta?.image) inUse.add(meta.image);
        }
        await removeUnusedUmlImages(this.stateDir, inUse);
        return { image };
      })();
      this.prepared.catch(() => (this.prepared = undefined));
    }
    return this.prepared;
  }

  private async serveEgress(id: string, uplink: UplinkSlot): Promise<void> {
    let proxy = this.egress.get(id);
    if (!proxy) {
      proxy = EgressProxy.listen({ gateway: uplink.gateway, client: uplink.address, allow: this.egressAllow });
      this.egress.set(id, proxy);
      proxy.catch(() => this.egress.get(id) === proxy && this.egress.delete(id));
    }
    await proxy;
  }

  /** Stops this process's egress proxies (the guests keep running; a new driver's prepare() serves them). */
  async close(): Promise<void> {
    const all = [...this.egress.values(), ...this.registries.values()];
    this.egress.clear();
    this.registries.clear();
    await Promise.all(all.map((p) => p.then((x) => x.close(), () => {})));
  }

  private dir(id: string): string {
    if (!SANDBOX_ID_PATTERN.test(id)) throw new Error(`invalid sandbox id ${JSON.stringify(id)}: use letters, digits, '.', '_', '-' (at most 63)`);
    return join(this.stateDir, "sandboxes", id);
  }

  async create(spec: SandboxSpec): Promise<SandboxInfo> {
    const dir = this.dir(spec.id);
    if (!/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/.test(spec.hostname)) {
      throw new Error(`invalid hostname ${JSON.stringify(spec.hostname)}: use letters, digits and '-' (one label, at most 63)`);
    }
    if (join(dir, "trusted.sock").length > MAX_SOCKET_PATH) throw new Error(`agent socket path too long for a UNIX socket: use a shorter state dir or id`);
    const limits: SandboxLimits = { ...DEFAULT_LIMITS, ...spec.limits };
    if (!(limits.memoryBytes >= 32 * 1024 * 1024) || !(limits.cpus > 0) || !(Number.isInteger(limits.pids) && limits.pids >= 16) || !(Number.isInteger(limits.diskBytes) && limits.diskBytes >= MIN_DISK_BYTES)) {
      throw new Error(`invalid limits ${JSON.stringify(limits)}: memoryBytes ≥ 32 MiB, cpus > 0, pids an integer ≥ 16, diskBytes an integer ≥ 64 MiB`);
    }
    const { image } = await this.prepareOnce();
    try {
      await mkdir(dir, { mode: 0o711 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new Error(`sandbox ${spec.id} already exists; destroy it first`);
      throw err;
    }
    try {
      const uplink = await claimSlot(dir, spec.id, this.uplinkNet);
      const hostUid = UML_HOST_UID_BASE + uplink.slot;
      const owner = this.registryUpstream ? registryOwner(spec.owner ?? spec.id) : undefined;
      const meta: UmlMeta = { id: spec.id, hostname: spec.hostname, createdAt: new Date().toISOString(), limits, driver: "uml", image, uplink, hostUid, registryOwner: owner };
      await this.writeMeta(meta);
      const token = randomBytes(32).toString("hex");
      const trustedToken = randomBytes(32).toString("hex");
      await writeFile(join(dir, "token"), token, { mode: 0o600 });
      await writeFile(join(dir, "trusted-token"), trustedToken, { mode: 0o600 });

      // The guest's files, owned by its host uid (it opens them after dropping root).
      const vm = join(dir, "vm");
      await mkdir(vm, { mode: 0o700 });
      await mkdir(join(dir, "jail"), { mode: 0o755 });
      const disk = join(vm, "disk.img");
      const fh = await open(disk, "wx", 0o600);
      await fh.truncate(limits.diskBytes);
      await fh.close();
      const seed = Buffer.alloc(4096);
      seed.write(`agent_token=${token}\ntrusted_token=${trustedToken}\n`);
      await writeFile(join(vm, "seed.img"), seed, { mode: 0o600 });
      await runHostCommand("mkfs.ext4", ["-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1", disk]);
      for (const f of [vm, disk, join(vm, "seed.img")]) await chown(f, hostUid, hostUid);

      // The host cgroup: guest RAM + overhead, the CPU limit, and room for the host processes a
      // guest makes (one per guest address space: the guest's own pids limit is the learner's).
      const guestRam = limits.memoryBytes + GUEST_OVERHEAD_BYTES;
      const cgroup = new SandboxCgroup(spec.id);
      await cgroup.create({ ...limits, memoryBytes: guestRam + HOST_OVERHEAD_BYTES, pids: Math.max(512, limits.pids * 2 + 64) }, 0, 0);

      const log = openSync(join(dir, "uml.log"), "a");
      const cmdline = [
        `mem=${Math.ceil(guestRam / 1048576)}M`,
        "ubd0=/s/root.cow,/base/root.img",
        "ubd1=/s/disk.img",
        "ubd2=/s/seed.img",
        "root=/dev/ubda",
        "rw",
        "init=/sbin/berth-uml-init",
        // Only the unified hierarchy: the guest is a cgroup v2 machine whatever the host runs.
        "cgroup_no_v1=all",
        "systemd.unified_cgroup_hierarchy=1",
        `vec0:transport=raw,ifname=up0,depth=64`,
        "con=null",
        "con0=null,fd:1",
        "ssl=null",
        "umid=guest",
        "uml_dir=/tmp",
        "panic=-1",
        "quiet",
        `berth_hostname=${spec.hostname}`,
        `berth_addr=${uplink.address}`,
        `berth_gw=${uplink.gateway}`,
        `berth_prefix=${uplink.prefix}`,
        `berth_dns=${this.nameservers.join(",") || "none"}`,
        `berth_memory=${limits.memoryBytes}`,
        `berth_pids=${limits.pids}`,
        `berth_cpu_max=${Math.round(limits.cpus * 100_000)}`,
        `berth_engine=${this.engine ? 1 : 0}`,
        `berth_registry=${owner ? `${uplink.gateway}:${GATEWAY_REGISTRY_PORT}` : "none"}`,
      ];
      const launcher = spawn(
        "unshare",
        ["--net", "--mount", "--ipc", "--uts", "--pid", "--fork", "--kill-child", "--", "/bin/sh", "-c", JAIL_SCRIPT, "berth-uml", join(dir, "jail"), vm, join(image, ".."), String(hostUid), String(Math.ceil(guestRam / 1048576) + 16), ...cmdline],
        { detached: true, stdio: ["pipe", log, log, "pipe"] },
      );
      closeSync(log);
      const pid = launcher.pid;
      if (!pid) throw new Error("could not start unshare for the guest");
      // Its host cgroup before it makes anything: everything it starts is counted and capped.
      await this.enterCgroup(cgroup, pid);
      await waitForLine(launcher.stdio[3] as NodeJS.ReadableStream, "ready", 10_000);
      // (its child may have been forked before the first move: move it too; it waits for "go")
      for (const child of childrenOf(pid)) await this.enterCgroup(cgroup, child);
      meta.pid = pid;
      meta.pidStart = processStart(pid);
      await this.writeMeta(meta);
      // The uplink: the veth's host end is berthv<slot>, its peer up0 in the guest process's netns,
      // where the guest's vector interface reads and writes it raw. The guest owns the address.
      await runHostCommand("ip", ["link", "add", uplink.ifname, "type", "veth", "peer", "name", "up0", "netns", String(pid)]);
      await writeFile(`/proc/sys/net/ipv6/conf/${uplink.ifname}/disable_ipv6`, "1\n").catch(() => {});
      await runHostCommand("ip", ["addr", "add", `${uplink.gateway}/${uplink.prefix}`, "dev", uplink.ifname]);
      await runHostCommand("ip", ["link", "set", uplink.ifname, "up"]);
      await runHostCommand("iptables", ["-w", "-A", "BERTH-SANDBOXES", "-i", uplink.ifname, "-s", `${uplink.address}/32`, "-j", "BERTH-EGRESS"]);
      await this.serveEgress(spec.id, uplink).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "EADDRINUSE") throw err;
      });
      if (owner) await this.serveRegistry(spec.id, uplink, owner);
      (launcher.stdin as NodeJS.WritableStream).end("go\n");
      launcher.unref();
      (launcher.stdio[3] as NodeJS.ReadableStream & { destroy(): void }).destroy();

      // The host's ends of the two channels: socat relays from UNIX sockets here to the guest.
      meta.relays = [];
      for (const [sock, port] of [["agent.sock", LEARNER_AGENT_PORT], ["trusted.sock", TRUSTED_AGENT_PORT]] as const) {
        meta.relays.push(await this.startRelay(cgroup, join(dir, sock), uplink.address, port));
      }
      await this.writeMeta(meta);
      await this.waitForAgent(meta, { socketPath: join(dir, "agent.sock"), token });
      return this.info(meta);
    } catch (err) {
      const tail = readTail(join(dir, "uml.log"));
      await this.destroy(spec.id).catch(() => {});
      throw new Error(`could not create sandbox ${spec.id}: ${(err as Error).message}${tail ? `\nguest log:\n${tail}` : ""}`);
    }
  }

  private async enterCgroup(cgroup: SandboxCgroup, pid: number): Promise<void> {
    for (const parent of cgroup.existingDirs()) {
      const box = join(parent, "box");
      if (existsSync(join(box, "cgroup.procs"))) await writeFile(join(box, "cgroup.procs"), String(pid));
    }
  }

  /** A detached socat: UNIX-LISTEN on the host, a TCP connection to the guest per client. */
  private async startRelay(cgroup: SandboxCgroup, socketPath: string, address: string, port: number): Promise<number> {
    const child = spawn("socat", [`UNIX-LISTEN:${socketPath},fork,unlink-early,mode=600`, `TCP:${address}:${port},nodelay`], { detached: true, stdio: "ignore" });
    if (!child.pid) throw new Error("could not start socat (apt-get install socat)");
    child.unref();
    await this.enterCgroup(cgroup, child.pid);
    for (let i = 0; i < 200 && !existsSync(socketPath); i++) await new Promise((r) => setTimeout(r, 10));
    return child.pid;
  }

  private async waitForAgent(meta: UmlMeta, ep: AgentEndpoint): Promise<void> {
    await waitForAgentHealth(ep, {
      timeoutMs: this.agentTimeoutMs,
      attemptTimeoutMs: 2000,
      intervalMs: 50,
      gone: () => (this.alive(meta) ? null : "the guest stopped before its agent answered"),
    });
  }


  private alive(meta: UmlMeta): boolean {
    return meta.pid !== undefined && processStart(meta.pid) === meta.pidStart;
  }

  async stop(id: string): Promise<void> {
    const meta = await this.readMeta(id);
    if (!meta) return;
    // The guest has no state worth a clean shutdown (its disks are thrown away with it): end it.
    await new SandboxCgroup(id).remove().catch(() => {});
  }

  async destroy(id: string): Promise<void> {
    const dir = this.dir(id);
    // Every process of it is in its host cgroup: the launcher, the guest, the relays.
    const cgroup = new SandboxCgroup(id);
    await cgroup.remove();
    const egress = this.egress.get(id);
    this.egress.delete(id);
    await egress?.then((p) => p.close(), () => {});
    const registry = this.registries.get(id);
    this.registries.delete(id);
    await registry?.then((r) => r.close(), () => {});
    await detachUplinksOf(dir, this.uplinkNet);
    // The jail was mounted only in the guest's own mount namespace, which died with it.
    await rm(dir, { recursive: true, force: true });
  }

  async connect(id: string): Promise<AgentEndpoint> {
    const dir = this.dir(id);
    if (!existsSync(join(dir, "token"))) throw new Error(`no sandbox ${id} under ${this.stateDir}`);
    // timeScale: every dial of this endpoint stretches its handshake for a guest kernel.
    return { socketPath: join(dir, "agent.sock"), token: (await readFile(join(dir, "token"), "utf8")).trim(), timeScale: this.timeScale };
  }

  /** Runs a command through the trusted agent (outside the learner's pid namespace). */
  private async trustedExec(id: string, cmd: string[], timeoutMs: number, maxOutputBytes?: number) {
    const dir = this.dir(id);
    if (!existsSync(join(dir, "trusted-token"))) throw new Error(`no sandbox ${id} under ${this.stateDir}`);
    const client = await AgentClient.connect({ socketPath: join(dir, "trusted.sock"), token: (await readFile(join(dir, "trusted-token"), "utf8")).trim() }, { timeoutMs: 5000 });
    try {
      return await client.request({ op: "exec", cmd, timeoutMs, ...(maxOutputBytes !== undefined ? { maxOutputBytes } : {}) });
    } finally {
      client.close();
    }
  }

  async stats(id: string): Promise<SandboxStats> {
    const meta = await this.readMeta(id);
    if (!meta) throw new Error(`no sandbox ${id} under ${this.stateDir}`);
    // The guest's own counters for the learner's cgroup (the host's would count the guest kernel).
    // The sandbox's disk is the guest's /var/lib/berth (ubdb, sized diskBytes): its statfs.
    const r = await this.trustedExec(id, ["/bin/sh", "-c", "stat -f -c 'disk %S %b %f' /var/lib/berth; cd /sys/fs/cgroup/learner && cat memory.current pids.current cpu.stat memory.events memory.events.local pids.events"], 10_000);
    const all = Buffer.from(r.stdout, "base64").toString("utf8");
    const diskLine = /^disk (\d+) (\d+) (\d+)\n/.exec(all);
    const text = diskLine ? all.slice(diskLine[0].length) : all;
    const disk = diskLine ? { usedBytes: (Number(diskLine[2]) - Number(diskLine[3])) * Number(diskLine[1]), sizeBytes: Number(diskLine[2]) * Number(diskLine[1]) } : undefined;
    const lines = text.split("\n");
    const field = (name: string, from = text) => Number(new RegExp(`^${name} (\\d+)`, "m").exec(from)?.[1] ?? 0);
    const local = text.slice(text.indexOf("oom_kill") + 1);
    return {
      memoryBytes: Number(lines[0]) || 0,
      pids: Number(lines[1]) || 0,
      cpuUsageNs: field("usage_usec") * 1000,
      oomKills: field("oom_kill"),
      memoryLimitHits: field("oom", local),
      pidsLimitHits: field("max"),
      ...(disk ? { disk } : {}),
      limits: { ...DEFAULT_LIMITS, ...meta.limits },
    };
  }

  /** OOM kills in the learner's cgroup (the namespaces driver's helper of the same name). */
  async oomKills(id: string): Promise<number> {
    return (await this.stats(id)).oomKills ?? 0;
  }

  async execTrusted(id: string, script: string, opts: TrustedExecOptions): Promise<TrustedExecResult> {
    const started = Date.now();
    // In the learner's mount and cgroup namespaces (their files, mounts and cgroup tree), but in
    // the guest's first pid namespace: nothing the learner runs can see, signal or trace it.
    const enter = `exec nsenter -t "$(cat ${LEARNER_PID_FILE})" -m -C -- /bin/bash -c "$1"`;
    const r = await this.trustedExec(id, ["/bin/bash", "-c", enter, "berth-check", script], Math.min(600_000, Math.round(opts.timeoutMs * this.timeScale)), opts.maxOutputBytes ?? 16 * 1024);
    return {
      exitCode: r.timedOut ? null : r.exitCode,
      stdout: Buffer.from(r.stdout, "base64"),
      stderr: Buffer.from(r.stderr, "base64"),
      timedOut: r.timedOut,
      truncated: Boolean((r as { truncated?: boolean }).truncated),
      durationMs: Date.now() - started,
    };
  }

  async list(): Promise<SandboxInfo[]> {
    const root = join(this.stateDir, "sandboxes");
    if (!existsSync(root)) return [];
    const out: SandboxInfo[] = [];
    for (const id of (await readdir(root)).sort()) {
      const meta = await this.readMeta(id).catch(() => undefined);
      if (meta) out.push(this.info(meta));
    }
    return out;
  }

  /** Where a sandbox's files are on the host (for tests and debugging). */
  sandboxDir(id: string): string {
    return this.dir(id);
  }

  private info(meta: UmlMeta): SandboxInfo {
    const base = { id: meta.id, hostname: meta.hostname, createdAt: new Date(meta.createdAt) };
    if (meta.pid === undefined) return { ...base, state: "missing" };
    return this.alive(meta) ? { ...base, state: "running", pid: meta.pid } : { ...base, state: "stopped" };
  }

  private async writeMeta(meta: UmlMeta): Promise<void> {
    await writeFile(join(this.dir(meta.id), "meta.json"), JSON.stringify(meta, null, 2) + "\n");
  }

  /** Only this driver's sandboxes: another driver's in the same state dir are not ours to list. */
  private async readMeta(id: string): Promise<UmlMeta | undefined> {
    const file = join(this.dir(id), "meta.json");
    if (!existsSync(file)) return undefined;
    const meta = JSON.parse(await readFile(file, "utf8")) as UmlMeta;
    return meta.driver === "uml" ? meta : undefined;
  }
}

export function createUmlDriver(opts?: UmlDriverOptions): UmlDriver {
  return new UmlDriver(opts);
}

/**
 * Runs as root in the new namespaces (pid 1 of the new pid namespace), then becomes the guest:
 * $1 jail mount point, $2 the sandbox's vm/ dir, $3 the root image's dir, $4 the guest's host uid,
 * $5 the RAM tmpfs size in MiB, the rest the guest kernel's command line. It says "ready" on fd 3
 * once its network namespace exists, and waits for "go" on stdin (the driver adds the veth peer).
 */
const JAIL_SCRIPT = `set -e
J=$1; S=$2; IMG=$3; U=$4; RAM=$5; shift 5
mount --make-rprivate /
mount -t tmpfs -o mode=755,size=1m berth-jail "$J"
mkdir "$J/usr" "$J/s" "$J/base" "$J/tmp" "$J/proc" "$J/dev"
mount --bind /usr "$J/usr" && mount -o remount,bind,ro,nosuid,nodev "$J/usr"
for d in bin sbin lib lib64; do ln -s usr/$d "$J/$d"; done
mount --bind "$S" "$J/s"
mount --bind "$IMG" "$J/base" && mount -o remount,bind,ro,nosuid,nodev "$J/base"
mount -t tmpfs -o mode=1777,nosuid,nodev,size=\${RAM}m berth-ram "$J/tmp"
touch "$J/dev/null" && mount --bind /dev/null "$J/dev/null"
mount -t proc -o nosuid,nodev,noexec proc "$J/proc"
echo ready >&3
exec 3>&-
read go
ip link set lo up
ip link set up0 up
cd "$J"
exec chroot "$J" /usr/bin/setpriv --reuid="$U" --regid="$U" --clear-groups --no-new-privs --inh-caps=-all,+net_raw --ambient-caps=+net_raw --bounding-set=-all,+net_raw \\
  /usr/bin/env -i TMPDIR=/tmp ${UML_KERNEL} "$@"
`;

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function processStart(pid: number): string | undefined {
  try {
    // Field 22 (starttime), after the command name in parentheses (which may hold spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function waitForLine(stream: NodeJS.ReadableStream, line: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => done(new Error(`the guest's launcher did not say ${line} within ${timeoutMs} ms`)), timeoutMs);
    const done = (err?: Error) => {
      clearTimeout(timer);
      stream.removeListener("data", onData);
      stream.removeListener("end", onEnd);
      if (err) reject(err);
      else resolve();
    };
    const onData = (b: Buffer) => {
      text += b.toString();
      if (text.includes(`${line}\n`)) done();
    };
    const onEnd = () => done(new Error(`the guest's launcher ended before it was ready`));
    stream.on("data", onData);
    stream.on("end", onEnd);
  });
}

function readTail(path: string, lines = 20): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

