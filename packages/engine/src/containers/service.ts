/**
 * Containers: create, start, stop, remove and everything in between.
 *
 * Lifecycle: create() writes the record (state "created"); start() mounts the root filesystem,
 * makes the cgroup, starts berth-shim and waits for execve; the shim's exit moves the container to
 * "exited" (unmounting nothing: the overlay stays until rm, so cp/export work on stopped
 * containers); remove() unmounts and deletes. Read start() top to bottom: it is the lesson.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { Cgroup, detectCgroupVersion, type CgroupVersion, type Limits } from "../cgroups/cgroups";
import { treeSize, type Image, type ImageStore } from "../images/store";
import { JsonFileLog, type StreamName } from "../logs/json-file";
import { NetworkError, NetworkManager, type NetContainer } from "../network/manager";
import { buildShim, capabilityMask, capabilitySet, parseSignal, ShimProcess, type ShimSpec } from "../runtime/shim";
import { changes, mountSnapshot, overlayOptions, prepareSnapshot, unmountSnapshot, unmountSnapshotAsync, type Snapshot } from "../snapshots/overlay";
import { resolveContainerPath, resolveInRoot, type MountMap } from "../api/archive";
import { materializeMounts, parseMounts, type ApiMount, type PlannedMount } from "../volumes/mounts";
import { VolumeError, type VolumeStore } from "../volumes/store";
import { newState, randomName, ZERO_TIME, type ContainerConfig, type ContainerRecord, type HostConfig, type MountPoint, type Recipe } from "./container";

/** An error with the HTTP status Docker would answer and Docker's wording. */
export class EngineError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const notFound = (id: string) => new EngineError(404, `No such container: ${id}`);

type OutputListener = (stream: StreamName, chunk: Buffer) => void;

/** A running or stopped container: its record plus what only exists while the engine runs. */
export class Container extends EventEmitter {
  shim?: ShimProcess;
  stdin?: PassThrough;
  log: JsonFileLog;
  cgroup?: Cgroup;
  readonly listeners_ = new Set<OutputListener>();
  stopping = false;

  constructor(
    public record: ContainerRecord,
    readonly dir: string,
  ) {
    super();
    this.setMaxListeners(0);
    this.log = new JsonFileLog(record.LogPath);
  }

  get id(): string {
    return this.record.Id;
  }
  get name(): string {
    return this.record.Name.slice(1);
  }
  get running(): boolean {
    return this.record.State.Running;
  }
  get snapshot(): Snapshot {
    return { ...prepareSnapshotPaths(this.dir), lower: this.record.recipe?.rootfs.lower ?? [] };
  }

  save(): void {
    const file = path.join(this.dir, "config.json");
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(this.record));
    fs.renameSync(`${file}.tmp`, file);
  }

  /** Output goes to the log and to every attached client. */
  output(stream: StreamName, chunk: Buffer): void {
    this.log.write(stream, chunk);
    for (const l of this.listeners_) l(stream, chunk);
  }
}

function prepareSnapshotPaths(dir: string) {
  return { upper: path.join(dir, "upper"), work: path.join(dir, "work"), merged: path.join(dir, "merged") };
}

export interface CreateOptions {
  name?: string;
  body: Record<string, unknown>;
}

export interface ExecInstance {
  ID: string;
  container: Container;
  config: { AttachStdin: boolean; AttachStdout: boolean; AttachStderr: boolean; Tty: boolean; Cmd: string[]; Env: string[]; WorkingDir: string; User: string; Privileged: boolean; ConsoleSize?: [number, number] };
  Running: boolean;
  ExitCode: number | null;
  Pid: number;
  shim?: ShimProcess;
  startError?: string; // execve failed: Docker prints this on the exec's stream
}


/** The init `docker run --init` puts in front of the command (Debian's tini package; static, so any image can run it). */
const INIT_BINARY = "/usr/bin/tini-static";

export class ContainerService {
  readonly containers = new Map<string, Container>();
  readonly execs = new Map<string, ExecInstance>();
  readonly cgroupVersion: CgroupVersion;
  private shimBin: string;
  readonly dir: string;
  /** Bridges, addresses, published ports, DNS (src/network); engine.ts gives it its options. */
  network: NetworkManager;

  constructor(
    readonly root: string,
    readonly images: ImageStore,
    readonly volumes: VolumeStore,
    readonly cgroupParent = process.env.BERTH_CGROUP_PARENT || "berth-engine",
  ) {
    this.dir = path.join(root, "containers");
    fs.mkdirSync(this.dir, { recursive: true });
    // Nested in a sandbox there is no compiler: the host built the shim and bound it read-only.
    this.shimBin = process.env.BERTH_SHIM || buildShim(path.join(root, "bin"));
    this.cgroupVersion = detectCgroupVersion();
    this.network = new NetworkManager(root, { enabled: false });
    this.load();
  }

