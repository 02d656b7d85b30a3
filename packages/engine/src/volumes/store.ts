/**
 * Volumes: directories the engine owns, outside any container's layers, so data outlives the
 * container. Named (`-v data:/var/lib/x`) or anonymous (a VOLUME in the image, `-v /path`).
 *
 *   <root>/volumes/<name>/_data       what the container sees
 *   <root>/volumes/<name>/volume.json  name, labels, created, anonymous or not
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { EngineError } from "../errors";
import type { EventLog } from "../events/log";

export interface Volume {
  Name: string;
  Driver: "local";
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: "local";
  Options: Record<string, string> | null;
  anonymous: boolean;
}

/**
 * Docker (since 23.0, API 1.42) marks the volumes it makes for `-v /path` and image VOLUMEs with
 * this label; `volume prune` without `--all` removes only those.
 */
export const ANONYMOUS_LABEL = "com.docker.volume.anonymous";

export interface VolumeStoreOptions {
  /**
   * Host paths no bind mount may use (the path itself or anything below it): always the engine's
   * own state dir; inside a sandbox also /opt/berth and the agent's directories.
   */
  bindDeny?: string[];
  /** Where `volume create` and `volume destroy` are told (`docker events`); the engine's one log. */
  events?: EventLog;
}

export class VolumeStore {
  readonly dir: string;
  readonly bindDeny: string[];

  private readonly events?: EventLog;

  constructor(root: string, opts: VolumeStoreOptions = {}) {
    this.events = opts.events;
    this.dir = path.join(root, "volumes");
    fs.mkdirSync(this.dir, { recursive: true });
    // realpath: a deny entry given through a symlink must still match what a bind resolves to.
    this.bindDeny = [...new Set([root, ...(opts.bindDeny ?? [])].map((p) => realOrResolved(p)))];
  }

  get(name: string): Volume | undefined {
    if (!validName(name)) return undefined; // never read outside the volumes dir
    try {
      const v = JSON.parse(fs.readFileSync(path.join(this.dir, name, "volume.json"), "utf8")) as Volume;
      return { ...v, Options: v.Options && Object.keys(v.Options).length ? v.Options : null };
    } catch {
      return undefined;
    }
  }

  list(): Volume[] {
    return fs.readdirSync(this.dir).map((n) => this.get(n)).filter((v): v is Volume => !!v);
  }

