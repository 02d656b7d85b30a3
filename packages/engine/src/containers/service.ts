/**
 * Containers: the service the API calls. create() turns Docker's JSON into a record (spec.ts) and
 * writes it (state "created"); start() is the lesson, in start.ts; the shim's exit moves the
 * container to "exited" (unmounting nothing: the overlay stays until rm, so cp/export work on
 * stopped containers); remove() unmounts and deletes. exec is in exec.ts, users in user.ts.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Cgroup, detectCgroupVersion, type CgroupVersion } from "../cgroups/cgroups";
import { EngineError } from "../errors";
import { mark } from "../profile";
import type { EventLog } from "../events/log";
import type { ImageStore } from "../images/store";
import type { NetworkManager, NetContainer } from "../network/manager";
import { capabilitySet, parseSignal, ShimPool, type ShimProcess } from "../runtime/shim";
import type { InitLayer, Snapshotter } from "../snapshots/snapshotter";
import { materializeMounts, parseMounts, type ApiMount } from "../volumes/mounts";
import type { VolumeStore } from "../volumes/store";
import { Container, newState, randomName, type ContainerConfig, type ContainerRecord, type HostConfig, type MountPoint } from "./container";
import { newExec, runExec, type ExecInstance } from "./exec";
import { HealthMonitor } from "./health";
import { restartDelay, startsWithEngine } from "./restart";
import { containerConfig, hostConfigFrom, updatedHostConfig } from "./spec";
import { emptyRecipe, rootfsOf, startContainer, type StartEnv } from "./start";

export { EngineError } from "../errors";
export { Container } from "./container";
export type { ExecInstance } from "./exec";
export { resolveUser } from "./user";

export const notFound = (id: string) => new EngineError(404, `No such container: ${id}`);

export interface CreateOptions {
  name?: string;
  body: Record<string, unknown>;
}

export interface ContainerServiceParts {
  root: string;
  images: ImageStore;
  volumes: VolumeStore;
  network: NetworkManager;
  events: EventLog;
  /** Every container's root filesystem, by the container's id (snapshots/snapshotter.ts). */
  snapshots: Snapshotter;
  /** The compiled berth-shim (engine.ts builds it, or a sandbox binds in the host's). */
  shimBin: string;
  cgroupParent?: string;
  liveRestore?: boolean;
}

export class ContainerService implements StartEnv {
  readonly containers = new Map<string, Container>();
  readonly execs = new Map<string, ExecInstance>();
  readonly cgroupVersion: CgroupVersion;
  readonly shimBin: string;
  readonly shims: ShimPool;
  readonly dir: string;
  readonly root: string;
  readonly images: ImageStore;
  readonly volumes: VolumeStore;
  /** Root filesystems: prepared at create, mounted at start, diffed, committed, removed with the container. */
  readonly snapshots: Snapshotter;
  /** Bridges, addresses, published ports, DNS (src/network). */
  readonly network: NetworkManager;
  /** `docker events`: the engine's one log (volumes and networks publish to it too). */
  readonly events: EventLog;
  /** The cgroup every container's own cgroup is made under. */
  readonly cgroupParent: string;
  /** Live restore (`--live-restore`): containers outlive the engine and are found running again. */
  readonly liveRestore: boolean;

  /** Made by engine.ts, which constructs every part once and hands it over here. */
  constructor(parts: ContainerServiceParts) {
    ({ root: this.root, images: this.images, volumes: this.volumes, network: this.network, events: this.events, snapshots: this.snapshots, shimBin: this.shimBin } = parts);
    this.cgroupParent = parts.cgroupParent ?? "berth-engine";
    this.liveRestore = parts.liveRestore ?? false;
    this.dir = path.join(this.root, "containers");
    fs.mkdirSync(this.dir, { recursive: true });
    this.shims = new ShimPool(this.shimBin);
    this.cgroupVersion = detectCgroupVersion();
    this.load();
  }

