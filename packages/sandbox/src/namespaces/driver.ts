// The namespaces driver: one sandbox = one runc container made of a user namespace (root inside is
// an unprivileged host uid), pid, mount, uts, ipc, net (loopback only) and cgroup namespaces, an
// overlay root filesystem over the shared read-only base, and a two-level cgroup with the limits
// above the sandbox's own subtree. Why runc and not crun, and the security model: docs/sandboxes.md.
//
// On disk, per sandbox (stateDir/sandboxes/<id>/):
//   meta.json   what list() reports after an orchestrator restart
//   token       the agent's token (host only, 0600)
//   disk.img, disk/   the sandbox's own sized ext4 (disk.ts), mounted at disk/; it holds
//     disk/upper, disk/work: the overlay's writable layer and its scratch dir
//     disk/data/  bind-mounted at /var/lib/berth: a real filesystem for nested overlays
//   rootfs/     the overlay's mount point (what runc gets as root.path)
//   agent.sock  the agent's listening socket: bound here by the host, inherited by the agent (fd 3);
//               never visible inside, so the sandbox cannot replace what the host dials
//   run/        -> disk/run, bind-mounted at /run/berth: briefly, the token file
//   bundle/     runc's bundle (config.json); agent.log: the agent's stdout/stderr
//   gw/         host-root-owned, bound read-only at /run/berth-gw: the registry gateway's socket
import { randomBytes } from "node:crypto";
import { existsSync, openSync, closeSync, readFileSync } from "node:fs";
import { chown, mkdir, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runHostCommand } from "./host-command.js";
import { ensureBaseRootfs, removeUnusedRootfs, DEFAULT_STATE_DIR, hostsFile, SANDBOX_ID_BASE, SANDBOX_ID_COUNT } from "../rootfs/build.js";
import { socketAnswers, waitForAgentHealth } from "../wait-agent.js";
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
import { ensureAgentDir, removeUnusedAgentDirs } from "./agent-dir.js";
import { SandboxCgroup, type CgroupVersion } from "./cgroups.js";
import { findHostTools, type HostTools } from "./host-tools.js";
import { buildCheckHelper, runTrustedCheck } from "./check-exec.js";
import { sandboxOciConfig } from "./oci-spec.js";
import { AgentListener, Runc } from "./runc.js";
import { DEFAULT_EGRESS_ALLOW, EgressProxy } from "./egress.js";
import { createSandboxDisk, DISK_MOUNT, MIN_DISK_BYTES, remountSandboxDisk, sandboxDiskUsage } from "./disk.js";
import { ensureSharedImages, removeUnusedSharedImages } from "./shared-images.js";
import { attachUplink, claimSlot, DEFAULT_UPLINK_NET, detachUplinksOf, ensureHostNetwork, removeStaleUplinks, repairHostNetwork, sandboxResolvConf, type UplinkNet, type UplinkSlot } from "./network.js";
import { RegistryGateway, registryOwner } from "./registry-gateway.js";
import type { RegistryQuota } from "./registry-quota.js";

export interface NamespacesDriverOptions {
  stateDir?: string;
  /** How long create() waits for the agent to answer health. */
  agentTimeoutMs?: number;
  /**
   * Run the container engine in each sandbox so `docker` works there (default true). The agent
   * starts it after its first health answer; it costs the sandbox one more node process.
   */
  engine?: boolean;
  /**
   * Give each sandbox an uplink (default true): eth0 with NAT out through the host, the host's
   * nameserver, and a firewall that keeps it off the host, other sandboxes and private ranges
   * (network.ts). false: loopback only.
   */
  uplink?: boolean;
  /** The uplinks' subnet and slot directory (default DEFAULT_UPLINK_NET): host-wide, the same for every driver on a host. */
  uplinkNet?: UplinkNet;
  /**
   * The lab registry (e.g. "http://127.0.0.1:5000"). When set, each sandbox gets a gateway to it:
   * localhost:5000 inside, lab images read-only, the learner's own names in their own namespace.
   */
  registryUpstream?: string;
  /**
   * The names a sandbox may reach over HTTP (default DEFAULT_EGRESS_ALLOW: Debian's archive);
   * everything else outside is refused (egress.ts). With the uplink only.
   */
  egressAllow?: string[];
  /**
   * Each learner's storage quota in the lab registry (with registryUpstream): where the registry
   * keeps its data, and the bytes per owner (default 2 GiB). Without it pushes are not limited.
   */
  registryQuota?: RegistryQuota;
}