  /** After an engine restart: every container is found again; ones that were running are gone with us. */
  private load(): void {
    for (const id of fs.readdirSync(this.dir)) {
      const file = path.join(this.dir, id, "config.json");
      if (!fs.existsSync(file)) continue;
      const record = JSON.parse(fs.readFileSync(file, "utf8")) as ContainerRecord;
      const c = new Container(record, path.join(this.dir, id));
      if (record.State.Running) {
        // The shim died with the engine (its pipes were ours): make sure nothing is left, say why.
        try {
          if (record.State.Pid) process.kill(record.State.Pid, "SIGKILL");
        } catch {
          /* already gone */
        }
        Object.assign(record.State, { Status: "exited", Running: false, Pid: 0, ExitCode: 255, Error: "engine restarted while the container was running", FinishedAt: new Date().toISOString() });
        new Cgroup(this.cgroupVersion, id, "/sys/fs/cgroup", this.cgroupParent).remove();
        c.save();
      }
      this.containers.set(id, c);
    }
  }

  // ---------- finding containers ----------

  /** By full id, name (with or without "/"), or unique id prefix — as Docker resolves them. */
  find(ref: string): Container {
    const exact = this.containers.get(ref);
    if (exact) return exact;
    const name = ref.replace(/^\//, "");
    for (const c of this.containers.values()) if (c.name === name) return c;
    if (/^[0-9a-f]+$/.test(ref)) {
      const matches = [...this.containers.values()].filter((c) => c.id.startsWith(ref));
      if (matches.length === 1) return matches[0]!;
      if (matches.length > 1) throw new EngineError(400, `multiple IDs found with provided prefix: ${ref}`);
    }
    throw notFound(ref);
  }

  /** What the network manager needs to know of a container. */
  netView(c: Container): NetContainer {
    return { id: c.id, name: c.name, hostname: c.record.Config.Hostname, running: c.running, pid: c.record.State.Pid, env: c.record.Config.Env };
  }

  list(): Container[] {
    return [...this.containers.values()].sort((a, b) => b.record.Created.localeCompare(a.record.Created));
  }

  // ---------- create ----------

  create({ name, body }: CreateOptions): Container {
    const imageRef = String(body.Image ?? "");
    const image = this.images.resolve(imageRef);
    if (!image) throw new EngineError(404, `No such image: ${imageRef.includes(":") || imageRef.includes("@") ? imageRef : `${imageRef}:latest`}`);
    if (name !== undefined && name !== "") {
      if (!/^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(name)) throw new EngineError(400, `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
      this.checkNameFree(name.replace(/^\//, ""));
    }
    const finalName = name ? name.replace(/^\//, "") : randomName((n) => [...this.containers.values()].some((c) => c.name === n));
    const id = randomBytes(32).toString("hex");
    const dir = path.join(this.dir, id);
    fs.mkdirSync(dir, { recursive: true });
    const config = containerConfig(body, image, id, imageRef);
    const hostConfig = hostConfigFrom((body.HostConfig ?? {}) as Record<string, unknown>);
    // Sharing the host's network, a container also shows the host's name (as with Docker).
    if (hostConfig.NetworkMode === "host" && !body.Hostname) config.Hostname = os.hostname();
    // Sharing another container's network, it shows that container's name too.
    if (hostConfig.NetworkMode.startsWith("container:") && !body.Hostname) {
      const other = [...this.containers.values()].find((x) => x.name === hostConfig.NetworkMode.slice(10) || x.id.startsWith(hostConfig.NetworkMode.slice(10)));
      if (other) config.Hostname = other.record.Config.Hostname; // a missing one fails at start, as in dockerd
    }
    capabilitySet(hostConfig.CapAdd ?? [], hostConfig.CapDrop ?? []); // refuse unknown names now, not at start
    if (hostConfig.Privileged) {
      // A privileged container could reach every device and setting of the learner's sandbox.
      throw new EngineError(400, "privileged containers are not supported by Berth's engine: add the capabilities you need with --cap-add instead");
    }
    const command = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
    if (command.length === 0) throw new EngineError(400, "no command specified");
    const mounts = this.planMounts(config, hostConfig, (body.HostConfig ?? {}) as Record<string, unknown>);
    // The network mode, ports, aliases and links are checked now (dockerd refuses them at create).
    try {
      netErrors(() => this.network.register({ id, name: finalName, hostname: config.Hostname, running: false, pid: 0 }, (body.HostConfig ?? {}) as Record<string, unknown>, config, body.NetworkingConfig as Record<string, unknown> | undefined, (ref) => this.netView(this.find(ref))));
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    const record: ContainerRecord = {
      Id: id,
      Created: new Date().toISOString(),
      Path: command[0]!,
      Args: command.slice(1),
      State: newState(),
      Image: image.id,
      ResolvConfPath: path.join(dir, "resolv.conf"),
      HostnamePath: path.join(dir, "hostname"),
      HostsPath: path.join(dir, "hosts"),
      LogPath: path.join(dir, `${id}-json.log`),
      Name: `/${finalName}`,
      RestartCount: 0,
      Driver: "overlay2",
      Platform: "linux",
      MountLabel: "",
      ProcessLabel: "",
      AppArmorProfile: "",
      ExecIDs: null,
      Mounts: mounts,
      HostConfig: hostConfig,
      Config: config,
    };
    const snapshot = prepareSnapshot(dir, [makeInitLayer(dir), ...this.images.lowerDirs(image)]);
    record.recipe = emptyRecipe(snapshot, config.Hostname);
    const c = new Container(record, dir);
    c.save();
    this.containers.set(id, c);
    return c;
  }

  private checkNameFree(name: string, except?: string): void {
    for (const c of this.containers.values()) {
      if (c.name === name && c.id !== except) {
        throw new EngineError(409, `Conflict. The container name "/${name}" is already in use by container "${c.id}". You have to remove (or rename) that container to be able to reuse that name.`);
      }
    }
  }

  /**
   * Volumes and binds, checked as dockerd checks them (src/volumes/mounts.ts): `-v`, `--mount`,
   * `--tmpfs`, `--volumes-from`, and an anonymous volume for every VOLUME nothing else covers.
   * Everything is checked before any volume is made, so a refused request leaves nothing behind.
   */
  private planMounts(cfg: ContainerConfig, h: HostConfig, raw: Record<string, unknown>): MountPoint[] {
    const list = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);
    try {
      const plan = parseMounts(
        {
          binds: h.Binds ?? [],
          mounts: list<ApiMount>(raw.Mounts),
          tmpfs: raw.Tmpfs && typeof raw.Tmpfs === "object" ? (raw.Tmpfs as Record<string, string>) : {},
          volumesFrom: list<string>(raw.VolumesFrom).map(String),
          volumes: Object.keys(cfg.Volumes ?? {}),
        },
        { store: this.volumes, mountsOf: (ref) => this.find(ref).record.Mounts ?? [] },
      );
      return materializeMounts(plan, this.volumes);
    } catch (e) {
      if (e instanceof VolumeError) throw new EngineError(e.status, e.message);
      throw e;
    }
  }

  // ---------- start: the lesson ----------

  async start(c: Container): Promise<void> {
    if (c.running) throw new EngineError(304, "container already started");
    const r = c.record;
    const cfg = r.Config;
    const recipe = r.recipe ?? emptyRecipe(prepareSnapshot(c.dir, this.images.lowerDirs(this.images.get(r.Image)!)), cfg.Hostname);
    recipe.steps = [];
    recipe.mounts = [];
    const step = (s: string) => recipe.steps.push(s);


    // 1. The root filesystem: image layers below, this container's changes above.
    const snapshot: Snapshot = { ...prepareSnapshotPaths(c.dir), lower: recipe.rootfs.lower };
    mountSnapshot(snapshot);
    step(recipe.rootfs.command);

    // 2. The files Docker gives every container: its hostname, /etc/hosts, the host's DNS servers.
    fs.writeFileSync(r.HostnamePath, `${cfg.Hostname}\n`);
    const binds = [`${r.HostnamePath}:/etc/hostname`, `${r.HostsPath}:/etc/hosts`, `${r.ResolvConfPath}:/etc/resolv.conf`];
    // Volumes and binds; a new, empty volume first gets what the image has at that path (unless
    // the mount said nocopy); `-v /host:/ctr` makes a missing host directory, `--mount` does not.
    // Each destination is resolved inside the container first (symlinks followed within its root
    // and through the mounts already placed), so an image's symlink cannot aim a mount or a
    // copy-up at the engine's own files.
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
        const v = this.volumes.get(m.Name) ?? this.volumes.create(m.Name);
        const from = resolveInRoot(snapshot.merged, dest, true, placed);
        if (m.copyData !== false && this.volumes.seed(v, from)) step(`cp -a ${from}/. ${v.Mountpoint}/ (the image's files into the new volume)`);
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
    const init = r.HostConfig.Init === true;
    if (init) {
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

    // 3. A cgroup with the limits asked for.
    const cgroup = new Cgroup(this.cgroupVersion, c.id, "/sys/fs/cgroup", this.cgroupParent);
    cgroup.create(limitsOf(r.HostConfig));
    for (const note of cgroup.notes) step(note);
    c.cgroup = cgroup;

    // 4. Who runs: user and groups from the image's /etc/passwd, the capabilities it keeps.
    const user = resolveUser(snapshot.merged, cfg.User);
    const caps = capabilitySet(r.HostConfig.CapAdd ?? [], r.HostConfig.CapDrop ?? [], r.HostConfig.Privileged);
    recipe.capabilities = caps.map((x) => `CAP_${x}`);
    recipe.user = { uid: user.uid, gid: user.gid, groups: user.groups };

    // The network: addresses and published ports are taken (a port conflict fails here, before
    // anything runs), /etc/hosts and /etc/resolv.conf written (bound in as the binds above say).
    const net = await netErrorsAsync(() => this.network.prepare(this.netView(c), (ref) => this.netView(this.find(ref)), hostResolvConf())).catch((e: unknown) => {
      cgroup.remove();
      throw e;
    });
    for (const s of net.steps) step(s);
    fs.writeFileSync(r.HostsPath, net.hosts);
    fs.writeFileSync(r.ResolvConfPath, net.resolvConf);

    // 5. berth-shim: unshare(CLONE_NEWPID), fork, unshare(NEWNS|NEWUTS|NEWIPC|NEWNET) ...
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
      argv: init ? ["/sbin/docker-init", "--", r.Path, ...r.Args] : [r.Path, ...r.Args],
      stdin: cfg.OpenStdin,
    };
    const shim = new ShimProcess(this.shimBin, spec);
    recipe.shim = [this.shimBin, ...shimArgsForRecipe(spec)];
    c.shim = shim;
    c.stopping = false;
    Object.assign(r.State, { OOMKilled: false, Error: "" });

    // Output: without a tty stdout and stderr arrive apart; with one, everything is "stdout".
    shim.stdout.on("data", (b: Buffer) => c.output("stdout", b));
    shim.stderr.on("data", (b: Buffer) => c.output("stderr", b));
    if (cfg.OpenStdin && shim.stdin) {
      c.stdin ??= new PassThrough(); // may already hold what an early attach sent
      c.stdin.pipe(shim.stdin);
      shim.stdin.on("error", () => {});
    }

    await new Promise<void>((resolve, reject) => {
      let settled = false;
      // 6. The child exists, in its new namespaces but has not run anything: record the namespaces,
      //    put it in the cgroup (cgroup.procs), then let it go on to pivot_root and execve.
      shim.once("pid", (pid: number) => {
        recipe.hostPid = pid;
        recipe.namespaces = readNamespaces(pid);
        step(`unshare pid, mnt, uts, ipc${spec.hostNetwork ? " (net: the host's)" : ", net"} namespaces -> host pid ${pid}`);
        try {
          cgroup.addProcess(pid);
        } catch (e) {
          settled = true;
          process.kill(pid, "SIGKILL");
          reject(new EngineError(500, `failed to join cgroup: ${(e as Error).message}`));
          return;
        }
        step(`echo ${pid} > ${cgroup.dirs.map((d) => path.join(d, "cgroup.procs")).join(", ")}`);
        // Its network namespace is still empty: a veth pair per network, eth0 addressed and routed.
        try {
          for (const s of this.network.attach(this.netView(c), pid)) step(s);
        } catch (e) {
          settled = true;
          process.kill(pid, "SIGKILL");
          reject(new EngineError(500, `failed to set up the container's network: ${(e as Error).message}`));
          return;
        }
        shim.go();
      });
      // 7. execve worked: the user's process is PID 1 of the container.
      shim.once("started", () => {
        step(`sethostname ${cfg.Hostname}; mount /proc, /sys (ro), /dev, /dev/pts; pivot_root; execve ${r.Path}`);
        Object.assign(r.State, { Status: "running", Running: true, Pid: recipe.hostPid, ExitCode: 0, StartedAt: new Date().toISOString() }); // FinishedAt keeps the last stop, as dockerd does
        recipe.cgroup = { version: cgroup.version, paths: cgroup.dirs, writes: cgroup.writes };
        r.recipe = recipe;
        c.save();
        settled = true;
        this.emit(c, "start");
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
        this.onExit(c, code);
      });
    });
  }

  /** The shim is gone: record how the container ended, clean its cgroup, tell whoever waits. */
  private onExit(c: Container, code: number): void {
    const r = c.record;
    c.log.flush();
    const wasStarted = r.State.Running; // running or paused
    const oom = c.cgroup?.oomKilled() ?? false;
    c.cgroup?.remove();
    this.network.release(c.id); // addresses and published ports; the veths died with the namespace
    c.stdin?.end();
    if (wasStarted) {
      Object.assign(r.State, { Status: "exited", Running: false, Paused: false, Pid: 0, ExitCode: code, OOMKilled: oom, FinishedAt: new Date().toISOString() });
    } else {
      // execve failed: Docker leaves such a container "created", with the exit code and the error.
      Object.assign(r.State, { Running: false, Pid: 0, ExitCode: r.State.ExitCode || code });
    }
    c.shim = undefined;
    c.stdin = undefined;
    if (this.containers.has(c.id)) c.save();
    c.emit("exit", r.State.ExitCode);
    this.emit(c, "die");
    if (r.HostConfig.AutoRemove && this.containers.has(c.id)) this.remove(c, { force: true });
  }

  private emit(c: Container, action: string): void {
    this.events.emit("event", { Type: "container", Action: action, id: c.id, Actor: { ID: c.id, Attributes: { name: c.name, image: c.record.Config.Image } }, time: Math.floor(Date.now() / 1000), timeNano: Date.now() * 1e6 });
  }
  readonly events = new EventEmitter();

  // ---------- wait, signals, stop ----------

  /** Resolves with the exit code; "removed" waits for rm, "next-exit" for the next exit. */
  wait(c: Container, condition: string): Promise<number> {
    if (condition === "removed") {
      return new Promise((resolve) => c.once("removed", () => resolve(c.record.State.ExitCode)));
    }
    if (condition !== "next-exit" && !c.running) return Promise.resolve(c.record.State.ExitCode);
    return new Promise((resolve) => c.once("exit", (code: number) => resolve(code)));
  }

  kill(c: Container, signal?: string): void {
    if (!c.running) throw new EngineError(409, `Cannot kill container: ${c.name}: Container ${c.id} is not running`);
    const sig = parseSignal(signal, 9);
    if (sig === undefined) throw new EngineError(400, `Invalid signal: ${signal}`);
    process.kill(c.record.State.Pid, sig);
    if (sig === 9 && c.record.State.Paused) c.cgroup?.freeze(false); // a frozen task dies only once thawed
  }

  /** `docker stop`: the stop signal, `timeout` seconds to go, then SIGKILL. */
  async stop(c: Container, timeout?: number, signal?: string): Promise<boolean> {
    if (!c.running) return false;
    c.stopping = true;
    const sig = parseSignal(signal || c.record.Config.StopSignal, 15) ?? 15;
    const t = timeout ?? c.record.Config.StopTimeout ?? 10;
    const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
    try {
      process.kill(c.record.State.Pid, sig);
    } catch {
      /* already exiting */
    }
    const timedOut = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), t < 0 ? 2 ** 31 - 1 : t * 1000).unref())]);
    if (timedOut && c.running) {
      try {
        this.kill(c, "KILL");
      } catch {
        /* gone meanwhile */
      }
      await exited;
    }
    return true;
  }

  async restart(c: Container, timeout?: number): Promise<void> {
    await this.stop(c, timeout);
    c.record.RestartCount = c.record.RestartCount; // `docker restart` does not count (only restart policies do)
    await this.start(c);
  }

  pause(c: Container, paused: boolean): void {
    if (!c.running) throw new EngineError(409, `Container ${c.id} is not running`);
    if (c.record.State.Paused === paused) throw new EngineError(409, paused ? `Container ${c.id} is already paused` : `Container ${c.id} is not paused`);
    c.cgroup!.freeze(paused);
    Object.assign(c.record.State, { Paused: paused, Status: paused ? "paused" : "running" });
    c.save();
    this.emit(c, paused ? "pause" : "unpause");
  }

  // ---------- remove, rename ----------

  async removeAsync(c: Container, opts: { force?: boolean; volumes?: boolean }): Promise<void> {
    if (c.running) {
      if (!opts.force) throw new EngineError(409, `cannot remove container "${c.record.Name}": container is running: stop the container before removing or force remove`);
      const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
      this.kill(c, "KILL");
      await exited;
      if (!this.containers.has(c.id)) return; // AutoRemove got there first
    }
    this.remove(c, opts);
  }

  private remove(c: Container, opts: { force?: boolean; volumes?: boolean }): void {
    this.containers.delete(c.id);
    this.network.forget(c.id);
    // `rm -v` (and --rm) take the container's anonymous volumes along, unless another container uses them.
    if (opts.volumes || c.record.HostConfig.AutoRemove) {
      for (const m of c.record.Mounts ?? []) {
        if (m.Type !== "volume" || !m.Name || !this.volumes.get(m.Name)?.anonymous) continue;
        if ([...this.containers.values()].some((o) => o.record.Mounts?.some((x) => x.Name === m.Name))) continue;
        this.volumes.remove(m.Name);
      }
    }
    for (const [id, e] of this.execs) if (e.container === c) this.execs.delete(id);
    c.emit("removed");
    this.emit(c, "destroy");
    // The container is gone for every API call already; its files go in the background (so
    // `docker run --rm` returns without waiting for umount and rm -rf).
    this.cleanups.add(c.dir);
    void unmountSnapshotAsync(c.snapshot)
      .catch(() => {})
      .then(() => fs.promises.rm(c.dir, { recursive: true, force: true }))
      .catch(() => {})
      .finally(() => this.cleanups.delete(c.dir));
  }
  private readonly cleanups = new Set<string>();

  rename(c: Container, newName: string): void {
    const n = newName.replace(/^\//, "");
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(n)) throw new EngineError(400, `Invalid container name (${newName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    if (c.name === n) throw new EngineError(400, `Renaming a container with the same name as its current name`);
    this.checkNameFree(n, c.id);
    c.record.Name = `/${n}`;
    this.network.rename(c.id, n);
    c.save();
  }

  async prune(filters: Record<string, string[]>): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }> {
    const deleted: string[] = [];
    let space = 0;
    for (const c of this.list()) {
      if (c.running || !matchesLabels(c, filters.label ?? [])) continue;
      // label!=k (or k=v) keeps what carries it: `docker container prune --filter label!=keep`
      if ((filters["label!"] ?? []).some((l) => matchesLabels(c, [l]))) continue;
      space += treeSize(path.join(c.dir, "upper"));
      this.remove(c, {});
      deleted.push(c.id);
    }
    return { ContainersDeleted: deleted, SpaceReclaimed: space };
  }

  // ---------- looking inside ----------

  /** Bytes the container wrote (its upper dir) and that plus its image: `ps -s`, `inspect -s`. */
  sizes(c: Container): { SizeRw: number; SizeRootFs: number } {
    const rw = treeSize(path.join(c.dir, "upper"));
    return { SizeRw: rw, SizeRootFs: rw + (this.images.get(c.record.Image)?.size ?? 0) };
  }

  changes(c: Container) {
    return changes(c.snapshot);
  }

  /** The merged root filesystem on the host, mounted if the container is not running. */
  rootfs(c: Container): string {
    const s = c.snapshot;
    mountSnapshot(s);
    return s.merged;
  }

  top(c: Container, psArgs = "-ef"): { Titles: string[]; Processes: string[][] } {
    if (!c.running) throw new EngineError(409, `Container ${c.id} is not running`);
    const pids = new Set(c.cgroup?.pids() ?? [c.record.State.Pid]);
    const out = execFileSync("ps", psArgs.split(/\s+/).filter(Boolean), { encoding: "utf8" }).split("\n").filter(Boolean);
    const titles = out[0]!.trim().split(/\s+/);
    const pidCol = titles.indexOf("PID");
    if (pidCol < 0) throw new EngineError(500, `Couldn't find PID field in ps output`);
    const processes = out.slice(1).map((line) => {
      const f = line.trim().split(/\s+/);
      return [...f.slice(0, titles.length - 1), f.slice(titles.length - 1).join(" ")];
    });
    return { Titles: titles, Processes: processes.filter((p) => pids.has(Number(p[pidCol]))) };
  }

  resize(c: Container, rows: number, cols: number): void {
    if (!c.running) throw new EngineError(409, `cannot resize a stopped container`);
    c.shim?.resize(rows, cols);
  }

  // ---------- exec ----------

  createExec(c: Container, body: Record<string, unknown>): ExecInstance {
    if (!c.running) throw new EngineError(409, `container ${c.id} is not running`);
    const cmd = asStrings(body.Cmd);
    if (cmd.length === 0) throw new EngineError(400, "No exec command specified");
    const e: ExecInstance = {
      ID: randomBytes(32).toString("hex"),
      container: c,
      config: {
        AttachStdin: !!body.AttachStdin,
        AttachStdout: !!body.AttachStdout,
        AttachStderr: !!body.AttachStderr,
        Tty: !!body.Tty,
        Cmd: cmd,
        Env: asStrings(body.Env),
        WorkingDir: String(body.WorkingDir ?? ""),
        User: String(body.User ?? ""),
        Privileged: !!body.Privileged,
        ConsoleSize: Array.isArray(body.ConsoleSize) ? (body.ConsoleSize as [number, number]) : undefined,
      },
      Running: false,
      ExitCode: null,
      Pid: 0,
    };
    this.execs.set(e.ID, e);
    return e;
  }

  /** Start an exec: berth-shim exec joins the container's namespaces (setns) and cgroup. */
  startExec(e: ExecInstance): Promise<ShimProcess> {
    const c = e.container;
    if (!c.running) return Promise.reject(new EngineError(409, `container ${c.id} is not running`));
    if (e.Running || e.ExitCode !== null) return Promise.reject(new EngineError(409, `Error: Exec command ${e.ID} is already running`));
    const cfg = c.record.Config;
    const user = resolveUser(c.snapshot.merged, e.config.User || cfg.User);
    const caps = capabilitySet(c.record.HostConfig.CapAdd ?? [], c.record.HostConfig.CapDrop ?? [], c.record.HostConfig.Privileged || e.config.Privileged);
    const shim = new ShimProcess(this.shimBin, {
      mode: "exec",
      target: c.record.State.Pid,
      cwd: e.config.WorkingDir || cfg.WorkingDir || "/",
      ...user,
      env: mergeEnv(daemonEnvironment(cfg.Env, cfg.Hostname, e.config.Tty, user.home), e.config.Env),
      binds: [],
      caps: capabilityMask(caps),
      tty: e.config.Tty,
      size: consoleSize(e.config.ConsoleSize),
      argv: e.config.Cmd,
      stdin: e.config.AttachStdin,
    });
    e.shim = shim;
    e.Running = true;
    return new Promise((resolve, reject) => {
      let settled = false;
      shim.once("pid", (pid: number) => {
        e.Pid = pid;
        try {
          c.cgroup?.addProcess(pid);
        } catch {
          /* the container is exiting; execve will fail on its own */
        }
        shim.go();
      });
      shim.once("started", () => {
        settled = true;
        resolve(shim);
      });
      shim.once("failed", (message: string) => {
        e.ExitCode = 126; // dockerd answers 126 for any exec that could not start
        // Docker reports this on the stream and through the exit code, not as an HTTP error.
        e.startError = `OCI runtime exec failed: exec failed: unable to start container process: ${message}: unknown\r\n`;
        if (!settled) {
          settled = true;
          resolve(shim);
        }
      });
      shim.once("exit", (code: number) => {
        e.Running = false;
        if (e.ExitCode === null) e.ExitCode = code;
        if (!settled) {
          settled = true;
          reject(new EngineError(500, `exec failed to start (code ${code})`));
        }
      });
    });
  }

  findExec(id: string): ExecInstance {
    const e = this.execs.get(id);
    if (!e) throw new EngineError(404, `No such exec instance: ${id}`);
    return e;
  }

  /** Stop everything at engine shutdown: containers die with their engine, as documented. */
  async shutdown(): Promise<void> {
    const running = this.list().filter((c) => c.running);
    await Promise.all(running.map((c) => new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      try {
        process.kill(c.record.State.Pid, "SIGKILL");
      } catch {
        resolve();
      }
    })));
    for (const c of this.containers.values()) {
      try {
        unmountSnapshot(c.snapshot);
      } catch {
        /* best effort */
      }
    }
    while (this.cleanups.size) await new Promise((r) => setTimeout(r, 20)); // removals still in flight
    this.network.close(); // proxies, DNS, bridges, iptables chains
  }
}

