/**
 * `docker start`, the lesson: what an engine does to turn an image and a record into a running
 * process. Read startContainer() top to bottom; each numbered step is one idea of the course:
 *
 *   1. rootfs    the image layers below, the container's own changes above (overlayfs)
 *   2. files     /etc/hostname, /etc/hosts, /etc/resolv.conf, volumes, binds, tmpfs, --init
 *   3. cgroup    a control group with the limits asked for
 *   4. identity  user and groups from the image's /etc/passwd, the capabilities kept
 *   5. network   addresses and ports taken, /etc/hosts and resolv.conf written
 *   6. shim      berth-shim unshares the namespaces and forks the container's PID 1 ...
 *   7. join      ... which waits while the engine puts it in the cgroup and plugs in its network
 *   8. exec      pivot_root, execve: the user's command runs
 *
 * Each step appends what it did to the recipe (`recipe.steps`), which the X-ray panel shows.
 */
import fs from "node:fs";
import path from "node:path";
import { PassThrough } from "node:stream";
import { Cgroup, type CgroupVersion } from "../cgroups/cgroups";
import { EngineError } from "../errors";
import type { ImageStore } from "../images/store";
import { NetworkError, type NetContainer, type NetworkManager } from "../network/manager";
import { capabilityMask, capabilitySet, ShimProcess, type ShimSpec } from "../runtime/shim";
import { mountSnapshot, overlayOptions, prepareSnapshot, type Snapshot } from "../snapshots/overlay";
import { resolveContainerPath, resolveInRoot, type MountMap } from "../api/archive";
import type { PlannedMount } from "../volumes/mounts";
import type { VolumeStore } from "../volumes/store";
import { snapshotPaths, type Container, type Recipe } from "./container";
import { consoleSize, daemonEnvironment, limitsOf, mergeEnv, tmpfsRecipeOptions } from "./spec";
import { resolveUser } from "./user";

/** The init `docker run --init` puts in front of the command (Debian's tini package; static, so any image can run it). */
export const INIT_BINARY = "/usr/bin/tini-static";

/** What starting a container needs from the engine around it (the ContainerService gives itself). */
export interface StartEnv {
  images: ImageStore;
  volumes: VolumeStore;
  network: NetworkManager;
  shimBin: string;
  cgroupVersion: CgroupVersion;
  cgroupParent: string;
  netView(c: Container): NetContainer;
  find(ref: string): Container;
  /** The shim ended: record the exit (the service's onExit). */
  exited(c: Container, code: number): void;
}