interface SandboxMeta {
  id: string;
  hostname: string;
  createdAt: string;
  limits: SandboxLimits;
  cgroupVersion: CgroupVersion;
  agentDir: string;
  /** The shared read-only image store bound at /opt/berth-images (debian:bookworm), if any. */
  sharedImages?: string;
  /** The sandbox's uplink (absent: loopback only). */
  uplink?: UplinkSlot;
  /** The namespace of its pushes in the lab registry, when it has a gateway. */
  registryOwner?: string;
}

/** sun_path is 108 bytes including the terminating NUL (and the host binds agent.sock.new first). */
const MAX_SOCKET_PATH = 107 - ".new".length;

/** Host only: in the sandbox's root-owned directory, which is never mounted into the sandbox. */
function agentSocketPath(dir: string): string {
  return join(dir, "agent.sock");
}

export class NamespacesDriver implements SandboxDriver {
  readonly name = "namespaces";
  readonly stateDir: string;
  private readonly runc: Runc;
  private readonly agentTimeoutMs: number;
  private readonly engine: boolean;
  private readonly uplink: boolean;
  private readonly uplinkNet: UplinkNet;
  private readonly registryUpstream: string | undefined;
  private readonly egressAllow: string[];
  private readonly registryQuota: RegistryQuota | undefined;
  private nameservers: string[] = [];
  private prepared: Promise<{ rootfs: string; agentDir: string; hostTools: HostTools; sharedImages?: string; checkHelper: string }> | undefined;

  constructor(opts: NamespacesDriverOptions = {}) {
    this.stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
    this.runc = new Runc(join(this.stateDir, "runc"));
    this.agentTimeoutMs = opts.agentTimeoutMs ?? 20_000;
    this.engine = opts.engine ?? true;
    this.uplink = opts.uplink ?? true;
    this.uplinkNet = opts.uplinkNet ?? DEFAULT_UPLINK_NET;
    this.registryUpstream = opts.registryUpstream;
    this.egressAllow = opts.egressAllow ?? DEFAULT_EGRESS_ALLOW;
    this.registryQuota = opts.registryQuota;
    if (this.registryUpstream !== undefined && !/^http:\/\/[^/]+\/?$/.test(this.registryUpstream)) {
      throw new Error(`registryUpstream ${JSON.stringify(this.registryUpstream)}: want http://host:port (the lab registry on this host)`);
    }
  }

  /** What create() needs, once; then (again on every call) the gateways of sandboxes made earlier. */
  async prepare(onProgress?: (line: string) => void): Promise<void> {
    await this.prepareOnce(onProgress);
    await this.serveExistingGateways(onProgress);
    await this.serveExistingEgress(onProgress);
  }