// ---------- small pieces ----------

/** The network manager's errors carry Docker's status and words: hand them to the API as such. */
function netErrors<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof NetworkError) throw new EngineError(e.status, e.message);
    throw e;
  }
}

async function netErrorsAsync<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof NetworkError) throw new EngineError(e.status, e.message);
    throw e;
  }
}

/**
 * Docker's "init layer": a thin read-only layer between the image and the container's upper dir,
 * holding the mount points the engine binds over (/etc/hostname, /etc/hosts, /etc/resolv.conf) and
 * /.dockerenv. Being below upper/, none of it shows in `docker diff` or ends up in `docker commit`.
 */
function makeInitLayer(containerDir: string): string {
  const init = path.join(containerDir, "init");
  for (const d of ["etc", "dev", "proc", "sys"]) fs.mkdirSync(path.join(init, d), { recursive: true });
  for (const f of ["etc/hostname", "etc/hosts", "etc/resolv.conf", ".dockerenv"]) fs.writeFileSync(path.join(init, f), "");
  return init;
}

/** A tmpfs mount's flags and data as `mount` would print them, for the recipe. */
function tmpfsRecipeOptions(m: PlannedMount): string {
  const flags = m.tmpfs?.flags ?? 2 | 4 | 8;
  const names: [number, string][] = [[1, "ro"], [2, "nosuid"], [4, "nodev"], [8, "noexec"]];
  return [...(flags & 1 ? [] : ["rw"]), ...names.filter(([f]) => flags & f).map(([, n]) => n), ...(m.tmpfs?.data ? [m.tmpfs.data] : [])].join(",");
}

