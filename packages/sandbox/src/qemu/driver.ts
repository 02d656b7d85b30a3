// The qemu driver: one sandbox = one QEMU virtual machine with a kernel of its own (Debian's), the
// shared read-only root image plus a writable disk of its own, and the same agent as the namespaces
// driver as the guest's service. The host reaches the agent through one virtio-serial port,
// multiplexed by berth-vmmux (vmmux.c) on both ends. Why q35 and not microvm, why virtio-serial and
// not vsock, and what is measured: docs/sandboxes.md ("The qemu driver").
//
// On disk, per sandbox (stateDir/vms/<id>/, root-owned, 0711):
//   meta.json     what list() reports after an orchestrator restart
//   token         the agent's token (0600; the guest gets it in its initrd, which the host deletes)
//   agent.sock    the agent, as AgentClient dials it (the host mux; root only)
//   ctl.sock      the host's control channel: stats and trusted checks (root only)
//   gw/           0700, root's: registry.sock, this sandbox's lab registry gateway (with
//                 registryUpstream), which only the host mux dials, for the guest's registry channels
//   mux.log       the host mux's stderr
//   vm/           owned by the sandbox's own host uid, 0700: what QEMU (running as that uid) writes
//     disk.img    this guest's disk (sparse ext4 of diskBytes: the overlay's upper layer)
//     initrd      the shared initramfs + this guest's config archive (hostname, token, limits)
//     link.sock   the virtio-serial port's host end (QEMU's chardev; the mux connects to it)
//     console.log the guest's serial console; qemu.log QEMU's own stderr
import { spawn, execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync } from "node:fs";
import { appendFile, chmod, chown, copyFile, mkdir, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { connect as netConnect, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureBaseRootfs, DEFAULT_STATE_DIR } from "../rootfs/build.js";
import { ensureBaseImage, ensureGuestKernel, ensureInitramfs, guestConfigCpio, removeUnusedQemuImages, type GuestKernel } from "./image.js";
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
import { ensureAgentDir } from "../namespaces/agent-dir.js";
import { SandboxCgroup, type CgroupVersion } from "../namespaces/cgroups.js";
import { runHostCommand } from "../namespaces/host-command.js";
import { findHostTools } from "../namespaces/host-tools.js";
import { RegistryGateway, registryOwner } from "../namespaces/registry-gateway.js";
import type { RegistryQuota } from "../namespaces/registry-quota.js";

const HERE = dirname(fileURLToPath(import.meta.url));
export type Accelerator = "kvm" | "tcg";

export interface QemuDriverOptions {
  stateDir?: string;
  /** How long create() waits for the agent (default: 60 s with KVM, 480 s under TCG: a boot on a loaded 2-core host took 3-4 min). */
  agentTimeoutMs?: number;
  /** "auto" (default): KVM when a probe VM starts on /dev/kvm, TCG otherwise. */
  accel?: Accelerator | "auto";
  /** Debian's kernel package the guests boot (default: the one linux-image-amd64 depends on). */
  kernelPackage?: string;
  /** Run the container engine in the guest (default true, as the namespaces driver). */
  engine?: boolean;
  /** QEMU's binary (default qemu-system-x86_64 on PATH). */
  qemu?: string;
  /** How many times slower than a namespaces sandbox (SandboxDriver.timeScale): default 1 on KVM, 10 under TCG. */
  timeScale?: number;
  /**
   * The lab registry (e.g. "http://127.0.0.1:5000"): each guest gets localhost:5000 through a
   * registry channel of its link to a gateway of its own, as a namespaces sandbox does through its
   * socket (lab images read-only, the learner's names in their own namespace). No network device.
   */
  registryUpstream?: string;
  /** Each learner's storage quota in the lab registry (as for the namespaces driver). */
  registryQuota?: RegistryQuota;
}

const TCG_TIME_SCALE = 10;

interface VmMeta {
  id: string;
  hostname: string;
  createdAt: string;
  limits: SandboxLimits;
  accel: Accelerator;
  uid: number;
  cgroupId: string;
  cgroupVersion: CgroupVersion;
  baseImage: string;
  initramfs: string;
  kernel: string;
  qemuPid?: number;
  muxPid?: number;
  /** Its namespace in the lab registry, when it has a gateway. */
  registryOwner?: string;
}

/** Each guest's QEMU runs as a host uid of its own (so one compromised QEMU cannot signal or ptrace another). */
const VM_UID_BASE = 300_000;
const VM_UID_COUNT = 10_000;
/** QEMU's own memory beyond the guest's: the TCG translation cache is the big part. */
const QEMU_OVERHEAD_BYTES: Record<Accelerator, number> = { kvm: 192 << 20, tcg: 448 << 20 };
const MAX_SOCKET_PATH = 107;

export class QemuDriver implements SandboxDriver {
  readonly name = "qemu";
  readonly stateDir: string;
  private readonly opts: QemuDriverOptions;
  private readonly qemu: string;
  private prepared: Promise<{ kernel: GuestKernel; initramfs: string; baseImage: string; mux: string; accel: Accelerator }> | undefined;

  /**
   * Known for sure after prepare() (the KVM probe); before it, a guess from the options and
   * whether /dev/kvm exists.
   */
  timeScale: number;

  constructor(opts: QemuDriverOptions = {}) {
    this.opts = opts;
    const want = opts.accel;
    this.timeScale = opts.timeScale ?? (want === "kvm" || (want !== "tcg" && existsSync("/dev/kvm")) ? 1 : TCG_TIME_SCALE);
    this.stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
    this.qemu = opts.qemu ?? "qemu-system-x86_64";
    if (opts.registryUpstream !== undefined && !/^http:\/\/[^/]+\/?$/.test(opts.registryUpstream)) {
      throw new Error(`registryUpstream ${JSON.stringify(opts.registryUpstream)}: want http://host:port (the lab registry on this host)`);
    }
  }

  /** The accelerator this driver's guests get (after prepare()). */
  async accelerator(): Promise<Accelerator> {
    return (await this.prepareOnce()).accel;
  }

  async prepare(onProgress?: (line: string) => void): Promise<void> {
    await this.prepareOnce(onProgress);
    await this.serveExistingGateways(onProgress);
  }

  /** This process's registry gateways by sandbox id (a promise while listening, so two callers never both bind). */
  private readonly gateways = new Map<string, Promise<RegistryGateway>>();

  private gatewaySocket(id: string): string {
    return join(this.dir(id), "gw", "registry.sock");
  }

  private async serveGateway(id: string, owner: string): Promise<void> {
    const upstream = this.opts.registryUpstream;
    if (!upstream) return;
    let gw = this.gateways.get(id);
    if (!gw) {
      gw = RegistryGateway.listen({ socketPath: this.gatewaySocket(id), upstream, owner, quota: this.opts.registryQuota });
      this.gateways.set(id, gw);
      gw.catch(() => this.gateways.get(id) === gw && this.gateways.delete(id));
    }
    // The gateway makes its socket 0666 (a namespaces sandbox's root is an unprivileged host uid);
    // here only the host mux (root) dials it, and gw/ is root's 0700.
    await gw;
  }

  /** Guests outlive the process that made them: serve the gateways no live process serves. */
  private async serveExistingGateways(onProgress?: (line: string) => void): Promise<void> {
    if (!this.opts.registryUpstream) return;
    if (!this.opts.registryQuota) onProgress?.("qemu: learners' pushes to the lab registry have no quota (registryQuota not set)");
    const root = join(this.stateDir, "vms");
    if (!existsSync(root)) return;
    for (const id of await readdir(root)) {
      if (this.gateways.has(id)) continue;
      const meta = await this.readMeta(id).catch(() => undefined);
      if (!meta?.registryOwner || !existsSync(join(this.dir(id), "gw"))) continue;
      if (await socketAnswers(this.gatewaySocket(id))) continue;
      await this.serveGateway(id, meta.registryOwner).catch((err: Error) => onProgress?.(`qemu: ${id}: no registry gateway (${err.message})`));
    }
  }

  /** Hands a running guest to an owner (a warm sandbox claimed by a learner): its gateway follows at once. */
  async assignOwner(id: string, owner: string): Promise<void> {
    const meta = await this.readMeta(id);
    if (!meta) throw new Error(`no sandbox ${id}`);
    if (!this.opts.registryUpstream || !meta.registryOwner) return;
    if (registryOwner(owner) !== owner) throw new Error(`invalid owner ${JSON.stringify(owner)}: lower-case letters and digits, separated by '.', '_' or '-' (at most 64)`);
    meta.registryOwner = owner;
    await this.writeMeta(meta);
    const gw = this.gateways.get(id);
    if (gw) (await gw).setOwner(owner);
    else await this.serveGateway(id, owner);
  }

  /** Stops this process's registry gateways (the guests keep running; the next prepare() serves them). */
  async close(): Promise<void> {
    const all = [...this.gateways.values()];
    this.gateways.clear();
    await Promise.all(all.map((g) => g.then((x) => x.close(), () => {})));
  }

  private prepareOnce(onProgress?: (line: string) => void) {
    if (!this.prepared) {
      this.prepared = (async () => {
        if (process.getuid?.() !== 0) throw new Error("the qemu driver needs root (per-guest host uids and cgroups)");
        const progress = onProgress ?? (() => {});
        const accel = this.detectAccel(progress);
        const mux = buildMux(join(this.stateDir, "qemu", "bin"));
        const rootfs = await ensureBaseRootfs({ stateDir: this.stateDir, onProgress });
        const agentDir = await ensureAgentDir(this.stateDir);
        const kernel = await ensureGuestKernel(this.stateDir, progress, this.opts.kernelPackage);
        const initramfs = await ensureInitramfs(kernel, this.stateDir);
        // The learner's docker CLI and the engine's busybox: the same static host binaries the
        // namespaces driver binds, copied into the image (a guest has no bind mounts from the host).
        const tools = findHostTools(progress);
        const hostFiles: Record<string, string> = {};
        if (tools.dockerCli) hostFiles["/usr/local/bin/docker"] = tools.dockerCli;
        if (tools.busybox) hostFiles["/bin/busybox"] = tools.busybox;
        const baseImage = await ensureBaseImage({ rootfs, agentDir, hostFiles, kernel, vmFiles: { "berth-vmmux": mux, "guest-init": join(HERE, "guest-init.sh") } }, this.stateDir, progress);
        await mkdir(join(this.stateDir, "vms"), { recursive: true });
        const inUse = new Set([initramfs, baseImage]);
        for (const id of await readdir(join(this.stateDir, "vms"))) {
          const meta = await this.readMeta(id).catch(() => undefined);
          if (!meta) continue;
          inUse.add(meta.baseImage).add(meta.initramfs);
          // A guest whose host mux died (killed, or the host's OOM killer) is unreachable: QEMU's
          // chardev takes a new connection, so a new mux brings it back.
          if (meta.qemuPid && isQemuOf(meta.qemuPid, id) && !isMuxOf(meta.muxPid, id)) {
            await this.startMux(meta, mux);
            progress(`qemu: ${id}: its host mux had died: started again`);
          }
        }
        for (const path of await removeUnusedQemuImages(this.stateDir, inUse)) progress(`qemu: removed unused ${path}`);
        if (this.opts.timeScale === undefined) this.timeScale = accel === "kvm" ? 1 : TCG_TIME_SCALE;
        progress(`qemu: guests run on ${accel === "kvm" ? "KVM" : "TCG (software emulation: slow; no usable /dev/kvm)"}, kernel ${kernel.version}`);
        return { kernel, initramfs, baseImage, mux, accel };
      })();
      this.prepared.catch(() => (this.prepared = undefined));
    }
    return this.prepared;
  }

  /**
   * KVM when asked for, or when /dev/kvm opens and a probe VM with `-cpu host` starts and stays up
   * (a nested host can have /dev/kvm and still fail on the first vCPU, as with an MSR it refuses).
   */
  private detectAccel(progress: (line: string) => void): Accelerator {
    const want = this.opts.accel ?? "auto";
    if (want !== "auto" && want !== "kvm" && want !== "tcg") throw new Error(`qemu: accel ${JSON.stringify(want)}: want kvm, tcg or auto`);
    if (want !== "auto") return want;
    try {
      closeSync(openSync("/dev/kvm", "r+"));
    } catch (err) {
      progress(`qemu: /dev/kvm: ${(err as Error).message}: using TCG`);
      return "tcg";
    }
    try {
      // -S: stop before the first instruction; a vCPU that KVM refuses fails before that. timeout
      // ends a probe that is fine (exit 124): that is the success case.
      execFileSync("timeout", ["2", this.qemu, "-M", "q35", "-accel", "kvm", "-cpu", "host", "-nodefaults", "-display", "none", "-S"], { stdio: ["ignore", "ignore", "pipe"] });
    } catch (err) {
      const e = err as { status?: number; stderr?: Buffer };
      if (e.status === 124) return "kvm";
      progress(`qemu: KVM refused a probe VM (${e.stderr?.toString().trim().split("\n").pop() ?? `exit ${e.status}`}): using TCG`);
      return "tcg";
    }
    return "tcg";
  }

  private dir(id: string): string {
    if (!SANDBOX_ID_PATTERN.test(id)) throw new Error(`invalid sandbox id ${JSON.stringify(id)}: use letters, digits, '.', '_', '-' (at most 63)`);
    return join(this.stateDir, "vms", id);
  }

  async create(spec: SandboxSpec): Promise<SandboxInfo> {
    const dir = this.dir(spec.id);
    if (!/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/.test(spec.hostname)) {
      throw new Error(`invalid hostname ${JSON.stringify(spec.hostname)}: use letters, digits and '-' (one label, at most 63)`);
    }
    if (join(dir, "vm", "link.sock").length > MAX_SOCKET_PATH || join(dir, "gw", "registry.sock").length > MAX_SOCKET_PATH) throw new Error(`socket paths too long for a UNIX socket under ${dir}: use a shorter state dir or id`);
    const owner = this.opts.registryUpstream ? registryOwner(spec.owner ?? spec.id) : undefined;
    if (owner && spec.owner !== undefined && owner !== spec.owner) throw new Error(`invalid owner ${JSON.stringify(spec.owner)}: lower-case letters and digits, separated by '.', '_' or '-' (at most 64)`);
    const limits: SandboxLimits = { ...DEFAULT_LIMITS, ...spec.limits };
    if (!(limits.memoryBytes >= 128 * 1024 * 1024) || !(limits.cpus > 0) || !(Number.isInteger(limits.pids) && limits.pids >= 16) || !(Number.isInteger(limits.diskBytes) && limits.diskBytes >= 64 * 1024 * 1024)) {
      throw new Error(`invalid limits ${JSON.stringify(limits)}: memoryBytes ≥ 128 MiB (a kernel of its own), cpus > 0, pids an integer ≥ 16, diskBytes an integer ≥ 64 MiB`);
    }
    const { kernel, initramfs, baseImage, mux, accel } = await this.prepareOnce();
    try {
      await mkdir(dir, { mode: 0o711 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new Error(`sandbox ${spec.id} already exists; destroy it first`);
      throw err;
    }
    const started = Date.now();
    try {
      const uid = await this.claimUid(spec.id);
      const cgroup = new SandboxCgroup(spec.id);
      const meta: VmMeta = {
        id: spec.id,
        hostname: spec.hostname,
        createdAt: new Date().toISOString(),
        limits,
        accel,
        uid,
        cgroupId: spec.id,
        cgroupVersion: cgroup.version,
        baseImage,
        initramfs,
        kernel: kernel.vmlinuz,
        ...(owner ? { registryOwner: owner } : {}),
      };
      await this.writeMeta(meta);
      if (owner) {
        // Before the guest boots: its first registry channel finds the gateway listening.
        await mkdir(join(dir, "gw"), { mode: 0o700 });
        await this.serveGateway(spec.id, owner);
      }
      const vm = join(dir, "vm");
      await mkdir(vm, { mode: 0o700 });
      await chown(vm, uid, uid);

      // The guest's disk: formatted here (fast), so the guest only mounts it.
      const disk = join(vm, "disk.img");
      await writeFile(disk, "");
      await truncate(disk, limits.diskBytes);
      await runHostCommand("mkfs.ext4", ["-q", "-F", "-L", "berth-disk", "-E", "root_owner=0:0", disk]);
      await chown(disk, uid, uid);

      const token = randomBytes(32).toString("hex");
      await writeFile(join(dir, "token"), token, { mode: 0o600 });
      const initrd = join(vm, "initrd");
      await copyFile(initramfs, initrd);
      const config = `BERTH_PIDS_MAX=${limits.pids}\n${this.opts.engine === false ? "" : "BERTH_ENGINE=1\n"}${owner ? "BERTH_REGISTRY=1\n" : ""}`;
      await appendFile(initrd, guestConfigCpio({ token, hostname: spec.hostname, config }));
      await chown(initrd, uid, uid);
      await chmod(initrd, 0o600);

      // QEMU's host cgroup: the guest's memory plus QEMU's own, its CPUs, a pids cap on its threads.
      const hostLimits: SandboxLimits = { memoryBytes: limits.memoryBytes + QEMU_OVERHEAD_BYTES[accel], cpus: limits.cpus, pids: 128, diskBytes: limits.diskBytes };
      await cgroup.create(hostLimits, 0, 0); // (the box stays root's: QEMU makes no cgroups)
      // v1's devices controller would keep QEMU from /dev/kvm: it joins every other one.
      const procs = cgroup
        .existingDirs()
        .filter((d) => !d.includes("/devices/"))
        .map((d) => join(d, "box", "cgroup.procs"))
        .filter((f) => existsSync(f));

      const smp = Math.max(1, Math.ceil(limits.cpus));
      const args = [
        "-name", `berth-${spec.id}`,
        "-M", "q35",
        // TCG's translation cache defaults to 1 GiB in QEMU 7.2; 256 MiB keeps a guest's host
        // memory near its own size at little cost in retranslation.
        "-accel", accel === "tcg" ? "tcg,tb-size=256" : "kvm",
        "-cpu", accel === "kvm" ? "host" : "max",
        "-m", `${Math.floor(limits.memoryBytes / (1 << 20))}M`,
        "-smp", String(smp),
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-serial", `file:${join(vm, "console.log")}`,
        "-kernel", kernel.vmlinuz,
        "-initrd", initrd,
        // no_timer_check: a slow (emulated or overcommitted) vCPU fails the IO-APIC timer check and the
        // boot then stalls; every hypervisor guest may skip it.
        "-append", "console=ttyS0 quiet panic=-1 no_timer_check",
        "-drive", `id=base,file=${baseImage},format=raw,if=none,readonly=on`,
        "-device", "virtio-blk-pci,drive=base,serial=berth-base",
        "-drive", `id=disk,file=${disk},format=raw,if=none,discard=unmap`,
        "-device", "virtio-blk-pci,drive=disk,serial=berth-disk",
        "-device", "virtio-serial-pci",
        "-chardev", `socket,id=link,path=${join(vm, "link.sock")},server=on,wait=off`,
        "-device", "virtserialport,chardev=link,name=org.berth.link",
        // seccomp: no exec, no setuid, no obsolete or resource-control system calls.
        "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
      ];
      const qemuLog = openSync(join(vm, "qemu.log"), "a");
      let qemuPid: number | undefined;
      try {
        // As root: join its cgroups; then setpriv drops to the guest's own uid (a kvm gid for
        // /dev/kvm), no supplementary groups, no capabilities, no new privileges, and runs QEMU.
        const gid = accel === "kvm" ? kvmGid() ?? uid : uid;
        const drop = ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", this.qemu];
        // ulimit -f: no file QEMU writes grows past the disk's size, the console log included
        // (root in the guest can write to the console without end).
        const blocks = Math.ceil(limits.diskBytes / 512);
        const child = spawn("/bin/sh", ["-c", `for f in $BERTH_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; ulimit -f ${blocks}; exec "$@"`, "sh", ...drop, ...args], {
          detached: true,
          stdio: ["ignore", qemuLog, qemuLog],
          env: { PATH: process.env.PATH ?? "/usr/bin:/bin", BERTH_CGROUP_PROCS: procs.join(" ") } as unknown as NodeJS.ProcessEnv,
          cwd: vm,
        });
        child.unref();
        qemuPid = child.pid;
      } finally {
        closeSync(qemuLog);
      }
      if (!qemuPid) throw new Error(`could not start ${this.qemu}`);
      meta.qemuPid = qemuPid;
      await this.writeMeta(meta);

      await this.startMux(meta, mux);

      await this.waitForAgent(meta, { socketPath: join(dir, "agent.sock"), token });
      // The token stays on the host: the initrd that carried it goes.
      await rm(initrd, { force: true });
      log(`qemu: ${spec.id} up in ${((Date.now() - started) / 1000).toFixed(1)} s (${accel})`);
      return await this.info(meta);
    } catch (err) {
      const tail = readTail(join(dir, "vm", "console.log")) || readTail(join(dir, "vm", "qemu.log"));
      await this.destroy(spec.id).catch(() => {});
      throw new Error(`could not create sandbox ${spec.id}: ${(err as Error).message}${tail ? `\nconsole:\n${tail}` : ""}`);
    }
  }

  /** The host end of the guest's link (detached: it lives as long as QEMU, not as this process). */
  private async startMux(meta: VmMeta, mux: string): Promise<void> {
    const dir = this.dir(meta.id);
    const muxLog = openSync(join(dir, "mux.log"), "a");
    try {
      // With a gateway, the guest's registry channels lead to it (and the guest can open nothing else).
      const registry = meta.registryOwner ? [this.gatewaySocket(meta.id)] : [];
      const child = spawn(mux, ["host", join(dir, "vm", "link.sock"), join(dir, "agent.sock"), join(dir, "ctl.sock"), ...registry], { detached: true, stdio: ["ignore", muxLog, muxLog], env: {} as NodeJS.ProcessEnv });
      child.unref();
      meta.muxPid = child.pid;
    } finally {
      closeSync(muxLog);
    }
    await this.writeMeta(meta);
  }

  /** A host uid for the guest's QEMU, claimed by an atomic mkdir (two creates never share one). */
  private async claimUid(id: string): Promise<number> {
    const root = join(this.stateDir, "qemu", "uids");
    await mkdir(root, { recursive: true });
    const start = parseInt(createHash("sha256").update(id).digest("hex").slice(0, 8), 16) % VM_UID_COUNT;
    for (let i = 0; i < VM_UID_COUNT; i++) {
      const n = (start + i) % VM_UID_COUNT;
      try {
        await mkdir(join(root, String(n)));
        await writeFile(join(root, String(n), "id"), id);
        return VM_UID_BASE + n;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
    }
    throw new Error(`qemu: all ${VM_UID_COUNT} guest uids are in use`);
  }

  private async waitForAgent(meta: VmMeta, ep: AgentEndpoint): Promise<void> {
    const log = join(this.dir(meta.id), "vm", "qemu.log");
    await waitForAgentHealth(ep, {
      timeoutMs: this.opts.agentTimeoutMs ?? (meta.accel === "kvm" ? 60_000 : 480_000),
      attemptTimeoutMs: 5000,
      intervalMs: 250,
      gone: () => (isAlive(meta.qemuPid) ? null : `QEMU exited before the agent answered${readTail(log) ? `: ${readTail(log, 3)}` : ""}`),
    });
  }


  async stop(id: string): Promise<void> {
    const meta = await this.readMeta(id);
    if (!meta) return;
    await killAndWait(meta.qemuPid, "qemu");
    await killAndWait(meta.muxPid, "berth-vmmux");
  }

  async destroy(id: string): Promise<void> {
    const dir = this.dir(id);
    const meta = await this.readMeta(id);
    if (meta) {
      await killAndWait(meta.qemuPid, "qemu", 0);
      await killAndWait(meta.muxPid, "berth-vmmux", 0);
      const gateway = this.gateways.get(id);
      this.gateways.delete(id);
      await gateway?.then((g) => g.close(), () => {});
      // Whatever is left in its cgroup (a QEMU whose pid we never wrote down) dies with it.
      await new SandboxCgroup(meta.cgroupId, meta.cgroupVersion).remove();
      const claim = join(this.stateDir, "qemu", "uids", String(meta.uid - VM_UID_BASE));
      if ((await readFile(join(claim, "id"), "utf8").catch(() => "")) === id) await rm(claim, { recursive: true, force: true });
    }
    await rm(dir, { recursive: true, force: true });
  }

  async connect(id: string): Promise<AgentEndpoint> {
    const dir = this.dir(id);
    if (!existsSync(join(dir, "token"))) throw new Error(`no sandbox ${id} under ${this.stateDir}`);
    const token = (await readFile(join(dir, "token"), "utf8")).trim();
    // Under TCG the guest answers ~10 times slower: the endpoint says so, and every dial stretches
    // its timeout. By this guest's own accelerator (a fresh driver knows it only after prepare()).
    const accel = (await this.readMeta(id).catch(() => undefined))?.accel;
    const scale = this.opts.timeScale ?? (accel === "tcg" ? TCG_TIME_SCALE : accel === "kvm" ? 1 : this.timeScale);
    return { socketPath: join(dir, "agent.sock"), token, ...(scale > 1 ? { timeScale: scale } : {}) };
  }

  /**
   * The learner's cgroup inside the guest (memory, pids, CPU of what the learner runs), its OOM
   * kills, the kills of the VM's memory running out (memoryLimitHits: the VM's memory is the
   * sandbox's limit) and forks refused at its pids limit. The guest's kernel counts: see "Security
   * argument" in docs/sandboxes.md.
   */
  async stats(id: string): Promise<SandboxStats> {
    const meta = await this.readMeta(id);
    if (!meta) throw new Error(`no sandbox ${id} under ${this.stateDir}`);
    const sock = await this.control(id);
    try {
      sock.write("s");
      // 10 s on KVM; under TCG a guest busy with a memory hog took longer than that to answer.
      const text = (await readAll(sock, 200, Math.min(60_000, 10_000 * this.timeScale))).toString("latin1");
      // (three fields from a guest booted before the OOM and pids counters were sent)
      const m = /^(\d+) (\d+) (\d+)(?: (\d+) (\d+) (\d+))?\n$/.exec(text);
      if (!m) throw new Error(`sandbox ${id}: the guest sent no stats`);
      const counters = m[4] === undefined ? {} : { oomKills: Number(m[4]), memoryLimitHits: Number(m[5]), pidsLimitHits: Number(m[6]) };
      return { memoryBytes: Number(m[1]), pids: Number(m[2]), cpuUsageNs: Number(m[3]), ...counters, limits: meta.limits };
    } finally {
      sock.destroy();
    }
  }

  /**
   * A check runs in the guest (berth-vmmux's control channel): in the learner's mount, net, uts,
   * ipc and cgroup namespaces but a pid namespace of its own, the script on a memfd as bash's stdin.
   * On timeout the host closes the channel and the guest kills the check's pid namespace.
   */
  async execTrusted(id: string, script: string, opts: TrustedExecOptions): Promise<TrustedExecResult> {
    const cap = opts.maxOutputBytes ?? 16 * 1024;
    const started = performance.now();
    const sock = await this.control(id);
    const body = Buffer.from(script);
    const head = Buffer.alloc(9);
    head.write("x", 0, "latin1");
    head.writeUInt32BE(cap, 1);
    head.writeUInt32BE(body.length, 5);
    sock.write(Buffer.concat([head, body]));
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    return new Promise<TrustedExecResult>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      let settled = false;
      const finish = (r: Omit<TrustedExecResult, "stdout" | "stderr" | "durationMs">) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        resolve({ ...r, stdout: Buffer.concat(out), stderr: Buffer.concat(err), durationMs: Math.round(performance.now() - started) });
      };
      // Stretched like the uml driver's: a lab's timeout is written for a namespaces sandbox.
      const timer = setTimeout(() => finish({ exitCode: null, timedOut: true, truncated: false }), Math.min(600_000, Math.round(opts.timeoutMs * this.timeScale)));
      sock.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 5) {
          const type = buf[0];
          const len = buf.readUInt32BE(1);
          // The guest is the learner's: a frame that breaks the protocol ends the check.
          if (len > 1 << 20 || (type !== 1 && type !== 2 && type !== 3)) {
            finish({ exitCode: null, timedOut: false, truncated: true });
            return;
          }
          if (buf.length < 5 + len) break;
          const data = buf.subarray(5, 5 + len);
          buf = buf.subarray(5 + len);
          if (type === 1 && outLen + len <= cap) (out.push(Buffer.from(data)), (outLen += len));
          else if (type === 2 && errLen + len <= cap) (err.push(Buffer.from(data)), (errLen += len));
          else if (type === 3 && len === 5) {
            return finish({ exitCode: data.readInt32BE(0) < 0 ? null : data.readInt32BE(0), timedOut: false, truncated: data[4] === 1 });
          }
        }
      });
      sock.on("close", () => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          reject(new Error(`sandbox ${id}: the trusted check's channel closed before its end`));
        }
      });
      sock.on("error", () => {});
    });
  }

  private async control(id: string): Promise<Socket> {
    const path = join(this.dir(id), "ctl.sock");
    if (!existsSync(path)) throw new Error(`no sandbox ${id} under ${this.stateDir}`);
    return new Promise((resolve, reject) => {
      const s = netConnect(path);
      s.once("connect", () => {
        s.removeListener("error", reject);
        resolve(s);
      });
      s.once("error", reject);
    });
  }

  async list(): Promise<SandboxInfo[]> {
    const root = join(this.stateDir, "vms");
    if (!existsSync(root)) return [];
    const out: SandboxInfo[] = [];
    for (const id of (await readdir(root)).sort()) {
      const meta = await this.readMeta(id).catch(() => undefined);
      if (meta) out.push(await this.info(meta));
    }
    return out;
  }

  /** Where a sandbox's files are on the host (for tests and debugging). */
  sandboxDir(id: string): string {
    return this.dir(id);
  }

  /** The accelerator, QEMU's and the mux's host pids, the guest's host uid (tests, the bench). */
  async hostView(id: string): Promise<{ accel: Accelerator; qemuPid?: number; muxPid?: number; uid: number; cgroupId: string } | undefined> {
    const meta = await this.readMeta(id);
    return meta && { accel: meta.accel, qemuPid: meta.qemuPid, muxPid: meta.muxPid, uid: meta.uid, cgroupId: meta.cgroupId };
  }

  private async info(meta: VmMeta): Promise<SandboxInfo> {
    const base = { id: meta.id, hostname: meta.hostname, createdAt: new Date(meta.createdAt), accelerator: meta.accel };
    if (!meta.qemuPid) return { ...base, state: "missing" };
    return isQemuOf(meta.qemuPid, meta.id) ? { ...base, state: "running", pid: meta.qemuPid } : { ...base, state: "stopped" };
  }

  private async writeMeta(meta: VmMeta): Promise<void> {
    const file = join(this.dir(meta.id), "meta.json");
    await writeFile(`${file}.tmp`, JSON.stringify(meta, null, 2) + "\n");
    renameSync(`${file}.tmp`, file);
  }

  private async readMeta(id: string): Promise<VmMeta | undefined> {
    const file = join(this.dir(id), "meta.json");
    if (!existsSync(file)) return undefined;
    return JSON.parse(await readFile(file, "utf8")) as VmMeta;
  }
}

