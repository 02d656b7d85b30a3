/**
 * From a create request to the list of mounts a container gets, checked the way dockerd checks
 * them (and refused in dockerd's words): `-v`/Binds, `--mount`/Mounts, `--tmpfs`/Tmpfs,
 * `--volumes-from`, and an anonymous volume for each VOLUME (image or `-v /path`) nothing covers.
 *
 * Two passes: parse() checks everything and touches nothing, so a request refused at its third
 * mount leaves no volume behind; then materialize() creates the volumes the plan names.
 */
import fs from "node:fs";
import path from "node:path";
import type { MountPoint } from "../containers/container";
import { EngineError } from "../errors";
import type { VolumeStore } from "./store";

/** A mount as planned: what inspect shows, plus what only the engine needs at start. */
export interface PlannedMount extends MountPoint {
  /** Copy the image's files into the volume if it is empty (Docker's default; `nocopy` turns it off). */
  copyData?: boolean;
  /** tmpfs: mount(2) flags and data, e.g. { flags: nosuid|nodev|noexec, data: "size=1m,mode=755" }. */
  tmpfs?: { flags: number; data: string };
  /** `--tmpfs` mounts are not listed in inspect's Mounts (only `--mount type=tmpfs` ones are). */
  hidden?: boolean;
  /** `-v /host:/ctr` makes a missing host directory at start; `--mount type=bind` does not. */
  mkdirSource?: boolean;
  /** Labels for a volume created by this mount (`--mount ...,volume-label=k=v`). */
  volumeLabels?: Record<string, string>;
}

/** What inspect and `ps` show of a mount: the engine's own fields stay inside. */
export function publicMounts(mounts: MountPoint[] | undefined): MountPoint[] {
  return (mounts ?? [])
    .filter((m) => !(m as PlannedMount).hidden)
    .map(({ Type, Name, Source, Destination, Driver, Mode, RW, Propagation }) => ({ Type, ...(Name !== undefined ? { Name } : {}), Source, Destination, ...(Driver !== undefined ? { Driver } : {}), Mode, RW, Propagation }));
}

export interface MountRequest {
  binds: string[];
  mounts: ApiMount[];
  tmpfs: Record<string, string>;
  volumesFrom: string[];
  /** Config.Volumes: the image's VOLUMEs and `-v /path`. */
  volumes: string[];
}

export interface ApiMount {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  BindOptions?: { Propagation?: string } | null;
  VolumeOptions?: { NoCopy?: boolean; Labels?: Record<string, string> | null; DriverConfig?: { Name?: string; Options?: Record<string, string> | null } | null } | null;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number } | null;
}

const err = (message: string) => new EngineError(400, message);

// ---------- modes of `-v src:dst:mode` ----------

const MODE_GROUPS: Record<string, string[]> = {
  rw: ["rw", "ro"],
  label: ["z", "Z"],
  propagation: ["shared", "rshared", "slave", "rslave", "private", "rprivate"],
  copy: ["nocopy"],
  consistency: ["consistent", "cached", "delegated"],
};

/** Docker's rule: every word known, at most one of each kind ("rw,ro" is invalid). */
function validMode(mode: string): boolean {
  if (mode === "") return true;
  const seen = new Set<string>();
  for (const word of mode.split(",")) {
    const group = Object.keys(MODE_GROUPS).find((g) => MODE_GROUPS[g]!.includes(word));
    if (!group || seen.has(group)) return false;
    seen.add(group);
  }
  return true;
}
const modeWords = (mode: string) => (mode ? mode.split(",") : []);
const propagationOf = (mode: string) => modeWords(mode).find((w) => MODE_GROUPS.propagation!.includes(w));

// ---------- tmpfs options ----------