export async function startContainer(env: StartEnv, c: Container): Promise<void> {
  const r = c.record;
  const cfg = r.Config;
  const recipe = r.recipe ?? emptyRecipe(prepareSnapshot(c.dir, env.images.lowerDirs(env.images.get(r.Image)!)), cfg.Hostname);
  recipe.steps = [];
  recipe.mounts = [];
  const step = (s: string) => recipe.steps.push(s);

  // 1. The root filesystem: image layers below, this container's changes above.
  const snapshot: Snapshot = { ...snapshotPaths(c.dir), lower: recipe.rootfs.lower };
  mountSnapshot(snapshot);
  step(recipe.rootfs.command);

  // 2. The files Docker gives every container, and the volumes, binds and tmpfs asked for.
  const binds = placeFiles(env, c, snapshot, recipe, step);

  // 3. A cgroup with the limits asked for.
  const cgroup = new Cgroup(env.cgroupVersion, c.id, "/sys/fs/cgroup", env.cgroupParent);
  cgroup.create(limitsOf(r.HostConfig));
  for (const note of cgroup.notes) step(note);
  c.cgroup = cgroup;

  // 4. Who runs: user and groups from the image's /etc/passwd, the capabilities it keeps.
  const user = resolveUser(snapshot.merged, cfg.User);
  const caps = capabilitySet(r.HostConfig.CapAdd ?? [], r.HostConfig.CapDrop ?? [], r.HostConfig.Privileged);
  recipe.capabilities = caps.map((x) => `CAP_${x}`);
  recipe.user = { uid: user.uid, gid: user.gid, groups: user.groups };

  // 5. The network: addresses and published ports are taken (a port conflict fails here, before
  //    anything runs), /etc/hosts and /etc/resolv.conf written (bound in as step 2 said).
  let net;
  try {
    net = await env.network.prepare(env.netView(c), (ref) => env.netView(env.find(ref)), hostResolvConf());
  } catch (e) {
    cgroup.remove();
    if (e instanceof NetworkError) throw new EngineError(e.status, e.message);
    throw e;
  }
  for (const s of net.steps) step(s);
  fs.writeFileSync(r.HostsPath, net.hosts);
  fs.writeFileSync(r.ResolvConfPath, net.resolvConf);

  // 6. berth-shim: unshare(CLONE_NEWPID), fork, unshare(NEWNS|NEWUTS|NEWIPC|NEWNET) ...
  const spec: ShimSpec = {
    mode: "run",
    rootfs: snapshot.merged,
    hostname: cfg.Hostname,
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
    size: consoleSize(r.HostConfig.ConsoleSize),
    argv: r.HostConfig.Init === true ? ["/sbin/docker-init", "--", r.Path, ...r.Args] : [r.Path, ...r.Args],
    stdin: cfg.OpenStdin,
  };
  const shim = new ShimProcess(env.shimBin, spec);
  recipe.shim = [env.shimBin, ...shimArgsForRecipe(spec)];
  c.shim = shim;
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
    // 7. The child exists, in its new namespaces, but has not run anything: record the namespaces,
    //    put it in the cgroup (cgroup.procs), plug in its network, then let it go on.
    shim.once("pid", (pid: number) => {
      recipe.hostPid = pid;
      recipe.namespaces = readNamespaces(pid);
      step(`unshare pid, mnt, uts, ipc${spec.hostNetwork ? " (net: the host's)" : ", net"} namespaces -> host pid ${pid}`);
      try {
        cgroup.addProcess(pid);
      } catch (e) {
        return fail(pid, new EngineError(500, `failed to join cgroup: ${(e as Error).message}`));
      }
      step(`echo ${pid} > ${cgroup.dirs.map((d) => path.join(d, "cgroup.procs")).join(", ")}`);
      // Its network namespace is still empty: a veth pair per network, eth0 addressed and routed.
      try {
        for (const s of env.network.attach(env.netView(c), pid)) step(s);
      } catch (e) {
        return fail(pid, new EngineError(500, `failed to set up the container's network: ${(e as Error).message}`));
      }
      shim.go();
    });
    // 8. execve worked: the user's process is PID 1 of the container.
    shim.once("started", () => {
      step(`sethostname ${cfg.Hostname}; mount /proc, /sys (ro), /dev, /dev/pts; pivot_root; execve ${r.Path}`);
      Object.assign(r.State, { Status: "running", Running: true, Pid: recipe.hostPid, ExitCode: 0, StartedAt: new Date().toISOString() }); // FinishedAt keeps the last stop, as dockerd does
      recipe.cgroup = { version: cgroup.version, paths: cgroup.dirs, writes: cgroup.writes };
      r.recipe = recipe;
      c.save();
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
function placeFiles(env: StartEnv, c: Container, snapshot: Snapshot, recipe: Recipe, step: (s: string) => void): string[] {
  const r = c.record;
  fs.writeFileSync(r.HostnamePath, `${r.Config.Hostname}\n`);
  const binds = [`${r.HostnamePath}:/etc/hostname`, `${r.HostsPath}:/etc/hosts`, `${r.ResolvConfPath}:/etc/resolv.conf`];
  const placed: MountMap[] = [];
  // A tmpfs takes its place in the same ordered list ("tmpfs:DEST:FLAGS:DATA"), so a mount below
  // it is not hidden by it.
  const tmpfsOptions = new Map<string, string>();
  for (const m of (r.Mounts ?? []) as PlannedMount[]) {
    const dest = resolveContainerPath(snapshot.merged, m.Destination, placed);
    if (m.Type === "tmpfs") {
      const spec = `tmpfs:${dest}:${m.tmpfs?.flags ?? 2 | 4 | 8}:${m.tmpfs?.data ?? ""}`;
      tmpfsOptions.set(spec, tmpfsRecipeOptions(m));
      binds.push(spec);
      continue;
    }
    if (m.Type === "volume" && m.Name) {
      const v = env.volumes.get(m.Name) ?? env.volumes.create(m.Name);
      const from = resolveInRoot(snapshot.merged, dest, true, placed);
      if (m.copyData !== false && env.volumes.seed(v, from)) step(`cp -a ${from}/. ${v.Mountpoint}/ (the image's files into the new volume)`);
    }
    if (m.Type === "bind" && !fs.existsSync(m.Source)) {
      if (!m.mkdirSource) throw new EngineError(400, `invalid mount config for type "bind": bind source path does not exist: ${m.Source}`);
      fs.mkdirSync(m.Source, { recursive: true });
    }
    placed.push({ Destination: dest, Source: m.Source });
    binds.push(`${m.Source}:${dest}${m.RW ? "" : ":ro"}`);
  }
  // --init: Docker's docker-init is tini, statically linked, bound in read-only and run as PID 1
  // in front of the command: it reaps orphans and passes every signal on (chapter 23).
  if (r.HostConfig.Init === true) {
    if (!fs.existsSync(INIT_BINARY)) throw new EngineError(500, `--init needs ${INIT_BINARY}: install Debian's tini`);
    binds.push(`${INIT_BINARY}:/sbin/docker-init:ro`);
  }
  recipe.mounts = [
    { destination: "/", type: "overlay", source: "overlay", options: overlayOptions(snapshot) },
    { destination: "/proc", type: "proc", source: "proc", options: "nosuid,nodev,noexec" },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: "ro,nosuid,nodev,noexec" },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: "nosuid,strictatime,mode=755,size=65536k" },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: "newinstance,ptmxmode=0666,mode=0620,gid=5" },
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: "nosuid,nodev,noexec,mode=1777,size=65536k" },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: "nosuid,nodev,noexec" },
    ...binds.map((b) =>
      b.startsWith("tmpfs:")
        ? { destination: b.split(":")[1]!, type: "tmpfs", source: "tmpfs", options: tmpfsOptions.get(b)! }
        : { destination: b.split(":")[1]!, type: "bind", source: b.split(":")[0]!, options: b.endsWith(":ro") ? "rbind,ro" : "rbind" },
    ),
  ];
  return binds;
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