export function createQemuDriver(opts?: QemuDriverOptions): QemuDriver {
  return new QemuDriver(opts);
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Compiles vmmux.c statically (it runs in the guest too) into binDir, named by its source's hash. */
export function buildMux(binDir: string): string {
  const source = join(HERE, "vmmux.c");
  const bin = join(binDir, `berth-vmmux-${createHash("sha256").update(readFileSync(source)).digest("hex").slice(0, 12)}`);
  if (existsSync(bin)) return bin;
  mkdirSync(binDir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  try {
    execFileSync("cc", ["-static", "-O2", "-Wall", "-o", tmp, source], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (e) {
    throw new Error(`could not compile ${source} with cc -static (install Debian's gcc and libc6-dev): ${(e as { stderr?: Buffer }).stderr?.toString() ?? e}`);
  }
  renameSync(tmp, bin);
  return bin;
}

function kvmGid(): number | undefined {
  const line = readFileSync("/etc/group", "utf8")
    .split("\n")
    .find((l) => l.startsWith("kvm:"));
  return line ? Number(line.split(":")[2]) : undefined;
}

function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether pid is this sandbox's QEMU (not a reused pid): its command line names the guest. */
function isQemuOf(pid: number, id: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0");
    const i = argv.indexOf("-name");
    return i >= 0 && argv[i + 1] === `berth-${id}`;
  } catch {
    return false;
  }
}

/** Whether pid is this sandbox's host mux (its command line names the sandbox's agent socket). */
function isMuxOf(pid: number | undefined, id: string): boolean {
  if (!pid) return false;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0");
    return argv[1] === "host" && (argv[3] ?? "").endsWith(`/vms/${id}/agent.sock`) && !isZombie(pid);
  } catch {
    return false;
  }
}

/** SIGTERM (QEMU exits at once on it), then SIGKILL after graceMs; only a process whose command matches. */
async function killAndWait(pid: number | undefined, expect: string, graceMs = 3000): Promise<void> {
  if (!pid || !isAlive(pid)) return;
  let cmd = "";
  try {
    cmd = readFileSync(`/proc/${pid}/cmdline`, "latin1");
  } catch {
    return;
  }
  // A pid reused by something else since: not ours to kill.
  if (!cmd.includes(expect)) return;
  const deadline = Date.now() + graceMs;
  try {
    process.kill(pid, graceMs > 0 ? "SIGTERM" : "SIGKILL");
  } catch {
    return;
  }
  while (isAlive(pid) && !isZombie(pid)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        return;
      }
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

function isZombie(pid: number): boolean {
  try {
    return / Z /.test(readFileSync(`/proc/${pid}/stat`, "latin1").replace(/^.*\)/, ""));
  } catch {
    return true;
  }
}


function readAll(sock: Socket, max: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    const timer = setTimeout(() => reject(new Error("the guest did not answer in time")), timeoutMs);
    sock.on("data", (b: Buffer) => {
      parts.push(b);
      n += b.length;
      if (n > max) sock.destroy();
    });
    sock.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(parts));
    });
    sock.on("error", () => {});
  });
}

function readTail(path: string, lines = 15): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}