  private prepareOnce(onProgress?: (line: string) => void): Promise<void> {
    if (!this.prepared) {
      this.prepared = (async () => {
        if (process.getuid?.() !== 0) throw new Error("the namespaces driver needs root (it mounts overlays and makes cgroups)");
        const rootfs = await ensureBaseRootfs({ stateDir: this.stateDir, onProgress });
        onProgress?.("sandbox: building the agent bundle");
        const agentDir = await ensureAgentDir(this.stateDir);
        await mkdir(join(this.stateDir, "sandboxes"), { recursive: true });
        if (this.uplink) {
          ({ nameservers: this.nameservers } = await ensureHostNetwork(this.uplinkNet));
          for (const slot of await removeStaleUplinks(this.uplinkNet)) onProgress?.(`sandbox: removed a stale uplink (berthv${slot})`);
          for (const what of await repairHostNetwork(this.uplinkNet)) onProgress?.(`sandbox: the host's firewall for sandboxes was missing ${what}: put back`);
          if (!this.nameservers.length) onProgress?.("sandbox: no usable nameserver in /etc/resolv.conf; sandboxes will resolve no names");
        }
        // debian:bookworm for the engines inside: built once (~25 s) and shared read-only. Without
        // Debian's archive the sandboxes still work, with busybox only.
        let sharedImages: string | undefined;
        if (this.engine) {
          sharedImages = await ensureSharedImages(this.stateDir, SANDBOX_ID_BASE, onProgress).catch((err: Error) => {
            onProgress?.(`sandbox: no debian:bookworm in the sandboxes (${err.message})`);
            return undefined;
          });
        }
        const inUse = new Set([agentDir]);
        const imagesInUse = new Set(sharedImages ? [sharedImages] : []);
        for (const id of await readdir(join(this.stateDir, "sandboxes"))) {
          const meta = await this.readMeta(id).catch(() => undefined);
          if (meta) inUse.add(meta.agentDir);
          if (meta?.sharedImages) imagesInUse.add(meta.sharedImages);
          // Sandboxes outlive us, and so does their disk's mount; if something took it away, put it back.
          if (meta && (await remountSandboxDisk(this.dir(id)).catch((err: Error) => onProgress?.(`sandbox: ${id}: its disk could not be mounted again (${err.message})`)))) {
            onProgress?.(`sandbox: ${id}: its disk was not mounted: mounted it again`);
          }
        }
        await removeUnusedAgentDirs(this.stateDir, inUse);
        if (sharedImages) await removeUnusedSharedImages(this.stateDir, imagesInUse);
        for (const dir of await removeUnusedRootfs(this.stateDir)) onProgress?.(`sandbox: removed unused base rootfs ${dir}`);
        // berth-check, the trusted check runner (check-exec.c), compiled on the host like the shim.
        const checkHelper = buildCheckHelper(join(this.stateDir, "check"));
        return { rootfs, agentDir, hostTools: findHostTools(onProgress), sharedImages, checkHelper };
      })();
      this.prepared.catch(() => (this.prepared = undefined));
    }
    return this.prepared.then(() => {});
  }

  /** Sandboxes outlive the process that made them: serve the gateways of those still here. */
  private async serveExistingGateways(onProgress?: (line: string) => void): Promise<void> {
    if (!this.registryUpstream) return;
    if (!this.registryQuota) onProgress?.("sandbox: learners' pushes to the lab registry have no quota (registryQuota not set)");
    for (const id of await readdir(join(this.stateDir, "sandboxes"))) {
      if (this.gateways.has(id)) continue;
      const meta = await this.readMeta(id).catch(() => undefined);
      // (no gw/ yet: a create() in progress, which serves its own)
      if (!meta?.registryOwner || !existsSync(join(this.dir(id), "gw"))) continue;
      // Another live process (the orchestrator, while a tool or test opens the same state dir)
      // serves it already: leave it. Only a dead one's socket is taken over.
      if (await socketAnswers(join(this.dir(id), "gw", "registry.sock"))) continue;
      await this.serveGateway(id, meta.registryOwner).catch((err: Error) => onProgress?.(`sandbox: ${id}: no registry gateway (${err.message})`));
    }
  }

  /** The egress proxies of running sandboxes that no live process serves (a dead orchestrator's). */
  private async serveExistingEgress(onProgress?: (line: string) => void): Promise<void> {
    if (!this.uplink) return;
    for (const id of await readdir(join(this.stateDir, "sandboxes"))) {
      if (this.egress.has(id)) continue;
      const meta = await this.readMeta(id).catch(() => undefined);
      // (no link: the sandbox is not running, or a create() in progress, which serves its own)
      if (!meta?.uplink || !existsSync(`/sys/class/net/${meta.uplink.ifname}`)) continue;
      await this.serveEgress(id, meta.uplink).catch((err: NodeJS.ErrnoException) => {
        // In use: another live process (the orchestrator, while a test opens its state dir) serves it.
        if (err.code !== "EADDRINUSE") onProgress?.(`sandbox: ${id}: no egress proxy (${err.message})`);
      });
    }
  }

  /** This process's egress proxies by sandbox id (a promise while listening). */
  private readonly egress = new Map<string, Promise<EgressProxy>>();

