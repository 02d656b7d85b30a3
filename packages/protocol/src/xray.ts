// The X-ray feed: what the engine in a learner's sandbox says about its containers (GET
// /berth/xray, packages/engine/src/recipe/xray.ts), and the messages the orchestrator sends a
// browser from it. The engine and the curl that fetches its answer run where the learner is root,
// so the orchestrator checks every answer against ViewSchema (every field bounded) before any of
// it reaches a browser, and the browser shows every string as text, never as HTML.
import { z } from "zod";

const str = (max = 4096) => z.string().max(max);
const int = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const num = z.number().finite();
const source = z.object({ file: str(256), line: int.optional(), find: str(256).optional() });

export const RecipeSchema = z.object({
  hostPid: int,
  shim: z.array(str(16_384)).max(2048),
  namespaces: z.array(z.object({ type: str(16), inode: int, outer: int, shared: z.boolean(), path: str(128), source })).max(16),
  rootfs: z.object({ lower: z.array(str()).max(256), upper: str(), work: str(), merged: str(), command: str(65_536) }),
  mounts: z
    .array(
      z.object({
        destination: str(),
        type: str(64),
        source: str(),
        options: str(),
        superOptions: str(65_536),
        mountId: int,
        call: z.object({ source: str(), type: str(64), flags: str(512), data: str(), remount: str(512).optional() }).optional(),
        fallback: str().optional(),
        sourceRef: source,
      }),
    )
    .max(512),
  cgroup: z.object({
    version: z.union([z.literal(1), z.literal(2)]),
    paths: z.array(str()).max(16),
    writes: z.array(z.object({ file: str(), value: str() })).max(256),
    notes: z.array(str()).max(64),
    membership: z.array(str()).max(64),
  }),
  capabilities: z.array(str(64)).max(64),
  capabilitySets: z.object({ bounding: z.array(str(64)).max(64), effective: z.array(str(64)).max(64), permitted: z.array(str(64)).max(64), noNewPrivileges: z.boolean() }),
  user: z.object({ uid: int, gid: int, groups: z.array(int).max(64) }),
  hostname: str(256),
  cwd: str(),
  exec: z.object({ path: str(), argv: z.array(str(16_384)).max(1024) }).nullable(),
  steps: z.array(str(65_536)).max(2048),
  trace: z.array(z.object({ kind: str(32), text: str(65_536), source })).max(2048),
});
export type XrayRecipe = z.infer<typeof RecipeSchema>;

export const LiveSchema = z.object({
  at: num,
  memory: z.object({ usage: int, limit: int.nullable() }).nullable(),
  cpu: z.object({ usageNs: int, quota: str(64).nullable() }).nullable(),
  pids: z.object({ current: int, limit: int.nullable() }).nullable(),
});
export type XrayLive = z.infer<typeof LiveSchema>;

export const ContainerSchema = z.object({
  id: z.string().regex(/^[0-9a-f]{64}$/),
  name: str(256),
  image: str(512),
  imageId: str(128),
  created: str(64),
  state: z.object({ status: str(32), running: z.boolean(), pid: int, exitCode: z.number().int(), startedAt: str(64), oomKilled: z.boolean() }),
  recipe: RecipeSchema.nullable(),
  live: LiveSchema.nullable(),
  layers: z.array(z.object({ dir: str(), diffId: str(80).nullable() })).max(256),
  upper: z
    .object({ dir: str(), changes: z.array(z.object({ path: str(), kind: z.enum(["changed", "added", "deleted"]) })).max(200), total: int })
    .nullable(),
  volumes: z.array(z.object({ type: str(16), name: str(256).optional(), source: str(), destination: str(), rw: z.boolean() })).max(256),
  ports: z.array(z.object({ container: str(32), hostIp: str(64), hostPort: str(16) })).max(256),
  networks: z.array(z.object({ name: str(256), ip: str(64), gateway: str(64), mac: str(64) })).max(32),
});
export type XrayContainer = z.infer<typeof ContainerSchema>;

export const ViewSchema = z.object({
  seq: int,
  engine: z.object({ pid: int, namespaces: z.array(z.object({ type: str(16), inode: int })).max(16) }),
  containers: z.array(ContainerSchema).max(50),
});
export type XrayView = z.infer<typeof ViewSchema>;


/** Where the engine's code did something: a file and a line, or a text to find in the file. */
export type XraySourceRef = XrayRecipe["trace"][number]["source"];

/** A source reference resolved to lines of a repository file (apps/orchestrator/src/xray/sources.ts). */
export interface XraySourceLink {
  path: string;
  from: number;
  to: number;
}

/** server → browser "xray:view": the whole view, when a container appears, starts, stops or goes. */
export interface XrayViewMsg {
  labId: string;
  view: XrayView;
  /** Keyed by `${file}#${line ?? find ?? ""}` (xraySourceKey) and "section:<name>". */
  links: Record<string, XraySourceLink>;
}

/** server → browser "xray:live": fresh figures for the containers already in the view. */
export interface XrayLiveMsg {
  labId: string;
  seq: number;
  containers: Record<string, { live: XrayLive | null; upper: XrayContainer["upper"]; state: XrayContainer["state"] }>;
}

/** server → browser "xray:status": the feed's own state (waiting for the engine, an error ...). */
export interface XrayStatusMsg {
  labId: string;
  state: string;
  message: string;
}

/** The key a source link is filed under in XrayViewMsg.links. */
export const xraySourceKey = (ref: XraySourceRef): string => `${ref.file}#${ref.line ?? ref.find ?? ""}`;
