/**
 * The recipe: what the engine did to make a container, built only from reports of the code that
 * did each step. Nothing here describes what *should* have happened:
 *   - berth-shim's child reports every system call of interest (runtime/shim.c, "report" lines):
 *     namespaces with inode numbers, each mount(2) with its flags and data, each fallback taken
 *     in a user namespace, the kernel's own mountinfo below the new root, cgroup membership,
 *     capabilities and identity read back, and the program it exec'd;
 *   - the Cgroup class records each file it wrote (cgroups/cgroups.ts);
 *   - the start sequence passes on the lines the network and volume code reported.
 * The X-ray panel shows it, and links each item to the source line that did it (`source`).
 */
import type { CgroupWrite } from "../cgroups/cgroups";
import { CAPABILITIES, type ShimReport } from "../runtime/shim";

/** Where in the repository a step was taken: a line, or a text to find in the file (TypeScript). */
export interface SourceRef {
  file: string;
  line?: number;
  find?: string;
}

export interface RecipeStep {
  kind: "rootfs" | "cgroup" | "engine" | "namespace" | "mount" | "fallback" | "hostname" | "sysctl" | "limit" | "net" | "cwd" | "identity" | "exec";
  text: string;
  source: SourceRef;
}

export interface RecipeNamespace {
  type: string;
  inode: number;
  /** The engine's own namespace of this type (the sandbox's, or the host's). */
  outer: number;
  shared: boolean;
  path: string;
  source: SourceRef;
}

export interface RecipeMount {
  /** Inside the container. */
  destination: string;
  /** As the kernel lists it in mountinfo after the call (a bind shows the type it came from). */
  type: string;
  source: string;
  options: string;
  superOptions: string;
  mountId: number;
  /** The mount(2) call that made it; absent for a mount that came along with a recursive bind. */
  call?: { source: string; type: string; flags: string; data: string; remount?: string };
  /** A fallback the shim took (in a user namespace), in its own words. */
  fallback?: string;
  sourceRef: SourceRef;
}

export interface Recipe {
  hostPid: number;
  /** The exact command line berth-shim was started with. */
  shim: string[];
  namespaces: RecipeNamespace[];
  rootfs: { lower: string[]; upper: string; work: string; merged: string; command: string };
  mounts: RecipeMount[];
  cgroup: { version: 1 | 2; paths: string[]; writes: CgroupWrite[]; notes: string[]; membership: string[] };
  /** The bounding set, as names (what the process may ever hold). */
  capabilities: string[];
  capabilitySets: { bounding: string[]; effective: string[]; permitted: string[]; noNewPrivileges: boolean };
  user: { uid: number; gid: number; groups: number[] };
  hostname: string;
  cwd: string;
  exec: { path: string; argv: string[] } | null;
  /** Each step as one line, in order (the lab's `r.steps.join("\n")`). */
  steps: string[];
  /** The same steps with where each was taken. */
  trace: RecipeStep[];
}

export interface RecipeInput {
  /** ShimProcess.argv and .reports, and the host pid it reported. */
  argv: string[];
  reports: ShimReport[];
  hostPid: number;
  snapshot: { lower: string[]; upper: string; work: string; merged: string };
  cgroup: { version: 1 | 2; dirs: string[]; writes: CgroupWrite[]; notes: string[] };
  hostname: string;
  /** Lines reported by the engine's own code before the shim ran (network, volume copy-up). */
  engineSteps?: string[];
}

export const SHIM_SOURCE = "packages/engine/src/runtime/shim.c";
const CGROUP_SOURCE = "packages/engine/src/cgroups/cgroups.ts";
const OVERLAY_SOURCE = "packages/engine/src/snapshots/overlay.ts";
const START_SOURCE = "packages/engine/src/containers/start.ts";

/** mountinfo escapes space, tab, newline and backslash as octal. */
export function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** A hex mask from the shim -> capability names, sorted. */
export function capabilityNames(hex: string): string[] {
  let mask: bigint;
  try {
    mask = BigInt(`0x${hex || "0"}`);
  } catch {
    return [];
  }
  return Object.entries(CAPABILITIES)
    .filter(([, n]) => (mask >> BigInt(n)) & 1n)
    .map(([name]) => `CAP_${name}`)
    .sort();
}

/** Inside the container: the path below the new root ("/" for the root itself), or undefined. */
function inside(merged: string, p: string): string | undefined {
  if (p === merged) return "/";
  if (p.startsWith(`${merged}/`)) return p.slice(merged.length);
  return undefined;
}