  private async serveEgress(id: string, uplink: UplinkSlot): Promise<void> {
    let proxy = this.egress.get(id);
    if (!proxy) {
      proxy = EgressProxy.listen({ gateway: uplink.gateway, client: uplink.address, allow: this.egressAllow });
      this.egress.set(id, proxy);
      proxy.catch(() => this.egress.get(id) === proxy && this.egress.delete(id));
    }
    await proxy;
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
    const socketPath = agentSocketPath(dir);
    if (socketPath.length > MAX_SOCKET_PATH) throw new Error(`agent socket path too long for a UNIX socket (${socketPath.length} > ${MAX_SOCKET_PATH}): use a shorter state dir or id`);
    const gatewaySocket = join(dir, "gw", "registry.sock");
    if (this.registryUpstream && gatewaySocket.length > MAX_SOCKET_PATH) throw new Error(`registry socket path too long for a UNIX socket (${gatewaySocket.length} > ${MAX_SOCKET_PATH}): use a shorter state dir or id`);
    const owner = this.registryUpstream ? registryOwner(spec.owner ?? spec.id) : undefined;
    if (owner && spec.owner !== undefined && owner !== spec.owner) throw new Error(`invalid owner ${JSON.stringify(spec.owner)}: lower-case letters and digits, separated by '.', '_' or '-' (at most 64)`);
    const limits: SandboxLimits = { ...DEFAULT_LIMITS, ...spec.limits };
    if (!(limits.memoryBytes >= 32 * 1024 * 1024) || !(limits.cpus > 0) || !(Number.isInteger(limits.pids) && limits.pids >= 16) || !(Number.isInteger(limits.diskBytes) && limits.diskBytes >= MIN_DISK_BYTES)) {
      throw new Error(`invalid limits ${JSON.stringify(limits)}: memoryBytes ≥ 32 MiB, cpus > 0, pids an integer ≥ 16, diskBytes an integer ≥ 64 MiB`);
    }
    await this.prepareOnce();
    const { rootfs: baseRootfs, agentDir, hostTools, sharedImages } = await this.prepared!;
    // mkdir (not -p) is the claim on the id: of two creates with the same id, one fails here.
    try {
      // 0711: the sandbox (an unprivileged uid on the host) must traverse it to reach rootfs/, run/, data/.
      await mkdir(dir, { mode: 0o711 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new Error(`sandbox ${spec.id} already exists; destroy it first`);
      throw err;
    }
    const cgroup = new SandboxCgroup(spec.id);
    const uid = SANDBOX_ID_BASE;
    const gid = SANDBOX_ID_BASE;
    const meta: SandboxMeta = { id: spec.id, hostname: spec.hostname, createdAt: new Date().toISOString(), limits, cgroupVersion: cgroup.version, agentDir, sharedImages, registryOwner: owner };

    try {
      await writeFile(join(dir, "meta.json"), JSON.stringify(meta, null, 2) + "\n");
      for (const sub of ["rootfs", "bundle"]) await mkdir(join(dir, sub));
      // What the learner writes goes to the sandbox's own sized filesystem, not the host's disk:
      // run/ too (bound writable at /run/berth), reached through the link run -> disk/run.
      const disk = await createSandboxDisk(dir, limits.diskBytes);
      for (const sub of ["upper", "work", "data", "run"]) await mkdir(join(disk, sub));
      await symlink(join(DISK_MOUNT, "run"), join(dir, "run"));
      // Owned by the sandbox's root: the overlay's top directory, the socket dir, the data dir.
      for (const path of [join(disk, "upper"), join(dir, "run"), join(disk, "data")]) await chown(path, uid, gid);

      // 1. The root filesystem: overlay of the shared read-only base and this sandbox's upper layer.
      await runHostCommand("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${baseRootfs},upperdir=${join(disk, "upper")},workdir=${join(disk, "work")}`, join(dir, "rootfs")]);
      await writeOwned(join(dir, "rootfs", "etc", "hostname"), `${spec.hostname}\n`, uid, gid);
      await writeOwned(join(dir, "rootfs", "etc", "hosts"), hostsFile(spec.hostname), uid, gid);
      if (this.uplink) await writeOwned(join(dir, "rootfs", "etc", "resolv.conf"), sandboxResolvConf(this.nameservers), uid, gid);
      if (owner) {
        // Root-owned and bound read-only: the sandbox can connect to the socket, not replace it.
        await mkdir(join(dir, "gw"), { mode: 0o755 });
        await this.serveGateway(spec.id, owner);
      }

      // 2. The agent's token: kept on the host, and handed over once in a file the agent deletes.
      const token = randomBytes(32).toString("hex");
      await writeFile(join(dir, "token"), token, { mode: 0o600 });
      await writeOwned(join(dir, "run", "token"), token, uid, gid, 0o600);

      // 3. The cgroup: limits on berth/<id>, the sandbox in berth/<id>/box.
      await cgroup.create(limits, uid, gid);

      // 4. runc: create (namespaces, mounts, cgroup), then start (exec the agent). The container's
      // stdout/stderr go to agent.log; runc runs in its own session so the sandbox outlives us.
      const config = sandboxOciConfig({
        hostname: spec.hostname,
        rootfs: join(dir, "rootfs"),
        cgroupsPath: cgroup.runcPath,
        agentDir,
        runDir: join(dir, "run"),
        dataDir: join(disk, "data"),
        idBase: uid,
        idCount: SANDBOX_ID_COUNT,
        hostTools,
        engine: this.engine,
        sharedImagesDir: sharedImages,
        registrySocketDir: owner ? join(dir, "gw") : undefined,
      });
      await writeFile(join(dir, "bundle", "config.json"), JSON.stringify(config, null, 2) + "\n");
      // Every create checks the host's firewall is whole (one iptables-save, alongside runc create):
      // a host that flushed it since prepare() would otherwise leave its sandboxes unfiltered.
      const firewall = this.uplink ? repairHostNetwork(this.uplinkNet) : undefined;
      firewall?.catch(() => {});
      const log = openSync(join(dir, "agent.log"), "a");
      const listener = await AgentListener.bind(socketPath);
      try {
        await this.runc.run(["create", "--preserve-fds", "1", "--bundle", join(dir, "bundle"), "--pid-file", join(dir, "bundle", "pid"), spec.id], { stdio: ["ignore", log, log], detached: true, extraFds: [listener.fd] });
        await listener.publish();
      } finally {
        closeSync(log);
        await listener.close();
      }
      // The uplink goes in between create and start: the namespaces exist, the agent has not run,
      // so eth0 is there from the sandbox's first instruction.
      if (this.uplink) {
        // (runc's --pid-file: the sandbox's first process, without another runc call)
        const pid = Number(await readFile(join(dir, "bundle", "pid"), "utf8"));
        if (!(pid > 1)) throw new Error("runc create left no process to attach the uplink to");
        await firewall;
        meta.uplink = await claimSlot(dir, spec.id, this.uplinkNet);
        await writeFile(join(dir, "meta.json"), JSON.stringify(meta, null, 2) + "\n");
        await attachUplink(pid, meta.uplink);
        // Its way out (HTTP to the allow-list), listening before the sandbox's first instruction.
        // In use: a proxy another process kept for an earlier sandbox on this slot (destroyed by a
        // different process); it has this sandbox's addresses and serves it alike.
        await this.serveEgress(spec.id, meta.uplink).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== "EADDRINUSE") throw err;
        });
      }
      await this.runc.run(["start", spec.id]);

      // 5. Wait for the agent.
      await this.waitForAgent(spec.id, { socketPath, token });
      return await this.info(meta);
    } catch (err) {
      const logTail = readTail(join(dir, "agent.log"));
      await this.destroy(spec.id).catch(() => {});
      throw new Error(`could not create sandbox ${spec.id}: ${(err as Error).message}${logTail ? `\nagent log:\n${logTail}` : ""}`);
    }
  }