// mount(2) flags a tmpfs option may set or clear; everything else is data for the filesystem.
const MS: Record<string, [set: boolean, flag: number]> = {
  ro: [true, 1], rw: [false, 1], nosuid: [true, 2], suid: [false, 2], nodev: [true, 4], dev: [false, 4],
  noexec: [true, 8], exec: [false, 8], sync: [true, 16], async: [false, 16], dirsync: [true, 128],
  noatime: [true, 1024], atime: [false, 1024], nodiratime: [true, 2048], diratime: [false, 2048],
  relatime: [true, 1 << 21], norelatime: [false, 1 << 21], strictatime: [true, 1 << 24], nostrictatime: [false, 1 << 24],
};
const IGNORED_FLAGS = ["defaults", "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable", "bind", "rbind", "mand", "nomand", "remount"];
const TMPFS_DATA = ["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"];

/** Docker's defaults (noexec, nosuid, nodev) under the options asked for. */
export function tmpfsOptions(options: string): { flags: number; data: string } {
  let flags = 2 | 4 | 8;
  const data: string[] = [];
  for (const o of options.split(",").filter(Boolean)) {
    const f = MS[o];
    if (f) flags = f[0] ? flags | f[1] : flags & ~f[1];
    else if (IGNORED_FLAGS.includes(o)) continue;
    else {
      const kv = o.split("=");
      if (!TMPFS_DATA.includes(kv[0]!) || kv.length !== 2) throw err(`invalid tmpfs option [${kv.map((x) => JSON.stringify(x)).join(" ")}]`);
      data.push(o);
    }
  }
  return { flags, data: data.join(",") };
}

/** mount.TmpfsOptions -> "ro,mode=700,size=1m", as dockerd converts them (largest exact unit). */
function convertTmpfs(o: ApiMount["TmpfsOptions"], readOnly: boolean): string {
  const out: string[] = [];
  if (readOnly) out.push("ro");
  if (o?.Mode) out.push(`mode=${o.Mode.toString(8)}`);
  if (o?.SizeBytes) {
    if (o.SizeBytes < 0) throw err(`invalid tmpfs size ${o.SizeBytes}`);
    let size = o.SizeBytes;
    let suffix = "";
    for (const u of ["k", "m", "g"]) {
      if (size % 1024 !== 0) break;
      size /= 1024;
      suffix = u;
    }
    out.push(`size=${size}${suffix}`);
  }
  return out.join(",");
}

// ---------- checks shared by -v and --mount (dockerd's validateMountConfig) ----------

function checkTarget(target: string): void {
  if (target === "/") throw new Error("invalid specification: destination can't be '/'");
  if (!path.posix.isAbsolute(target)) throw new Error(`invalid mount path: '${target}' mount path must be absolute`);
}

/**
 * parse(): the whole request checked, nothing created. Precedence as in dockerd: --volumes-from
 * first, then -v and --mount (a duplicate destination among those is an error), then an anonymous
 * volume for every VOLUME whose path nothing else covers.
 */
