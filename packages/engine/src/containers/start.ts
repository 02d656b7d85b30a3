/**
 * `docker start`, the lesson: what an engine does to turn an image and a record into a running
 * process. Read startContainer() top to bottom; each numbered step is one idea of the course:
 *
 *   1. rootfs    the image layers below, the container's own changes above (overlayfs)
 *   2. files     /etc/hostname, /etc/hosts, /etc/resolv.conf, volumes, binds, tmpfs, --init
 *   3. cgroup    a control group with the limits asked for
 *   4. identity  user and groups from the image's /etc/passwd, the capabilities kept
 *   5. network   addresses and ports taken, /etc/hosts and resolv.conf written
 *   6. shim      berth-shim unshares the namespaces, forks the container's PID 1 and plugs its
 *                new network namespace into the bridges (a veth pair each) ...
 *   7. join      ... which waits while the engine puts it in the cgroup
 *   8. exec      pivot_root, execve: the user's command runs
 *
 * The recipe (what the X-ray panel shows) is built when it has started, only from what the code
 * that did each step reported: berth-shim's report lines, the cgroup's recorded writes, and the
 * lines the network and volume code return (../recipe/recipe.ts).
 */
import fs from "node:fs";
import { PassThrough } from "node:stream";
import { Cgroup, type CgroupVersion } from "../cgroups/cgroups";
import { EngineError } from "../errors";
import type { EventLog } from "../events/log";
import { mark } from "../profile";
import type { NetContainer, NetworkManager } from "../network/manager";
import { capabilityMask, capabilitySet, RLIMITS, ShimProcess, type ShimPool, type ShimSpec } from "../runtime/shim";
import type { Snapshotter } from "../snapshots/snapshotter";
import { buildRecipe } from "../recipe/recipe";
import { resolveContainerPath, resolveInRoot, type MountMap } from "../api/archive";
import type { PlannedMount } from "../volumes/mounts";
import type { VolumeStore } from "../volumes/store";
import type { Container, HostConfig } from "./container";
import { consoleSize, daemonEnvironment, limitsOf, mergeEnv, rlimitsOf, sysctlsOf, withDnsSettings, withExtraHosts } from "./spec";
import { resolveGroups, resolveUser, type RootFiles } from "./user";

/** The init `docker run --init` puts in front of the command (Debian's tini package; static, so any image can run it). */
export const INIT_BINARY = "/usr/bin/tini-static";

/** What starting a container needs from the engine around it (the ContainerService gives itself). */
export interface StartEnv {
  /** Root filesystems, by container id (../snapshots/snapshotter.ts). */
  snapshots: Snapshotter;
  volumes: VolumeStore;
  network: NetworkManager;
  shimBin: string;
  /** A shim started ahead of time, when there is one (runtime/shim.ts). */
  shims: ShimPool;
  cgroupVersion: CgroupVersion;
  cgroupParent: string;
  netView(c: Container): NetContainer;
  find(ref: string): Container;
  /** Live restore: the shim is to outlive the engine, writing its exit code to this file. */
  liveRestore: boolean;
  exitFile(c: Container): string;
  /** The shim ended: record the exit (the service's onExit). */
  exited(c: Container, code: number): void;
  /** `docker events` (a volume's mount is one). */
  events: EventLog;
}