export function emptyRecipe(s: Snapshot, hostname: string): Recipe {
  return {
    hostPid: 0,
    shim: [],
    namespaces: [],
    rootfs: { ...s, command: `mount -t overlay overlay -o ${overlayOptions(s)} ${s.merged}` },
    mounts: [],
    cgroup: { version: 1, paths: [], writes: [] },
    capabilities: [],
    user: { uid: 0, gid: 0, groups: [] },
    hostname,
    steps: [],
  };
}

function shimArgsForRecipe(spec: ShimSpec): string[] {
  const a = [spec.mode, "--rootfs", spec.rootfs ?? "", "--hostname", spec.hostname ?? "", "--cwd", spec.cwd, "--uid", String(spec.uid), "--gid", String(spec.gid)];
  if (spec.tty) a.push("--tty");
  if (spec.readOnly) a.push("--read-only");
  return [...a, "--", ...spec.argv];
}

/** /proc/<pid>/ns/* of the container's init: "pid:[4026532283]" -> { type: "pid", inode }. */
function readNamespaces(pid: number): Recipe["namespaces"] {
  const out: Recipe["namespaces"] = [];
  for (const type of ["pid", "mnt", "uts", "ipc", "net", "cgroup", "user"]) {
    try {
      // The pid namespace a child is born in is pid_for_children of its parent, which is /ns/pid of the child.
      const link = fs.readlinkSync(`/proc/${pid}/ns/${type}`);
      out.push({ type, inode: Number(/\[(\d+)\]/.exec(link)?.[1] ?? 0), path: `/proc/${pid}/ns/${type}` });
    } catch {
      /* namespace type not supported by this kernel */
    }
  }
  return out;
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