  /**
   * Create (or return the existing) volume; no name makes an anonymous one. Only the local driver
   * exists, and it takes no options here (dockerd's `type`/`device`/`o` would need a mount per
   * volume; they are refused rather than silently ignored).
   */
  create(name?: string, labels: Record<string, string> = {}, opts: { driver?: string; options?: Record<string, string> | null } = {}): Volume {
    if (name) {
      if (name.length < 2 && /^[a-zA-Z0-9]$/.test(name)) throw new EngineError(400, `create ${name}: volume name is too short, names should be at least two alphanumeric characters`);
      if (!validName(name)) throw new EngineError(400, `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
    }
    const driver = opts.driver || "local";
    if (driver !== "local") throw new EngineError(404, `create ${name ?? ""}: error looking up volume plugin ${driver}: plugin "${driver}" not found`);
    for (const k of Object.keys(opts.options ?? {})) {
      if (!["type", "device", "o", "size"].includes(k)) throw new EngineError(400, `create ${name ?? ""}: invalid option: "${k}"`);
      throw new EngineError(400, `create ${name ?? ""}: the local driver's mount options (type, device, o) are not supported by Berth's engine: use --mount type=tmpfs or a bind mount instead`);
    }
    const existing = name ? this.get(name) : undefined;
    // dockerd tells a "create" whenever a volume is asked for, there already or not (a container's -v too).
    if (existing) return this.events?.publish("volume", "create", existing.Name, { driver: "local" }), existing;
    const n = name || randomBytes(32).toString("hex");
    const data = path.join(this.dir, n, "_data");
    fs.mkdirSync(data, { recursive: true });
    const v: Volume = {
      Name: n,
      Driver: "local",
      Mountpoint: data,
      // Go's RFC 3339: seconds, no fraction (the CLI prints it as is).
      CreatedAt: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      Labels: name ? labels : { ...labels, [ANONYMOUS_LABEL]: "" },
      Scope: "local",
      Options: null,
      anonymous: !name,
    };
    fs.writeFileSync(path.join(this.dir, n, "volume.json"), JSON.stringify(v));
    this.events?.publish("volume", "create", n, { driver: "local" });
    return v;
  }

  /**
   * Docker's copy-up: what the image has at the mount point goes into the volume, but only when
   * the volume is still empty (so a volume is seeded once, by the first container that mounts it,
   * and never overwritten) and only when the mount did not ask for `nocopy`. Owners, modes, times
   * and links are kept (`cp -a`): a postgres image's data dir must stay the postgres user's.
   */
  seed(v: Volume, from: string): boolean {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(from);
    } catch {
      return false;
    }
    if (!st.isDirectory()) return false;
    if (fs.readdirSync(v.Mountpoint).length > 0) return false;
    // The volume's root takes the owner and mode of the image's directory, as in Docker.
    fs.chownSync(v.Mountpoint, st.uid, st.gid);
    fs.chmodSync(v.Mountpoint, st.mode & 0o7777);
    if (fs.readdirSync(from).length === 0) return false;
    execFileSync("cp", ["-a", "--", `${from}/.`, `${v.Mountpoint}/`], { stdio: ["ignore", "ignore", "pipe"] });
    return true;
  }

  remove(name: string): void {
    if (!validName(name) || !fs.existsSync(path.join(this.dir, name))) return;
    fs.rmSync(path.join(this.dir, name), { recursive: true, force: true });
    this.events?.publish("volume", "destroy", name, { driver: "local" });
  }

  /** Bytes of the regular files in the volume (what Docker's `system df -v` and prune report). */
  size(v: Volume): number {
    let total = 0;
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) total += fs.lstatSync(p).size;
      }
    };
    try {
      walk(v.Mountpoint);
    } catch {
      /* removed meanwhile */
    }
    return total;
  }

  /** The deny entry a bind source falls under, if any (the path itself or anything below it). */
  deniedBind(source: string): string | undefined {
    const real = realOrResolved(source);
    return this.bindDeny.find((d) => real === d || real.startsWith(d.endsWith("/") ? d : `${d}/`));
  }
}

function validName(name: string): boolean {
  return /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(name);
}

/** realpath of the longest existing prefix, plus the rest: symlinks in a bind source cannot dodge the deny list. */
function realOrResolved(p: string): string {
  let head = path.resolve(p);
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(head), ...tail);
    } catch {
      if (head === "/") return path.resolve(p);
      tail.unshift(path.basename(head));
      head = path.dirname(head);
    }
  }
}

/** `docker volume ls` filters: name (substring), driver, label (key or key=value), dangling. */
export function volumeFilter(filters: Record<string, string[]>, inUse: (name: string) => boolean): (v: Volume) => boolean {
  for (const k of Object.keys(filters)) if (!["name", "driver", "label", "dangling"].includes(k)) throw new EngineError(400, `Invalid filter '${k}'`);
  const dangling = filters.dangling ?? [];
  for (const d of dangling) if (!["true", "false", "1", "0"].includes(d)) throw new EngineError(400, `Invalid filter 'dangling=[${d}]'`);
  return (v) => {
    if (filters.name && !filters.name.some((n) => v.Name.includes(n))) return false;
    if (filters.driver && !filters.driver.includes(v.Driver)) return false;
    if (filters.label && !labelsMatch(v.Labels, filters.label)) return false;
    if (dangling.length) {
      const want = dangling[0] === "true" || dangling[0] === "1";
      if (want === inUse(v.Name)) return false;
    }
    return true;
  };
}

/** `label=k` (present) and `label=k=v` (equal), all of them must hold. */
export function labelsMatch(labels: Record<string, string>, wanted: string[]): boolean {
  return wanted.every((l) => {
    const i = l.indexOf("=");
    return i < 0 ? l in labels : labels[l.slice(0, i)] === l.slice(i + 1);
  });
}