export async function startContainer(env: StartEnv, c: Container): Promise<void> {
  const r = c.record;
  const cfg = r.Config;
  // What the engine's own code reports doing (volume copy-up, network); the shim reports the rest.
  const steps: string[] = [];
  const step = (s: string) => steps.push(s);

  // 1. The root filesystem: image layers below, this container's changes above. The shim mounts
  //    it (step 6), unless the engine must look inside first: volumes, binds or tmpfs to place, or
  //    a user the layers alone cannot tell (then the engine mounts it now).
  //    The snapshotter says how it mounts (overlayfs, which the shim can do with mount(2)) and
  //    can read a file from the layers without mounting when the layers alone can tell.
  //    Already mounted (a cp, an earlier run), it must not be mounted a second time over itself.
  const rootMount = env.snapshots.mountSpec(c.id);
  const rootfs = rootMount.target;
  let files: RootFiles | undefined;
  if (!r.Mounts?.length && rootMount.type === "overlay" && !env.snapshots.isMounted(c.id)) {
    const passwd = env.snapshots.readFile(c.id, "etc/passwd"), group = env.snapshots.readFile(c.id, "etc/group");
    if (passwd !== undefined && group !== undefined) files = (rel) => (rel === "etc/passwd" ? passwd : rel === "etc/group" ? group : null);
  }
  const shimMounts = files !== undefined;
  if (!shimMounts) env.snapshots.mount(c.id);
  files ??= rootfs;
  mark("start: rootfs ready");

  // 2. The files Docker gives every container, and the volumes, binds and tmpfs asked for;
  //    --device nodes bound into its /dev.
  const binds = placeFiles(env, c, rootfs, step);
  const devices = hostDevices(r.HostConfig);
  binds.push(...devices.map((d) => d.bind));
  // Checked before anything is made that would need undoing.
  const pid = pidNamespace(env, r.HostConfig);
  const sysctls = sysctlsOf(r.HostConfig);
  const rlimits = rlimitsOf(r.HostConfig, RLIMITS);
  mark("start: files placed");

  // 3. A cgroup with the limits asked for (and the --device nodes allowed).
  const cgroup = new Cgroup(env.cgroupVersion, c.id, "/sys/fs/cgroup", env.cgroupParent);
  cgroup.create({ ...limitsOf(r.HostConfig), devices: r.HostConfig.Privileged ? ["a"] : devices.map((d) => d.rule) });
  c.cgroup = cgroup;
  mark("start: cgroup made");

  // 4. Who runs: user and groups from the image's /etc/passwd (and --group-add), the
  //    capabilities it keeps, the limits it inherits (--ulimit, --oom-score-adj).
  const user = resolveUser(files, cfg.User);
  user.groups = [...new Set([...user.groups, ...resolveGroups(files, ((r.HostConfig.GroupAdd as string[] | null) ?? []).map(String))])];
  mark("start: user resolved");
  const caps = capabilitySet(r.HostConfig.CapAdd ?? [], r.HostConfig.CapDrop ?? [], r.HostConfig.Privileged);

  // 5. The network: addresses and published ports are taken (a port conflict fails here, before
  //    anything runs), /etc/hosts and /etc/resolv.conf written (bound in as step 2 said).
  let net;
  try {
    net = await env.network.prepare(env.netView(c), (ref) => env.netView(env.find(ref)), hostResolvConf());
  } catch (e) {
    cgroup.remove();
    throw e;
  }
  mark("start: network prepared");
  for (const s of net.steps) step(s);
  fs.writeFileSync(r.HostsPath, withExtraHosts(net.hosts, r.HostConfig.ExtraHosts as string[] | null)); // --add-host
  fs.writeFileSync(r.ResolvConfPath, withDnsSettings(net.resolvConf, r.HostConfig)); // --dns, --dns-search, --dns-option

  // 6. berth-shim: unshare(CLONE_NEWPID), fork, unshare(NEWNS|NEWUTS|NEWIPC|NEWNET) ...
  const spec: ShimSpec = {
    mode: "run",
    rootfs,
    overlay: shimMounts ? rootMount.options : undefined,
    unmountAtExit: r.HostConfig.AutoRemove === true, // `--rm`: no `umount` process after it
    hostname: r.HostConfig.UTSMode === "host" ? undefined : cfg.Hostname,
    hostUts: r.HostConfig.UTSMode === "host",
    privileged: r.HostConfig.Privileged,
    exitFile: env.liveRestore ? env.exitFile(c) : undefined,
    domainname: r.HostConfig.UTSMode === "host" ? undefined : cfg.Domainname || undefined,
    ...pid,
    sysctls,
    rlimits,
    oomScoreAdj: typeof r.HostConfig.OomScoreAdj === "number" ? r.HostConfig.OomScoreAdj : undefined,
    cwd: cfg.WorkingDir || "/",
    ...user,
    env: daemonEnvironment(mergeEnv(net.env ?? [], cfg.Env), cfg.Hostname, cfg.Tty, user.home), // legacy-link variables first: the container's own win
    binds,
    caps: capabilityMask(caps),
    tty: cfg.Tty,
    readOnly: r.HostConfig.ReadonlyRootfs,
    noNewPrivileges: (r.HostConfig.SecurityOpt ?? []).some((o) => /^no-new-privileges(:true|=true)?$/.test(o)),
    hostNetwork: net.hostNetwork,
    netns: net.netns,
    veths: net.veths,
    size: consoleSize(r.HostConfig.ConsoleSize),
    argv: r.HostConfig.Init === true ? ["/sbin/docker-init", "--", r.Path, ...r.Args] : [r.Path, ...r.Args],
    stdin: cfg.OpenStdin,
  };
  if (spec.exitFile) fs.rmSync(spec.exitFile, { force: true });
  mark("start: spec ready");
  // Live restore finds a shim again by the exit file on its command line: that one gets a fresh process.
  const shim = new ShimProcess(env.shimBin, spec, spec.exitFile ? undefined : env.shims.take());
  mark("start: shim spawned");
  r.shimPid = shim.child.pid;
  c.shim = shim;
  let hostPid = 0;
  c.stopping = false;
  Object.assign(r.State, { OOMKilled: false, Error: "" });
  connectStreams(c, shim);

  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = (pid: number, e: EngineError) => {
      settled = true;
      process.kill(pid, "SIGKILL");
      reject(e);
    };
    // 7. The child exists, in its new namespaces (it has reported their inodes), but has not run
    //    anything: put it in the cgroup (cgroup.procs), then let it go on.
    shim.once("pid", (pid: number) => {
      hostPid = pid;
      mark("start: shim child pid");
      try {
        cgroup.addProcess(pid);
      } catch (e) {
        return fail(pid, new EngineError(500, `failed to join cgroup: ${(e as Error).message}`));
      }
      // Its veth pairs are plugged in already (the shim made them before it told us the pid); it
      // addresses eth<N> and routes through the first gateway once it goes on.
      env.network.attached(env.netView(c), pid);
      mark("start: joined cgroup, go");
      shim.go();
    });
    // 8. execve worked: the user's process is PID 1 of the container.
    shim.once("started", () => {
      mark("start: started (execve)");
      // The container may have been removed while it started (`docker rm -f` beside a restart
      // policy's restart): its snapshot is gone, and this listener must not throw (it would be
      // the engine's uncaught exception). The start fails instead; the removal ends the process.
      let snapshot: ReturnType<typeof rootfsOf>;
      try {
        snapshot = rootfsOf(env.snapshots, c.id);
      } catch (e) {
        if (settled) return;
        settled = true;
        return reject(e instanceof EngineError ? e : new EngineError(500, String(e)));
      }
      Object.assign(r.State, { Status: "running", Running: true, Pid: hostPid, ExitCode: 0, StartedAt: new Date().toISOString() }); // FinishedAt keeps the last stop, as dockerd does
      r.recipe = buildRecipe({
        argv: shim.argv,
        reports: shim.reports,
        hostPid,
        snapshot,
        cgroup: { version: cgroup.version, dirs: cgroup.dirs, writes: cgroup.writes, notes: cgroup.notes },
        hostname: cfg.Hostname,
        engineSteps: steps,
      });
      c.save();
      mark("start: recipe built, saved");
      settled = true;
      resolve();
    });
    shim.once("failed", (message: string) => {
      if (settled) return;
      settled = true;
      const code = /not found|no such file/.test(message) ? 127 : /permission denied/.test(message) ? 126 : 128;
      r.State.Error = message;
      r.State.ExitCode = code;
      // Worded as dockerd 20.10 + runc word it: the CLI turns "not found" into 127, "permission denied" into 126.
      reject(new EngineError(400, `failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: ${message}: unknown`));
    });
    shim.once("exit", (code: number) => {
      if (!settled) {
        settled = true;
        reject(new EngineError(500, `berth-shim exited with ${code} before the container started`));
      }
      env.exited(c, code);
    });
  });
}

