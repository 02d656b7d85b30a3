/**
 * A container as the engine keeps it: Docker's own field names (Config, HostConfig, State), so that
 * inspect is a plain copy, plus the recipe — what the engine did to make it, step by step.
 * Persisted as <root>/containers/<id>/config.json on every state change. `Container` wraps a record
 * with what exists only while the engine runs (the shim, stdin, the cgroup, attached clients).
 */
import { EventEmitter } from "node:events";
import fs from "node:fs";
import path from "node:path";
import type { PassThrough } from "node:stream";
import type { Cgroup } from "../cgroups/cgroups";
import type { Recipe } from "../recipe/recipe";
import { JsonFileLog, type StreamName } from "../logs/json-file";
import type { ShimProcess } from "../runtime/shim";

export interface ContainerConfig {
  Hostname: string;
  Domainname: string;
  User: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  ExposedPorts?: Record<string, object>;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  Env: string[];
  Cmd: string[] | null;
  Image: string;
  Volumes: Record<string, object> | null;
  WorkingDir: string;
  Entrypoint: string[] | null;
  OnBuild: string[] | null;
  Labels: Record<string, string>;
  StopSignal?: string;
  StopTimeout?: number;
  Healthcheck?: HealthConfig;
}

/** HEALTHCHECK / --health-*: durations in ns; Test is ["CMD", ...], ["CMD-SHELL", cmd] or ["NONE"]. */
export interface HealthConfig {
  Test: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** State.Health: what the probes found, the last five of them kept. */
export interface HealthState {
  Status: "starting" | "healthy" | "unhealthy";
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[];
}

export interface HostConfig {
  Binds: string[] | null;
  NetworkMode: string;
  PortBindings: Record<string, { HostIp: string; HostPort: string }[]>;
  RestartPolicy: { Name: string; MaximumRetryCount: number };
  AutoRemove: boolean;
  CapAdd: string[] | null;
  CapDrop: string[] | null;
  Privileged: boolean;
  ReadonlyRootfs: boolean;
  SecurityOpt: string[] | null;
  Memory: number;
  MemorySwap: number;
  NanoCpus: number;
  CpuShares: number;
  CpuPeriod: number;
  CpuQuota: number;
  CpusetCpus: string;
  CpusetMems: string;
  PidsLimit: number | null;
  LogConfig: { Type: string; Config: Record<string, string> };
  ConsoleSize: [number, number];
  [key: string]: unknown;
}

export interface ContainerState {
  Status: "created" | "running" | "paused" | "restarting" | "removing" | "exited" | "dead";
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  Health?: HealthState;
}

/** What the engine did to make the container, for the X-ray panel and the lessons (../recipe). */
export type { Recipe } from "../recipe/recipe";

/** A volume, bind or tmpfs mount, in the shape inspect shows. */
export interface MountPoint {
  Type: "bind" | "volume" | "tmpfs";
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
}

export interface ContainerRecord {
  Id: string;
  Created: string;
  Path: string;
  Args: string[];
  State: ContainerState;
  Image: string; // sha256:...
  ResolvConfPath: string;
  HostnamePath: string;
  HostsPath: string;
  LogPath: string;
  Name: string; // "/name"
  RestartCount: number;
  Driver: string;
  Platform: string;
  MountLabel: string;
  ProcessLabel: string;
  AppArmorProfile: string;
  ExecIDs: string[] | null;
  Mounts: MountPoint[];
  HostConfig: HostConfig;
  Config: ContainerConfig;
  recipe?: Recipe;
  /** dockerd's HasBeenManuallyStopped: stopped by a user, so `unless-stopped` leaves it down. Not shown by inspect. */
  manuallyStopped?: boolean;
  /** Live restore: the shim's pid, to find the container again after an engine restart. Not shown by inspect. */
  shimPid?: number;
}

export const ZERO_TIME = "0001-01-01T00:00:00Z";

export function newState(): ContainerState {
  return { Status: "created", Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: "", StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME };
}

/** Go's units.HumanDuration, which `docker ps` uses for "Up 3 seconds" and "Exited (0) 2 minutes ago". */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return "Less than a second";
  if (s === 1) return "1 second";
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m === 1) return "About a minute";
  if (m < 60) return `${m} minutes`;
  const h = Math.floor(ms / 3600000 + 0.5);
  if (h === 1) return "About an hour";
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(ms / 3600000 / 24 / 365)} years`;
}

export function statusText(s: ContainerState, now = Date.now()): string {
  if (s.Restarting) return `Restarting (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
  if (s.Running) {
    const health = s.Health ? ` (${s.Health.Status === "starting" ? "health: starting" : s.Health.Status})` : "";
    return `Up ${humanDuration(now - Date.parse(s.StartedAt))}${s.Paused ? " (Paused)" : health}`;
  }
  if (s.Status === "created") return "Created";
  if (s.Status === "removing") return "Removal In Progress";
  if (s.Status === "dead") return "Dead";
  return `Exited (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
}

const ADJECTIVES = ["brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "kind", "lucid", "merry", "nifty", "proud", "quiet", "sharp", "tender", "vivid", "wise", "zesty", "bold", "crisp"];
const NAMES = ["lovelace", "hopper", "turing", "ritchie", "thompson", "torvalds", "hamilton", "liskov", "knuth", "dijkstra", "allen", "goldberg", "kernighan", "pike", "stallman", "wozniak", "johnson", "bell", "noether", "curie"];

export function randomName(taken: (n: string) => boolean): string {
  for (let i = 0; ; i++) {
    const n = `${ADJECTIVES[Math.floor(Math.random() * ADJECTIVES.length)]}_${NAMES[Math.floor(Math.random() * NAMES.length)]}${i > 10 ? i : ""}`;
    if (!taken(n)) return n;
  }
}

type OutputListener = (stream: StreamName, chunk: Buffer) => void;

/** A running or stopped container: its record plus what only exists while the engine runs. */
export class Container extends EventEmitter {
  shim?: ShimProcess;
  stdin?: PassThrough;
  log: JsonFileLog;
  cgroup?: Cgroup;
  readonly listeners_ = new Set<OutputListener>();
  /** Stopped by a user (stop, kill, rm -f): no restart policy brings it back. */
  stopping = false;
  /** A restart policy's pending start, and the back-off before the next (restart.ts). */
  restartTimer?: NodeJS.Timeout;
  backoffMs = 0;

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
  /** A process is there. (A container a restart policy is about to start again is "Running" in
   *  Docker's state, with Restarting set, but has none.) */
  get running(): boolean {
    return this.record.State.Running && !this.record.State.Restarting;
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