  /**
   * After an engine restart: every container is found again. One that was running is still
   * running if live restore kept its shim alive (found by pid and by the exit file named on its
   * command line, so a reused pid cannot fool us); otherwise it went with the engine.
   */
  private load(): void {
    for (const id of fs.readdirSync(this.dir)) {
      const file = path.join(this.dir, id, "config.json");
      if (!fs.existsSync(file)) continue;
      const record = JSON.parse(fs.readFileSync(file, "utf8")) as ContainerRecord;
      const c = new Container(record, path.join(this.dir, id));
      // Made by an engine from before snapshots had a directory of their own: its record says where its dirs are.
      if (!this.snapshots.has(id) && record.recipe?.rootfs && this.snapshots.adopt) this.snapshots.adopt(id, record.recipe.rootfs);
      if (record.State.Running && !record.State.Restarting && this.liveRestore && this.alive(c)) {
        this.containers.set(id, c);
        this.reattach(c);
        continue;
      }
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
    // A snapshot whose container is gone (the engine stopped during an rm): nothing else will remove it.
    for (const key of this.snapshots.list()) {
      if (this.containers.has(key)) continue;
      this.cleanups.add(key);
      void this.snapshots.remove(key).catch(() => {}).finally(() => this.cleanups.delete(key));
    }
  }

  /** The exit file a live-restore shim writes (and names on its command line). */
  exitFile(c: Container): string {
    return path.join(c.dir, "exit");
  }

  private alive(c: Container): boolean {
    const shimPid = c.record.shimPid;
    if (!shimPid || fs.existsSync(this.exitFile(c))) return false;
    try {
      return fs.readFileSync(`/proc/${shimPid}/cmdline`, "utf8").split("\0").includes(this.exitFile(c));
    } catch {
      return false;
    }
  }

  /**
   * A container that kept running while the engine was away: its cgroup again, and a watch on its
   * shim (not our child any more, so no exit event): when the exit file appears, or the shim is
   * gone, the container has exited. Output written meanwhile went nowhere; new output too, since
   * the shim's pipes were the old engine's: `docker logs` shows what came before.
   */
  private reattach(c: Container): void {
    c.cgroup = new Cgroup(this.cgroupVersion, c.id, "/sys/fs/cgroup", this.cgroupParent);
    const watch = setInterval(() => {
      const file = this.exitFile(c);
      let code: number | undefined;
      if (fs.existsSync(file)) code = Number(fs.readFileSync(file, "utf8").trim());
      else if (!fs.existsSync(`/proc/${c.record.shimPid}`)) code = 255;
      if (code === undefined) return;
      clearInterval(watch);
      this.watches.delete(c.id);
      this.onExit(c, Number.isFinite(code) ? code : 255);
    }, 200);
    watch.unref();
    this.watches.set(c.id, watch);
  }
  private readonly watches = new Map<string, NodeJS.Timeout>();

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
    mark("create: image resolved");
    if (!image) throw new EngineError(404, `No such image: ${imageRef.includes(":") || imageRef.includes("@") ? imageRef : `${imageRef}:latest`}`);
    if (name !== undefined && name !== "") {
      if (!/^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(name)) throw new EngineError(400, `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
      this.checkNameFree(name.replace(/^\//, ""));
    }
    const finalName = name ? name.replace(/^\//, "") : randomName((n) => [...this.containers.values()].some((c) => c.name === n));
    const id = randomBytes(32).toString("hex");
    const dir = path.join(this.dir, id);
    fs.mkdirSync(dir, { recursive: true });
    const config = containerConfig(body, image.config.config, id, imageRef);
    const hostConfig = hostConfigFrom((body.HostConfig ?? {}) as Record<string, unknown>);
    // Sharing the host's network, a container also shows the host's name (as with Docker).
    if ((hostConfig.NetworkMode === "host" || hostConfig.UTSMode === "host") && !body.Hostname) config.Hostname = os.hostname();
    // Sharing another container's network, it shows that container's name too.
    if (hostConfig.NetworkMode.startsWith("container:") && !body.Hostname) {
      const other = [...this.containers.values()].find((x) => x.name === hostConfig.NetworkMode.slice(10) || x.id.startsWith(hostConfig.NetworkMode.slice(10)));
      if (other) config.Hostname = other.record.Config.Hostname; // a missing one fails at start, as in dockerd
    }
    capabilitySet(hostConfig.CapAdd ?? [], hostConfig.CapDrop ?? []); // refuse unknown names now, not at start
    // --privileged is honoured: every capability, the devices cgroup left open, /sys writable.
    // In a learner's sandbox all of that stays inside the sandbox's user namespace and cgroup.
    const command = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
    if (command.length === 0) throw new EngineError(400, "no command specified");
    const mounts = this.planMounts(config, hostConfig, (body.HostConfig ?? {}) as Record<string, unknown>);
    mark("create: spec, mounts planned");
    // The network mode, ports, aliases and links are checked now (dockerd refuses them at create).
    try {
      this.network.register({ id, name: finalName, hostname: config.Hostname, running: false, pid: 0 }, (body.HostConfig ?? {}) as Record<string, unknown>, config, body.NetworkingConfig as Record<string, unknown> | undefined, (ref) => this.netView(this.find(ref)));
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    mark("create: network registered");
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
    let snapshot;
    try {
      snapshot = this.snapshots.prepare(id, image.config.rootfs.diff_ids, { init: INIT_LAYER });
    } catch (e) {
      this.network.forget(id);
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    record.Driver = snapshot.driver;
    record.recipe = emptyRecipe(rootfsOf(this.snapshots, id), config.Hostname);
    mark("create: snapshot prepared");
    const c = new Container(record, dir);
    c.save();
    this.containers.set(id, c);
    this.emit(c, "create");
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
  }


  // ---------- start: the lesson (start.ts) ----------

  async start(c: Container): Promise<void> {
    if (c.running) throw new EngineError(304, "container already started");
    // A user's start: a pending policy restart is now this one, and the count begins again.
    clearTimeout(c.restartTimer);
    c.backoffMs = 0;
    c.record.RestartCount = 0;
    c.record.manuallyStopped = false;
    await this.launch(c);
  }

  private async launch(c: Container): Promise<void> {
    await startContainer(this, c);
    c.record.State.Restarting = false;
    delete c.record.State.Health;
    // HEALTHCHECK / --health-*: probes from now on (health.ts).
    const monitor = new HealthMonitor(c, (e) => runExec(this.shimBin, e, (x) => this.rootfs(x)), (x, status) => this.emit(x, `health_status: ${status}`));
    this.health.set(c.id, monitor);
    monitor.start();
    c.save();
    this.emit(c, "start");
    mark("start: health, saved, event");
  }
  private readonly health = new Map<string, HealthMonitor>();

  /** The shim is gone (StartEnv's hook). */
  exited(c: Container, code: number): void {
    this.onExit(c, code);
  }

  /** The shim is gone: record how the container ended, clean its cgroup, tell whoever waits. */
  private onExit(c: Container, code: number): void {
    mark("exit: shim gone");
    const r = c.record;
    c.log.flush();
    const wasStarted = r.State.Running; // running or paused
    // OOMKilled if the OOM killer acted in this run, even on a process that was not PID 1 and
    // even if the container went on (dockerd 20.10 tells it at exit, with an "oom" event).
    const oom = c.cgroup?.oomKilled() ?? false;
    // With --pid host or another container's pid namespace, PID 1's exit does not end the rest:
    // end what is left in its cgroup, as runc does.
    for (const p of c.cgroup?.pids() ?? []) {
      try {
        process.kill(p, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    mark("exit: oom and pids read");
    c.cgroup?.remove();
    mark("exit: cgroup removed");
    if (wasStarted) for (const m of r.Mounts ?? []) if (m.Type === "volume" && m.Name) this.events.publish("volume", "unmount", m.Name, { container: c.id, driver: "local" });
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
    this.health.get(c.id)?.stop();
    this.health.delete(c.id);
    // The restart policy: "restarting" (still Running in Docker's state) until the next start.
    const delay = wasStarted && !this.closing && this.containers.has(c.id) ? restartDelay(c, code, Date.now() - Date.parse(r.State.StartedAt)) : null;
    if (delay !== null) {
      Object.assign(r.State, { Status: "restarting", Running: true, Restarting: true });
      r.RestartCount++;
      c.restartTimer = setTimeout(() => this.restartByPolicy(c), delay);
    }
    if (this.containers.has(c.id)) c.save();
    if (oom) this.emit(c, "oom");
    this.emit(c, "die", { exitCode: String(r.State.ExitCode) });
    if (delay !== null) return;
    mark("exit: saved, die sent");
    c.emit("exit", r.State.ExitCode);
    if (r.HostConfig.AutoRemove && this.containers.has(c.id)) this.remove(c, { force: true });
  }

  private restartByPolicy(c: Container): void {
    c.restartTimer = undefined;
    if (!this.containers.has(c.id) || !c.record.State.Restarting || this.closing) return;
    this.launch(c).catch((e: Error) => {
      // Could not start again (the image's command vanished, a port taken): it stays down, saying why.
      Object.assign(c.record.State, { Status: "exited", Running: false, Restarting: false, Error: e.message });
      c.save();
      c.emit("exit", c.record.State.ExitCode);
    });
  }

  /** A restarting container's pending start is cancelled (stop, kill, rm): it is simply exited. */
  private cancelRestart(c: Container): boolean {
    if (!c.record.State.Restarting) return false;
    clearTimeout(c.restartTimer);
    c.restartTimer = undefined;
    Object.assign(c.record.State, { Status: "exited", Running: false, Restarting: false });
    c.save();
    c.emit("exit", c.record.State.ExitCode);
    return true;
  }

  /** After a restart of the engine: start what the restart policies say should run. */
  async startByPolicy(): Promise<void> {
    for (const c of this.list()) {
      if (c.running || !startsWithEngine(c)) continue;
      await this.launch(c).catch((e: Error) => {
        c.record.State.Error = e.message;
        c.save();
      });
    }
  }

  /** A container event (src/events): its labels, image and name, plus what the action adds. */
  emit(c: Container, action: string, extra: Record<string, string> = {}): void {
    this.events.publish("container", action, c.id, { ...c.record.Config.Labels, image: c.record.Config.Image, name: c.name, ...extra });
  }
  /** Engine shutdown under way: no restart policy starts anything now. */
  private closing = false;

  // ---------- wait, signals, stop ----------

  /** Resolves with the exit code; "removed" waits for rm, "next-exit" for the next exit. */
  wait(c: Container, condition: string): Promise<number> {
    if (condition === "removed") {
      return new Promise((resolve) => c.once("removed", () => resolve(c.record.State.ExitCode)));
    }
    if (condition !== "next-exit" && !c.record.State.Running) return Promise.resolve(c.record.State.ExitCode);
    return new Promise((resolve) => c.once("exit", (code: number) => resolve(code)));
  }

  kill(c: Container, signal?: string): void {
    if (c.record.State.Restarting) throw new EngineError(409, `Cannot kill container: ${c.name}: Container ${c.id} is restarting, wait until the container is running`);
    if (!c.running) throw new EngineError(409, `Cannot kill container: ${c.name}: Container ${c.id} is not running`);
    const sig = parseSignal(signal, 9);
    if (sig === undefined) throw new EngineError(400, `Invalid signal: ${signal}`);
    if (sig === 9 || sig === parseSignal(c.record.Config.StopSignal, 15)) {
      c.stopping = true; // killed by a user: its restart policy does not bring it back
      c.record.manuallyStopped = true;
    }
    process.kill(c.record.State.Pid, sig);
    this.emit(c, "kill", { signal: String(sig) });
    if (sig === 9 && c.record.State.Paused) c.cgroup?.freeze(false); // a frozen task dies only once thawed
  }

  /** `docker stop`: the stop signal, `timeout` seconds to go, then SIGKILL. */
  async stop(c: Container, timeout?: number, signal?: string): Promise<boolean> {
    if (this.cancelRestart(c)) return true;
    if (!c.running) return false;
    c.record.manuallyStopped = true;
    c.stopping = true;
    const sig = parseSignal(signal || c.record.Config.StopSignal, 15) ?? 15;
    const t = timeout ?? c.record.Config.StopTimeout ?? 10;
    const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
    try {
      process.kill(c.record.State.Pid, sig);
      this.emit(c, "kill", { signal: String(sig) });
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
    this.emit(c, "stop");
    return true;
  }

  async restart(c: Container, timeout?: number): Promise<void> {
    await this.stop(c, timeout);
    await this.start(c);
    this.emit(c, "restart");
  }

  pause(c: Container, paused: boolean): void {
    if (!c.running) throw new EngineError(409, `Container ${c.id} is not running`);
    if (c.record.State.Paused === paused) throw new EngineError(409, paused ? `Container ${c.id} is already paused` : `Container ${c.id} is not paused`);
    c.cgroup!.freeze(paused);
    Object.assign(c.record.State, { Paused: paused, Status: paused ? "paused" : "running" });
    c.save();
    this.emit(c, paused ? "pause" : "unpause");
  }

  /** `docker update`: limits into the record and, while it runs, into its cgroup; the restart policy. */
  update(c: Container, body: Record<string, unknown>): void {
    const { hostConfig, limits } = updatedHostConfig(c.record.HostConfig, body, c.id);
    if (c.running && c.cgroup && Object.keys(limits).length) {
      try {
        c.cgroup.update(limits);
      } catch (e) {
        throw new EngineError(500, `Cannot update container ${c.id}: ${(e as Error).message}`);
      }
    }
    c.record.HostConfig = hostConfig;
    c.save();
    this.emit(c, "update");
  }

  // ---------- remove, rename ----------

  async removeAsync(c: Container, opts: { force?: boolean; volumes?: boolean }): Promise<void> {
    if (c.record.State.Restarting) {
      if (!opts.force) throw new EngineError(409, `cannot remove container "${c.record.Name}": container is restarting: stop the container before removing or force remove`);
      this.cancelRestart(c);
    }
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
    void this.snapshots
      .remove(c.id)
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
    const oldName = c.record.Name;
    c.record.Name = `/${n}`;
    this.network.rename(c.id, n);
    c.save();
    this.emit(c, "rename", { oldName });
  }

  async prune(filters: Record<string, string[]>): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }> {
    const deleted: string[] = [];
    let space = 0;
    for (const c of this.list()) {
      if (c.running || !matchesLabels(c, filters.label ?? [])) continue;
      // label!=k (or k=v) keeps what carries it: `docker container prune --filter label!=keep`
      if ((filters["label!"] ?? []).some((l) => matchesLabels(c, [l]))) continue;
      space += this.snapshots.usage(c.id).size;
      this.remove(c, {});
      deleted.push(c.id);
    }
    return { ContainersDeleted: deleted, SpaceReclaimed: space };
  }

  // ---------- looking inside ----------

  /** Bytes the container wrote (its writable layer) and that plus its image: `ps -s`, `inspect -s`. */
  sizes(c: Container): { SizeRw: number; SizeRootFs: number } {
    const rw = this.snapshots.usage(c.id).size;
    return { SizeRw: rw, SizeRootFs: rw + (this.images.get(c.record.Image)?.size ?? 0) };
  }

  changes(c: Container) {
    return this.snapshots.diff(c.id);
  }

  /** The container's root filesystem on the host, mounted if the container is not running. */
  rootfs(c: Container): string {
    return this.snapshots.mount(c.id);
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

  // ---------- exec (exec.ts) ----------

  createExec(c: Container, body: Record<string, unknown>, ref?: string): ExecInstance {
    if (c.record.State.Restarting) throw new EngineError(409, `Container ${c.id} is restarting, wait until the container is running`);
    const e = newExec(c, body, ref);
    this.execs.set(e.ID, e);
    this.emit(c, `exec_create: ${execLine(e)}`, { execID: e.ID });
    return e;
  }

  async startExec(e: ExecInstance): Promise<ShimProcess> {
    const shim = await runExec(this.shimBin, e, (c) => this.rootfs(c));
    this.emit(e.container, `exec_start: ${execLine(e)}`, { execID: e.ID });
    const died = () => this.emit(e.container, "exec_die", { execID: e.ID, exitCode: String(e.ExitCode ?? 0) });
    if (!e.Running) died();
    else shim.once("exit", () => setImmediate(died)); // after runExec's own exit handler set ExitCode
    return shim;
  }

  /** `docker attach` (and run without -d) attached a client. */
  attached(c: Container): void {
    this.emit(c, "attach");
  }


  findExec(id: string): ExecInstance {
    const e = this.execs.get(id);
    if (!e) throw new EngineError(404, `No such exec instance: ${id}`);
    return e;
  }

  /** Stop everything at engine shutdown: containers die with their engine, as documented. */
  async shutdown(): Promise<void> {
    this.closing = true;
    this.shims.close();
    for (const c of this.containers.values()) clearTimeout(c.restartTimer);
    for (const w of this.watches.values()) clearInterval(w);
    if (this.liveRestore) {
      // Live restore: the containers go on; let go of their shims (pipes, handles) and mounts stay.
      for (const c of this.list().filter((x) => x.running)) {
        this.health.get(c.id)?.stop();
        const child = c.shim?.child;
        for (const s of child?.stdio ?? []) s?.destroy();
        child?.removeAllListeners();
        child?.unref();
      }
      while (this.cleanups.size) await new Promise((r) => setTimeout(r, 20));
      await this.network.close();
      return;
    }
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
        this.snapshots.unmount(c.id);
      } catch {
        /* best effort */
      }
    }
    while (this.cleanups.size) await new Promise((r) => setTimeout(r, 20)); // removals still in flight
    await this.network.close(); // proxies, DNS, bridges, iptables chains
  }
}

// ---------- small pieces ----------



/**
 * Docker's "init layer": a thin read-only layer between the image and the container's writable
 * layer, holding the mount points the engine binds over (/etc/hostname, /etc/hosts,
 * /etc/resolv.conf) and /.dockerenv. Being below the writable layer, none of it shows in
 * `docker diff` or ends up in `docker commit`. The snapshotter makes it (snapshots/snapshotter.ts).
 */
const INIT_LAYER: InitLayer = {
  dirs: ["etc", "dev", "proc", "sys"],
  files: ["etc/hostname", "etc/hosts", "etc/resolv.conf", ".dockerenv"],
};

/** An exec as dockerd names it in events: the program, a space, its arguments (so "true " alone). */
function execLine(e: ExecInstance): string {
  return `${e.config.Cmd[0]} ${e.config.Cmd.slice(1).join(" ")}`;
}

export function matchesLabels(c: Container, labels: string[]): boolean {
  return labels.every((l) => {
    const [k, ...v] = l.split("=");
    const have = c.record.Config.Labels[k!];
    return v.length ? have === v.join("=") : have !== undefined;
  });
}