export function buildRecipe(input: RecipeInput): Recipe {
  const { reports, snapshot } = input;
  const merged = snapshot.merged;
  const trace: RecipeStep[] = [];
  const shimRef = (line: number): SourceRef => ({ file: SHIM_SOURCE, line });
  const of = (kind: string) => reports.filter((r) => r.kind === kind);

  // The kernel's mount table below the new root, as the shim read it before pivot_root.
  const kernel = of("mounted").map((r) => {
    const [id, parent, point, options, type, source, superOptions] = r.fields;
    return { id: Number(id), parent: Number(parent), point: unescapeMountinfo(point ?? ""), options: options ?? "", type: type ?? "", source: unescapeMountinfo(source ?? ""), superOptions: superOptions ?? "", line: r.line };
  });
  const topmost = (point: string) => [...kernel].reverse().find((k) => k.point === point);

  // 1. The root filesystem: the overlay the engine mounted, as the kernel shows it.
  const root = topmost(merged);
  const rootOptions = (root?.superOptions ?? "").split(",").filter((o) => o !== "rw" && o !== "ro").join(",");
  const rootfsCommand = `mount -t ${root?.type || "overlay"} ${root?.source || "overlay"} -o ${rootOptions} ${merged}`;
  // Mounted by the shim (a "rootfs" report) or, when the engine had to look inside first, by the engine.
  const byShim = of("rootfs")[0];
  trace.push({ kind: "rootfs", text: rootfsCommand, source: byShim ? shimRef(byShim.line) : { file: OVERLAY_SOURCE, find: "export function mountSnapshot" } });

  // 2. The cgroup: each file the Cgroup class wrote, and what it could not write.
  for (const w of input.cgroup.writes) {
    trace.push({ kind: "cgroup", text: `echo ${w.value} > ${w.file}`, source: { file: CGROUP_SOURCE, find: w.file.split("/").pop()! } });
  }
  for (const note of input.cgroup.notes) trace.push({ kind: "cgroup", text: note, source: { file: CGROUP_SOURCE, find: "this.notes.push" } });
  for (const s of input.engineSteps ?? []) trace.push({ kind: "engine", text: s, source: { file: START_SOURCE, find: "step(" } });

  // 3. Namespaces, as the child found them right after unshare (or setns).
  const namespaces: RecipeNamespace[] = of("ns").map((r) => {
    const [type = "", inode = "0", outer = "0"] = r.fields;
    return { type, inode: Number(inode), outer: Number(outer), shared: inode === outer, path: `/proc/${input.hostPid}/ns/${type}`, source: shimRef(r.line) };
  });
  const fresh = namespaces.filter((n) => !n.shared);
  if (namespaces.length) {
    trace.push({
      kind: "namespace",
      text: `unshare ${fresh.map((n) => `${n.type} [${n.inode}]`).join(", ") || "nothing"}${namespaces.some((n) => n.shared) ? `; shared with the engine: ${namespaces.filter((n) => n.shared).map((n) => n.type).join(", ")}` : ""} -> host pid ${input.hostPid}`,
      source: shimRef(namespaces[0]!.source.line!),
    });
  }

  // 4. Everything else the child did, in its order.
  const mounts: RecipeMount[] = [];
  let pendingFallback: string | undefined;
  let hostname = input.hostname;
  let cwd = "/";
  let user = { uid: 0, gid: 0, groups: [] as number[] };
  let sets = { bounding: [] as string[], effective: [] as string[], permitted: [] as string[], noNewPrivileges: false };
  let exec: Recipe["exec"] = null;
  const membership: string[] = [];
  for (const r of reports) {
    const f = r.fields;
    switch (r.kind) {
      case "cgroup":
        membership.push(f[0] ?? "");
        break;
      case "hostname":
        hostname = f[0] ?? hostname;
        trace.push({ kind: "hostname", text: `sethostname ${hostname}`, source: shimRef(r.line) });
        break;
      case "fallback":
        pendingFallback = `${f[1]}: ${f[2]} bound instead`;
        trace.push({ kind: "fallback", text: `${f[0]}: ${f[1]} -> bind ${f[2]}`, source: shimRef(r.line) });
        break;
      case "mount": {
        const [dst = "", src = "", type = "", flags = "", data = ""] = f;
        const where = inside(merged, dst);
        const words = [flags, data].filter(Boolean).join(",");
        trace.push({ kind: "mount", text: `mount ${type ? `-t ${type} ` : ""}${src || "none"} ${dst}${words ? ` -o ${words}` : ""}`, source: shimRef(r.line) });
        if (where === undefined) break; // "/" made private: a propagation change, not a mount
        if (flags.split(",").includes("remount")) {
          const m = [...mounts].reverse().find((x) => x.destination === where);
          if (m?.call) m.call.remount = flags;
          break;
        }
        const k = topmost(dst);
        const entry: RecipeMount = {
          destination: where,
          type: k?.type ?? type,
          source: k?.source ?? src,
          options: k?.options ?? "",
          superOptions: k?.superOptions ?? "",
          mountId: k?.id ?? 0,
          call: { source: src, type: type || "bind", flags, data },
          ...(pendingFallback ? { fallback: pendingFallback } : {}),
          sourceRef: shimRef(r.line),
        };
        pendingFallback = undefined;
        const same = mounts.findIndex((x) => x.destination === where);
        if (same >= 0) mounts.splice(same, 1); // mounted over: the last one is what the container sees
        mounts.push(entry);
        break;
      }
      case "sysctl":
        trace.push({ kind: "sysctl", text: `echo ${f[1]} > ${f[0]}`, source: shimRef(r.line) });
        break;
      case "rlimit":
        trace.push({ kind: "limit", text: `setrlimit ${f[0]} (resource:soft:hard)`, source: shimRef(r.line) });
        break;
      case "oom_score_adj":
        trace.push({ kind: "limit", text: `echo ${f[0]} > /proc/self/oom_score_adj`, source: shimRef(r.line) });
        break;
      case "netlink": // a veth pair made or addressed by the shim, as the `ip` command it stands for
        trace.push({ kind: "net", text: f[0] ?? "", source: shimRef(r.line) });
        break;
      case "net":
        trace.push({ kind: "net", text: `ip link set ${f[0]} ${f[1]}`, source: shimRef(r.line) });
        break;
      case "cwd":
        cwd = f[0] ?? "/";
        trace.push({ kind: "cwd", text: `pivot_root; chdir ${cwd}`, source: shimRef(r.line) });
        break;
      case "user":
        user = { uid: Number(f[0]), gid: Number(f[1]), groups: (f[2] ?? "").split(",").filter(Boolean).map(Number) };
        trace.push({ kind: "identity", text: `setgroups [${user.groups.join(",")}]; setgid ${user.gid}; setuid ${user.uid}`, source: shimRef(r.line) });
        break;
      case "caps":
        sets = { bounding: capabilityNames(f[0] ?? ""), effective: capabilityNames(f[1] ?? ""), permitted: capabilityNames(f[2] ?? ""), noNewPrivileges: f[3] === "no_new_privs" };
        trace.push({ kind: "identity", text: `capabilities: ${sets.bounding.length} kept in the bounding set, ${sets.effective.length} effective${sets.noNewPrivileges ? "; no_new_privs" : ""}`, source: shimRef(r.line) });
        break;
      case "exec":
        exec = { path: f[0] ?? "", argv: (f[1] ?? "").split("\n") };
        trace.push({ kind: "exec", text: `execve ${exec.path} ${JSON.stringify(exec.argv)}`, source: shimRef(r.line) });
        break;
    }
  }
  // Mounts no call made: what a recursive bind brought along (a volume's own submounts).
  for (const k of kernel) {
    const where = inside(merged, k.point);
    if (where === undefined || mounts.some((m) => m.mountId === k.id)) continue;
    if (k.id === root?.id) continue;
    if (mounts.some((m) => m.destination === where)) continue;
    mounts.push({ destination: where, type: k.type, source: k.source, options: k.options, superOptions: k.superOptions, mountId: k.id, sourceRef: shimRef(k.line) });
  }

  return {
    hostPid: input.hostPid,
    shim: input.argv,
    namespaces,
    rootfs: { ...snapshot, command: rootfsCommand },
    mounts,
    cgroup: { version: input.cgroup.version, paths: input.cgroup.dirs, writes: input.cgroup.writes, notes: input.cgroup.notes, membership },
    capabilities: sets.bounding,
    capabilitySets: sets,
    user,
    hostname,
    cwd,
    exec,
    steps: trace.map((s) => s.text),
    trace,
  };
}

/** A created container's recipe: only where its layers are, until its start reports the rest. */
export function emptyRecipe(s: { lower: string[]; upper: string; work: string; merged: string }, hostname: string): Recipe {
  return {
    hostPid: 0,
    shim: [],
    namespaces: [],
    rootfs: { ...s, command: "" },
    mounts: [],
    cgroup: { version: 1, paths: [], writes: [], notes: [], membership: [] },
    capabilities: [],
    capabilitySets: { bounding: [], effective: [], permitted: [], noNewPrivileges: false },
    user: { uid: 0, gid: 0, groups: [] },
    hostname,
    cwd: "/",
    exec: null,
    steps: [],
    trace: [],
  };
}