export function parseMounts(req: MountRequest, deps: { store: VolumeStore; mountsOf: (ref: string) => MountPoint[] }): PlannedMount[] {
  const byDest = new Map<string, PlannedMount>();
  const explicit = new Set<string>();
  const add = (m: PlannedMount, fromUser: boolean) => {
    const dest = path.posix.normalize(m.Destination).replace(/(.)\/$/, "$1");
    if (fromUser) {
      if (explicit.has(dest)) throw err(`Duplicate mount point: ${dest}`);
      explicit.add(dest);
    }
    byDest.set(dest, { ...m, Destination: dest });
  };
  const checkBindSource = (src: string) => {
    const denied = deps.store.deniedBind(src);
    if (denied) throw new Error(`bind source path ${src} is not allowed: ${denied} and everything below it are kept out of containers by Berth's engine`);
  };
  const checkVolumeName = (name: string) => {
    if (name.length < 2 && /^[a-zA-Z0-9]$/.test(name)) throw err(`create ${name}: volume name is too short, names should be at least two alphanumeric characters`);
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(name)) throw err(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
  };

  // --volumes-from c[:ro|rw]: the other container's volumes and binds, at the same places.
  for (const spec of req.volumesFrom) {
    if (!spec) throw err("volume-from specification cannot be an empty string");
    const i = spec.indexOf(":");
    const ref = i < 0 ? spec : spec.slice(0, i);
    const mode = i < 0 ? "rw" : spec.slice(i + 1);
    if (!validMode(mode) || propagationOf(mode) || modeWords(mode).includes("nocopy")) throw err(`invalid mode: ${mode}`);
    let theirs: MountPoint[];
    try {
      theirs = deps.mountsOf(ref);
    } catch (e) {
      // dockerd answers 400 here: a 404 from create would make the CLI try to pull the image.
      throw err((e as Error).message);
    }
    for (const m of theirs) {
      if ((m as PlannedMount).hidden) continue;
      const { copyData: _c, mkdirSource: _m, volumeLabels: _l, ...rest } = m as PlannedMount;
      add({ ...rest, Mode: "", RW: m.RW && !modeWords(mode).includes("ro"), copyData: false }, false);
    }
  }

  // -v src:dst[:mode] (Binds). A source that is an absolute path is a bind, anything else a volume name.
  for (const raw of req.binds) {
    const invalid = () => err(`invalid volume specification: '${raw}'`);
    if ((raw.match(/:/g) ?? []).length > 2) throw invalid();
    const arr = raw.split(":");
    if (arr[0] === "") throw invalid();
    let source = "";
    let target: string;
    let mode = "";
    if (arr.length === 1) target = arr[0]!;
    else if (arr.length === 2) {
      if (validMode(arr[1]!)) throw invalid(); // "/foo:rw": a destination with a mode but no source
      [source, target] = [arr[0]!, arr[1]!];
    } else [source, target, mode] = [arr[0]!, arr[1]!, arr[2]!];
    if (!validMode(mode)) throw err(`invalid mode: ${mode}`);
    const type = path.posix.isAbsolute(source) ? "bind" : "volume";
    const rw = !modeWords(mode).includes("ro");
    try {
      if (!target) throw new Error("field Target must not be empty");
      checkTarget(target);
      if (type === "bind") {
        if (modeWords(mode).includes("nocopy")) throw new Error("field VolumeOptions must not be specified");
        checkBindSource(source);
      } else if (propagationOf(mode)) throw new Error("field BindOptions must not be specified");
    } catch (e) {
      throw err(`invalid volume specification: '${raw}': invalid mount config for type "${type}": ${(e as Error).message}`);
    }
    if (type === "bind") {
      add({ Type: "bind", Source: path.posix.normalize(source), Destination: target, Mode: mode, RW: rw, Propagation: propagationOf(mode) ?? "rprivate", mkdirSource: true }, true);
    } else {
      if (source) checkVolumeName(source);
      add({ Type: "volume", Name: source || undefined, Source: "", Destination: target, Driver: "local", Mode: mode || "z", RW: rw, Propagation: "", copyData: !modeWords(mode).includes("nocopy") }, true);
    }
  }

  // --mount type=bind|volume|tmpfs,... (Mounts): the source of a bind must exist.
  for (const m of req.mounts) {
    const type = String(m.Type ?? "");
    const target = String(m.Target ?? "");
    const source = String(m.Source ?? "");
    const fail = (message: string) => err(`invalid mount config for type "${type}": ${message}`);
    if (!target) throw fail("field Target must not be empty");
    try {
      checkTarget(target);
    } catch (e) {
      throw fail((e as Error).message);
    }
    if (type === "bind") {
      if (!source) throw fail("field Source must not be empty");
      if (m.VolumeOptions) throw fail("field VolumeOptions must not be specified");
      if (m.TmpfsOptions) throw fail("field TmpfsOptions must not be specified");
      const prop = m.BindOptions?.Propagation;
      if (prop && !MODE_GROUPS.propagation!.includes(prop)) throw fail(`invalid propagation mode: ${prop}`);
      if (!path.posix.isAbsolute(source)) throw fail(`invalid mount path: '${source}' mount path must be absolute`);
      if (!fs.existsSync(source)) throw fail(`bind source path does not exist: ${source}`);
      try {
        checkBindSource(source);
      } catch (e) {
        throw fail((e as Error).message);
      }
      add({ Type: "bind", Source: path.posix.normalize(source), Destination: target, Mode: "", RW: !m.ReadOnly, Propagation: prop || "rprivate" }, true);
    } else if (type === "volume") {
      if (m.BindOptions) throw fail("field BindOptions must not be specified");
      if (m.TmpfsOptions) throw fail("field TmpfsOptions must not be specified");
      if (!source && m.ReadOnly) throw fail("must not set ReadOnly mode when using anonymous volumes");
      const driver = m.VolumeOptions?.DriverConfig?.Name;
      if (driver && driver !== "local") throw new EngineError(404, `create ${source}: error looking up volume plugin ${driver}: plugin "${driver}" not found`);
      if (Object.keys(m.VolumeOptions?.DriverConfig?.Options ?? {}).length) throw err(`create ${source}: the local driver's mount options (volume-opt) are not supported by Berth's engine: use --mount type=tmpfs or a bind mount instead`);
      if (source) checkVolumeName(source);
      add({ Type: "volume", Name: source || undefined, Source: "", Destination: target, Driver: "local", Mode: "z", RW: !m.ReadOnly, Propagation: "", copyData: !m.VolumeOptions?.NoCopy, volumeLabels: m.VolumeOptions?.Labels ?? undefined }, true);
    } else if (type === "tmpfs") {
      if (source) throw fail("field Source must not be specified");
      if (m.BindOptions) throw fail("field BindOptions must not be specified");
      if (m.VolumeOptions) throw fail("field VolumeOptions must not be specified");
      add({ Type: "tmpfs", Source: "", Destination: target, Mode: "", RW: !m.ReadOnly, Propagation: "", tmpfs: tmpfsOptions(convertTmpfs(m.TmpfsOptions, !!m.ReadOnly)) }, true);
    } else throw fail("mount type unknown");
  }

  // --tmpfs /dst[:options] (Tmpfs): not listed in Mounts, like dockerd.
  for (const [dest, options] of Object.entries(req.tmpfs)) {
    try {
      checkTarget(dest);
    } catch (e) {
      throw err((e as Error).message);
    }
    add({ Type: "tmpfs", Source: "", Destination: dest, Mode: "", RW: !modeWords(options).includes("ro"), Propagation: "", tmpfs: tmpfsOptions(options), hidden: true }, true);
  }

  // VOLUME in the image, `-v /path`: an anonymous volume unless something is mounted there already.
  // A relative path is taken from the root, as dockerd 20.10 does.
  for (const v of req.volumes) {
    const dest = path.posix.normalize(path.posix.join("/", v)).replace(/(.)\/$/, "$1");
    if (dest === "/" || byDest.has(dest)) continue;
    add({ Type: "volume", Source: "", Destination: dest, Driver: "local", Mode: "", RW: true, Propagation: "", copyData: true }, false);
  }

  // Parents before children, so /data is mounted before /data/cache.
  return [...byDest.values()].sort((a, b) => a.Destination.split("/").length - b.Destination.split("/").length || a.Destination.localeCompare(b.Destination));
}

/** Second pass: make the volumes the plan names (named ones may exist already) and fill in their paths. */
export function materializeMounts(plan: PlannedMount[], store: VolumeStore): PlannedMount[] {
  return plan.map((m) => {
    if (m.Type !== "volume" || m.Source) return m;
    const v = store.create(m.Name, m.volumeLabels ?? {});
    const { volumeLabels: _l, ...rest } = m;
    return { ...rest, Name: v.Name, Source: v.Mountpoint };
  });
}