  private async waitForAgent(id: string, ep: AgentEndpoint): Promise<void> {
    await waitForAgentHealth(ep, {
      timeoutMs: this.agentTimeoutMs,
      attemptTimeoutMs: 2000,
      intervalMs: 25,
      gone: async () => {
        const state = await this.runc.state(id);
        return !state || state.status === "stopped" ? "the sandbox stopped before its agent answered" : null;
      },
    });
  }


  async stop(id: string): Promise<void> {
    const state = await this.runc.state(id);
    if (!state || state.status === "stopped") return;
    await this.runc.run(["kill", id, "TERM"]).catch(() => {});
    for (let i = 0; i < 60; i++) {
      const s = await this.runc.state(id);
      if (!s || s.status === "stopped") return;
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.runc.run(["kill", "--all", id, "KILL"]).catch(() => {});
  }

  async destroy(id: string): Promise<void> {
    const dir = this.dir(id);
    const meta = await this.readMeta(id);
    if (await this.runc.state(id)) {
      // A process in a cgroup the learner froze cannot be killed: thaw first, or the delete fails.
      await new SandboxCgroup(id, meta?.cgroupVersion).thaw();
      // --force kills every process in the sandbox's cgroup, then removes runc's state.
      await this.runc.run(["delete", "--force", id]);
    }
    // The netns died with the sandbox's last process (and took the veth pair with it): what is
    // left is the host's rule and the slot claim.
    await detachUplinksOf(dir, this.uplinkNet);
    const gateway = this.gateways.get(id);
    this.gateways.delete(id);
    await gateway?.then((g) => g.close(), () => {});
    const egress = this.egress.get(id);
    this.egress.delete(id);
    await egress?.then((p) => p.close(), () => {});
    const cgroup = new SandboxCgroup(id, meta?.cgroupVersion);
    await cgroup.remove();
    await unmountAll(dir);
    await rm(dir, { recursive: true, force: true });
  }

  async connect(id: string): Promise<AgentEndpoint> {
    const dir = this.dir(id);
    const tokenFile = join(dir, "token");
    if (!existsSync(tokenFile)) throw new Error(`no sandbox ${id} under ${this.stateDir}`);
    const socketPath = agentSocketPath(dir);
    if (!existsSync(socketPath) && existsSync(join(dir, "run", "agent.sock"))) {
      throw new Error(`sandbox ${id} was made by an older Berth, whose agent listens inside the sandbox (a path the learner controls): destroy it and create it again`);
    }
    return { socketPath, token: (await readFile(tokenFile, "utf8")).trim() };
  }

  async stats(id: string): Promise<SandboxStats> {
    const meta = await this.readMeta(id);
    if (!meta) throw new Error(`no sandbox ${id} under ${this.stateDir}`);
    const [cgroup, disk] = await Promise.all([new SandboxCgroup(id, meta.cgroupVersion).stats(), sandboxDiskUsage(this.dir(id))]);
    return { ...cgroup, ...(disk ? { disk } : {}), limits: { ...DEFAULT_LIMITS, ...meta.limits } };
  }

  /** Memory-cgroup OOM kills in this sandbox so far (for tests and the orchestrator's "why did it die"). */
  async oomKills(id: string): Promise<number> {
    const meta = await this.readMeta(id);
    if (!meta) throw new Error(`no sandbox ${id} under ${this.stateDir}`);
    return new SandboxCgroup(id, meta.cgroupVersion).oomKills();
  }

  /** A check or setup script, run by berth-check out of the learner's reach (check-exec.ts). */
  async execTrusted(id: string, script: string, opts: TrustedExecOptions): Promise<TrustedExecResult> {
    const meta = await this.readMeta(id);
    if (!meta) throw new Error(`no sandbox ${id} under ${this.stateDir}`);
    await this.prepareOnce();
    const { rootfs, hostTools, checkHelper } = await this.prepared!;
    // The init's pid as runc create wrote it (no runc call per check: auto checks run often).
    // berth-check pins it with a pidfd and refuses it unless it sits in this sandbox's box cgroup.
    const pid = Number(await readFile(join(this.dir(id), "bundle", "pid"), "utf8").catch(() => ""));
    if (!(pid > 1)) throw new Error(`sandbox ${id} has no init process recorded: no check can run in it`);
    return runTrustedCheck(checkHelper, { sandboxId: id, pid, cgroupVersion: meta.cgroupVersion, baseRootfs: rootfs, hostTools }, script, opts);
  }

  async list(): Promise<SandboxInfo[]> {
    const root = join(this.stateDir, "sandboxes");
    if (!existsSync(root)) return [];
    const out: SandboxInfo[] = [];
    for (const id of (await readdir(root)).sort()) {
      const meta = await this.readMeta(id).catch(() => undefined);
      if (meta) out.push(await this.info(meta));
    }
    return out;
  }

  /** The sandbox's uplink (its addresses and host interface), if it has one. */
  async uplinkOf(id: string): Promise<UplinkSlot | undefined> {
    return (await this.readMeta(id))?.uplink;
  }

  /**
   * Gives a running sandbox to an owner (their namespace in the lab registry): the orchestrator
   * calls it when a warm sandbox, made before anyone asked for it, is handed to a learner.
   */
  async assignOwner(id: string, owner: string): Promise<void> {
    const meta = await this.readMeta(id);
    if (!meta) throw new Error(`no sandbox ${id}`);
    if (!this.registryUpstream || !meta.registryOwner) return; // no gateway: nothing to re-point
    const valid = registryOwner(owner);
    if (valid !== owner) throw new Error(`invalid owner ${JSON.stringify(owner)}: lower-case letters and digits, separated by '.', '_' or '-' (at most 64)`);
    meta.registryOwner = owner;
    await writeFile(join(this.dir(id), "meta.json"), JSON.stringify(meta, null, 2) + "\n");
    const gw = this.gateways.get(id);
    if (gw) (await gw).setOwner(owner);
    else await this.serveGateway(id, owner);
  }

  /** This process's gateways by sandbox id (a promise while listening, so two callers never both bind). */
  private readonly gateways = new Map<string, Promise<RegistryGateway>>();

  private async serveGateway(id: string, owner: string): Promise<void> {
    if (!this.registryUpstream) return;
    let gw = this.gateways.get(id);
    if (!gw) {
      gw = RegistryGateway.listen({ socketPath: join(this.dir(id), "gw", "registry.sock"), upstream: this.registryUpstream, owner, quota: this.registryQuota });
      this.gateways.set(id, gw);
      gw.catch(() => this.gateways.get(id) === gw && this.gateways.delete(id));
    }
    await gw;
  }

  /**
   * Stops serving this process's registry gateways (the sandboxes keep running; a new driver's
   * prepare() serves them again). For a clean shutdown of the orchestrator or a test.
   */
  async close(): Promise<void> {
    const proxies = [...this.egress.values()];
    this.egress.clear();
    await Promise.all(proxies.map((p) => p.then((x) => x.close(), () => {})));
    const all = [...this.gateways.values()];
    this.gateways.clear();
    await Promise.all(all.map((g) => g.then((x) => x.close(), () => {})));
  }

  /** Where a sandbox's files are on the host (for tests and debugging). */
  sandboxDir(id: string): string {
    return this.dir(id);
  }

  private async info(meta: SandboxMeta): Promise<SandboxInfo> {
    const state = await this.runc.state(meta.id);
    const base = { id: meta.id, hostname: meta.hostname, createdAt: new Date(meta.createdAt) };
    if (!state) return { ...base, state: "missing" };
    if (state.status === "running" || state.status === "created" || state.status === "paused") return { ...base, state: "running", pid: state.pid };
    return { ...base, state: "stopped" };
  }

  private async readMeta(id: string): Promise<SandboxMeta | undefined> {
    const file = join(this.dir(id), "meta.json");
    if (!existsSync(file)) return undefined;
    return JSON.parse(await readFile(file, "utf8")) as SandboxMeta;
  }
}

export function createNamespacesDriver(opts?: NamespacesDriverOptions): NamespacesDriver {
  return new NamespacesDriver(opts);
}


async function writeOwned(path: string, text: string, uid: number, gid: number, mode = 0o644): Promise<void> {
  await writeFile(path, text, { mode });
  await chown(path, uid, gid);
}

/** Mount points under dir, deepest first, as the host's mount table shows them. */
function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith("/") ? dir : dir + "/";
  return readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1]?.replace(/\\040/g, " ") ?? "")
    .filter((m) => m === dir || m.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

async function unmountAll(dir: string): Promise<void> {
  for (const m of mountsUnder(dir)) {
    try {
      await runHostCommand("umount", [m]);
    } catch {
      // Still busy for a moment after the last process died: detach it now, the kernel frees it later.
      await runHostCommand("umount", ["-l", m]);
    }
  }
}

function readTail(path: string, lines = 15): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}