function asStrings(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === "string") return [v];
  return [];
}

/** What Docker adds to every process's environment: PATH, HOSTNAME, TERM with a tty, HOME. */
function daemonEnvironment(env: string[], hostname: string, tty: boolean, home: string): string[] {
  const base = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", `HOSTNAME=${hostname}`];
  if (tty) base.push("TERM=xterm");
  const merged = mergeEnv(base, env);
  if (!merged.some((e) => e.startsWith("HOME="))) merged.push(`HOME=${home}`);
  return merged;
}

function mergeEnv(base: string[], extra: string[]): string[] {
  const m = new Map<string, string>();
  for (const e of [...base, ...extra]) {
    const k = e.split("=")[0]!;
    m.delete(k);
    m.set(k, e);
  }
  return [...m.values()];
}

/** Image defaults under the create request, the way Docker merges them. */
function containerConfig(body: Record<string, unknown>, image: Image, id: string, imageRef: string): ContainerConfig {
  const d = image.config.config ?? {};
  const entrypointGiven = body.Entrypoint !== undefined && body.Entrypoint !== null;
  let entrypoint = entrypointGiven ? asStrings(body.Entrypoint) : d.Entrypoint ?? null;
  if (entrypoint && entrypoint.length === 1 && entrypoint[0] === "") entrypoint = null; // --entrypoint ""
  const cmdGiven = Array.isArray(body.Cmd) && (body.Cmd as unknown[]).length > 0;
  // A new entrypoint drops the image's Cmd, as in Docker.
  const cmd = cmdGiven ? asStrings(body.Cmd) : entrypointGiven ? null : d.Cmd ?? null;
  const labels = { ...(d.Labels ?? {}), ...((body.Labels as Record<string, string>) ?? {}) };
  const hostname = typeof body.Hostname === "string" && body.Hostname ? body.Hostname : id.slice(0, 12);
  const ports = { ...(d.ExposedPorts ?? {}), ...((body.ExposedPorts as Record<string, object>) ?? {}) };
  const volumes = { ...(d.Volumes ?? {}), ...((body.Volumes as Record<string, object>) ?? {}) };
  const cfg: ContainerConfig = {
    Hostname: hostname,
    Domainname: String(body.Domainname ?? ""),
    User: String(body.User || d.User || ""),
    AttachStdin: !!body.AttachStdin,
    AttachStdout: !!body.AttachStdout,
    AttachStderr: !!body.AttachStderr,
    Tty: !!body.Tty,
    OpenStdin: !!body.OpenStdin,
    StdinOnce: !!body.StdinOnce,
    Env: mergeEnv(d.Env ?? [], asStrings(body.Env)),
    Cmd: cmd,
    Image: imageRef,
    Volumes: Object.keys(volumes).length ? volumes : null,
    WorkingDir: String(body.WorkingDir || d.WorkingDir || ""),
    Entrypoint: entrypoint,
    OnBuild: null,
    Labels: labels,
  };
  if (Object.keys(ports).length) cfg.ExposedPorts = ports;
  if (body.StopSignal || d.StopSignal) cfg.StopSignal = String(body.StopSignal || d.StopSignal);
  if (typeof body.StopTimeout === "number") cfg.StopTimeout = body.StopTimeout;
  return cfg;
}