/**
 * Step 2: /etc/hostname, /etc/hosts and /etc/resolv.conf (files of the container's directory bound
 * in), then volumes, binds and tmpfs mounts in order, then --init. Returns the shim's bind list.
 * A new, empty volume first gets what the image has at that path (unless the mount said nocopy);
 * `-v /host:/ctr` makes a missing host directory, `--mount` does not. Each destination is resolved
 * inside the container first (symlinks followed within its root and through the mounts already
 * placed), so an image's symlink cannot aim a mount or a copy-up at the engine's own files.
 */
function placeFiles(env: StartEnv, c: Container, rootfs: string, step: (s: string) => void): string[] {
  const r = c.record;
  fs.writeFileSync(r.HostnamePath, `${r.Config.Hostname}\n`);
  const binds = [`${r.HostnamePath}:/etc/hostname`, `${r.HostsPath}:/etc/hosts`, `${r.ResolvConfPath}:/etc/resolv.conf`];
  const placed: MountMap[] = [];
  // A tmpfs takes its place in the same ordered list ("tmpfs:DEST:FLAGS:DATA"), so a mount below
  // it is not hidden by it.
  for (const m of (r.Mounts ?? []) as PlannedMount[]) {
    const dest = resolveContainerPath(rootfs, m.Destination, placed);
    if (m.Type === "tmpfs") {
      binds.push(`tmpfs:${dest}:${m.tmpfs?.flags ?? 2 | 4 | 8}:${m.tmpfs?.data ?? ""}`);
      continue;
    }
    if (m.Type === "volume" && m.Name) {
      const v = env.volumes.get(m.Name) ?? env.volumes.create(m.Name);
      const from = resolveInRoot(rootfs, dest, true, placed);
      if (m.copyData !== false && env.volumes.seed(v, from)) step(`cp -a ${from}/. ${v.Mountpoint}/ (the image's files into the new volume)`);
    }
    if (m.Type === "bind" && !fs.existsSync(m.Source)) {
      if (!m.mkdirSource) throw new EngineError(400, `invalid mount config for type "bind": bind source path does not exist: ${m.Source}`);
      fs.mkdirSync(m.Source, { recursive: true });
    }
    placed.push({ Destination: dest, Source: m.Source });
    binds.push(`${m.Source}:${dest}${m.RW ? "" : ":ro"}`);
    if (m.Type === "volume" && m.Name) env.events.publish("volume", "mount", m.Name, { container: c.id, destination: m.Destination, driver: "local", propagation: "", "read/write": String(m.RW) });
  }
  // --init: Docker's docker-init is tini, statically linked, bound in read-only and run as PID 1
  // in front of the command: it reaps orphans and passes every signal on (chapter 23).
  if (r.HostConfig.Init === true) {
    if (!fs.existsSync(INIT_BINARY)) throw new EngineError(500, `--init needs ${INIT_BINARY}: install Debian's tini`);
    binds.push(`${INIT_BINARY}:/sbin/docker-init:ro`);
  }
  return binds;
}

