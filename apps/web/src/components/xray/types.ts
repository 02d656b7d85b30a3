// The X-ray feed as the browser receives it (the orchestrator checks it first: apps/orchestrator/
// src/xray/view-schema.ts). Every string here came from the learner's own sandbox: it is shown as
// text only, never as HTML.
export interface SourceRef {
  file: string;
  line?: number;
  find?: string;
}
export interface SourceLink {
  path: string;
  from: number;
  to: number;
}
export interface ChapterLink {
  labId: string;
  step?: string;
  title: string;
}
export interface Live {
  at: number;
  memory: { usage: number; limit: number | null } | null;
  cpu: { usageNs: number; quota: string | null } | null;
  pids: { current: number; limit: number | null } | null;
}
export interface Recipe {
  hostPid: number;
  shim: string[];
  namespaces: { type: string; inode: number; outer: number; shared: boolean; path: string; source: SourceRef }[];
  rootfs: { lower: string[]; upper: string; work: string; merged: string; command: string };
  mounts: {
    destination: string;
    type: string;
    source: string;
    options: string;
    superOptions: string;
    mountId: number;
    call?: { source: string; type: string; flags: string; data: string; remount?: string };
    fallback?: string;
    sourceRef: SourceRef;
  }[];
  cgroup: { version: 1 | 2; paths: string[]; writes: { file: string; value: string }[]; notes: string[]; membership: string[] };
  capabilities: string[];
  capabilitySets: { bounding: string[]; effective: string[]; permitted: string[]; noNewPrivileges: boolean };
  user: { uid: number; gid: number; groups: number[] };
  hostname: string;
  cwd: string;
  exec: { path: string; argv: string[] } | null;
  steps: string[];
  trace: { kind: string; text: string; source: SourceRef }[];
}
export interface XContainer {
  id: string;
  name: string;
  image: string;
  imageId: string;
  created: string;
  state: { status: string; running: boolean; pid: number; exitCode: number; startedAt: string; oomKilled: boolean };
  recipe: Recipe | null;
  live: Live | null;
  layers: { dir: string; diffId: string | null }[];
  upper: { dir: string; changes: { path: string; kind: "changed" | "added" | "deleted" }[]; total: number } | null;
  volumes: { type: string; name?: string; source: string; destination: string; rw: boolean }[];
  ports: { container: string; hostIp: string; hostPort: string }[];
  networks: { name: string; ip: string; gateway: string; mac: string }[];
}
export interface XView {
  seq: number;
  engine: { pid: number; namespaces: { type: string; inode: number }[] };
  containers: XContainer[];
}
export interface ViewMsg {
  labId: string;
  view: XView;
  links: Record<string, SourceLink>;
}
export interface LiveMsg {
  labId: string;
  seq: number;
  containers: Record<string, { live: Live | null; upper: XContainer["upper"]; state: XContainer["state"] }>;
}
export interface StatusMsg {
  labId: string;
  state: string;
  message: string;
}
export interface Excerpt {
  path: string;
  first: number;
  lines: string[];
  from: number;
  to: number;
}

/** The key the orchestrator files a source link under (xray-hub.ts sourceKey). */
export const sourceKey = (ref: SourceRef) => `${ref.file}#${ref.line ?? ref.find ?? ""}`;