function hostConfigFrom(h: Record<string, unknown>): HostConfig {
  const num = (k: string) => (typeof h[k] === "number" ? (h[k] as number) : 0);
  const strs = (k: string) => (Array.isArray(h[k]) ? (h[k] as unknown[]).map(String) : null);
  const nanoCpus = num("NanoCpus");
  if (nanoCpus && nanoCpus < 0.01e9) throw new EngineError(400, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available".replace(/2\.00|2 CPUs/g, (m) => (m.includes(".") ? `${os.cpus().length}.00` : `${os.cpus().length} CPUs`)));
  if (nanoCpus > os.cpus().length * 1e9) throw new EngineError(400, `Range of CPUs is from 0.01 to ${os.cpus().length}.00, as there are only ${os.cpus().length} CPUs available`);
  const memory = num("Memory");
  if (memory && memory < 6 * 1024 * 1024) throw new EngineError(400, "Minimum memory limit allowed is 6MB");
  const swap = num("MemorySwap");
  if (memory && swap > 0 && swap < memory) throw new EngineError(400, "Minimum memoryswap limit should be larger than memory limit, see usage");
  const cpuset = typeof h.CpusetCpus === "string" ? h.CpusetCpus : "";
  if (cpuset && !validCpuset(cpuset)) throw new EngineError(400, `Requested CPUs are not available - requested ${cpuset}, available: 0-${os.cpus().length - 1}`);
  return {
    ...h,
    Binds: strs("Binds"),
    NetworkMode: typeof h.NetworkMode === "string" && h.NetworkMode ? h.NetworkMode : "default",
    PortBindings: (h.PortBindings as HostConfig["PortBindings"]) ?? {},
    RestartPolicy: (h.RestartPolicy as HostConfig["RestartPolicy"]) ?? { Name: "no", MaximumRetryCount: 0 },
    AutoRemove: !!h.AutoRemove,
    CapAdd: strs("CapAdd"),
    CapDrop: strs("CapDrop"),
    Privileged: !!h.Privileged,
    ReadonlyRootfs: !!h.ReadonlyRootfs,
    SecurityOpt: strs("SecurityOpt"),
    Memory: memory,
    MemorySwap: swap,
    NanoCpus: nanoCpus,
    CpuShares: num("CpuShares"),
    CpuPeriod: num("CpuPeriod"),
    CpuQuota: num("CpuQuota"),
    CpusetCpus: cpuset,
    CpusetMems: typeof h.CpusetMems === "string" ? h.CpusetMems : "",
    PidsLimit: typeof h.PidsLimit === "number" && h.PidsLimit > 0 ? h.PidsLimit : null,
    LogConfig: { Type: "json-file", Config: {} },
    ConsoleSize: Array.isArray(h.ConsoleSize) ? (h.ConsoleSize as [number, number]) : [0, 0],
  };
}

function validCpuset(spec: string): boolean {
  const n = os.cpus().length;
  return spec.split(",").every((part) => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    return !!m && Number(m[1]) < n && (m[2] === undefined || (Number(m[2]) < n && Number(m[2]) >= Number(m[1])));
  });
}