/** --pid host (the engine's pid namespace) or --pid container:<name|id> (a running one's). */
function pidNamespace(env: StartEnv, h: HostConfig): { hostPid?: boolean; pidns?: string } {
  const mode = typeof h.PidMode === "string" ? h.PidMode : "";
  if (mode === "host") return { hostPid: true };
  if (!mode.startsWith("container:")) return {};
  const other = env.find(mode.slice("container:".length));
  if (!other.running) throw new EngineError(409, `container ${other.id} is not running`);
  return { pidns: `/proc/${other.record.State.Pid}/ns/pid` };
}

/** --device /dev/x[:/dev/y[:rwm]]: the node bound in, and the devices-cgroup rule that allows it. */
function hostDevices(h: HostConfig): { bind: string; rule: string }[] {
  const list = (h.Devices as { PathOnHost: string; PathInContainer?: string; CgroupPermissions?: string }[] | null | undefined) ?? [];
  return list.map((d) => {
    let st: fs.Stats;
    try {
      st = fs.statSync(d.PathOnHost);
    } catch (e) {
      throw new EngineError(400, `error gathering device information while adding custom device "${d.PathOnHost}": ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : (e as Error).message}`);
    }
    if (!st.isCharacterDevice() && !st.isBlockDevice()) throw new EngineError(400, `error gathering device information while adding custom device "${d.PathOnHost}": not a device node`);
    const major = Math.floor(st.rdev / 256) & 0xfff, minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
    return { bind: `${d.PathOnHost}:${d.PathInContainer || d.PathOnHost}`, rule: `${st.isBlockDevice() ? "b" : "c"} ${major}:${minor} ${d.CgroupPermissions || "rwm"}` };
  });
}

/** Output: without a tty stdout and stderr arrive apart; with one, everything is "stdout". */
function connectStreams(c: Container, shim: ShimProcess): void {
  shim.stdout.on("data", (b: Buffer) => c.output("stdout", b));
  shim.stderr.on("data", (b: Buffer) => c.output("stderr", b));
  if (c.record.Config.OpenStdin && shim.stdin) {
    c.stdin ??= new PassThrough(); // may already hold what an early attach sent
    c.stdin.pipe(shim.stdin);
    shim.stdin.on("error", () => {});
  }
}

/** A created container's recipe: only where its layers are, until it starts. */
export { emptyRecipe } from "../recipe/recipe";

/** The recipe's rootfs line: the snapshot's layers, writable dir and mount point, as its view shows them. */
export function rootfsOf(snapshots: Snapshotter, key: string): { lower: string[]; upper: string; work: string; merged: string } {
  const v = snapshots.view(key);
  return { lower: v.lower, upper: v.upper, work: v.work, merged: v.merged };
}

function hostResolvConf(): string {
  try {
    const text = fs.readFileSync("/etc/resolv.conf", "utf8");
    // A nameserver on the host's loopback is unreachable from the container's own loopback.
    const kept = text.split("\n").filter((l) => !/^nameserver\s+(127\.|::1)/.test(l));
    return kept.join("\n");
  } catch {
    return "";
  }
}