function limitsOf(h: HostConfig): Limits {
  return { memory: h.Memory, memorySwap: h.MemorySwap, nanoCpus: h.NanoCpus, cpuQuota: h.CpuQuota, cpuPeriod: h.CpuPeriod, cpuShares: h.CpuShares, cpusetCpus: h.CpusetCpus, pidsLimit: h.PidsLimit ?? undefined };
}

function consoleSize(s: [number, number] | undefined): { rows: number; cols: number } | undefined {
  return s && s[0] && s[1] ? { rows: s[0], cols: s[1] } : undefined;
}

function emptyRecipe(s: Snapshot, hostname: string): Recipe {
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

/** `-u name`, `-u uid`, `-u uid:gid`, `-u name:group`, looked up in the container's own files. */
export function resolveUser(rootfs: string, spec: string): { uid: number; gid: number; groups: number[]; home: string } {
  if (!spec) spec = "0";
  const [u, g] = spec.split(":");
  const passwd = readColonFile(path.join(rootfs, "etc/passwd"));
  const groupFile = readColonFile(path.join(rootfs, "etc/group"));
  let uid: number, gid: number | undefined;
  let userName: string | undefined;
  let home = "/";
  if (/^\d+$/.test(u!)) {
    uid = Number(u);
    const entry = passwd.find((p) => Number(p[2]) === uid);
    if (entry) {
      gid = Number(entry[3]);
      userName = entry[0];
      home = entry[5] || "/";
    }
  } else {
    const entry = passwd.find((p) => p[0] === u);
    if (!entry) throw new EngineError(400, `unable to find user ${u}: no matching entries in passwd file`);
    uid = Number(entry[2]);
    gid = Number(entry[3]);
    userName = entry[0];
    home = entry[5] || "/";
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const entry = groupFile.find((x) => x[0] === g);
      if (!entry) throw new EngineError(400, `unable to find group ${g}: no matching entries in group file`);
      gid = Number(entry[2]);
    }
  }
  // Like runc: the primary group is also a supplementary one, plus every group naming the user.
  const member = userName ? groupFile.filter((x) => (x[3] ?? "").split(",").includes(userName!)).map((x) => Number(x[2])) : [];
  const groups = [...new Set([gid ?? 0, ...member])];
  return { uid, gid: gid ?? 0, groups, home: uid === 0 && home === "/" ? "/root" : home };
}

function readColonFile(file: string): string[][] {
  try {
    return fs.readFileSync(file, "utf8").split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(":"));
  } catch {
    return [];
  }
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

export function matchesLabels(c: Container, labels: string[]): boolean {
  return labels.every((l) => {
    const [k, ...v] = l.split("=");
    const have = c.record.Config.Labels[k!];
    return v.length ? have === v.join("=") : have !== undefined;
  });
}

