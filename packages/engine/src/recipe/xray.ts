/**
 * The X-ray view of the engine's containers, served on the engine's socket beside the Docker API
 * (Berth's own paths under /berth/, so the Docker API itself is unchanged):
 *
 *   GET /berth/xray?since=SEQ&wait=MS
 *     Answers at once if anything happened to a container since SEQ (created, started, died,
 *     removed ...), else when the next thing happens, else after MS (at most 25 s). So a caller
 *     that keeps one request open hears of a `docker run` as soon as it starts, and gets fresh
 *     figures at least every MS. The answer: { seq, engine: { pid, namespaces }, containers: [...] }
 *     with, per container, its recipe, its cgroup's live figures, its layers, the upper dir's
 *     added/changed/deleted files (the first DIFF_CAP), volumes, ports and networks.
 */
import type { XrayContainer, XrayView } from "@berth/protocol";
import fs from "node:fs";
import type { Ctx, Router } from "../api/http";
import { sendJson } from "../api/http";
import type { Container } from "../containers/container";
import type { ContainerService } from "../containers/service";
import { readLiveFigures } from "./live";
import type { Recipe } from "./recipe";

export const DIFF_CAP = 200;
const MAX_WAIT_MS = 25_000;
const MAX_CONTAINERS = 50;
const NAMESPACE_TYPES = ["pid", "mnt", "uts", "ipc", "net", "cgroup", "user"];

/** The engine's own namespaces: in a sandbox, the sandbox's. */
export function ownNamespaces(): { type: string; inode: number }[] {
  const out: { type: string; inode: number }[] = [];
  for (const type of NAMESPACE_TYPES) {
    try {
      out.push({ type, inode: fs.statSync(`/proc/self/ns/${type}`).ino });
    } catch {
      /* not on this kernel */
    }
  }
  return out;
}

const KIND = ["changed", "added", "deleted"] as const;
/**
 * The upper dir is walked (and each entry looked up in the layers below) at most this often per
 * container between events: a container that installed thousands of files would otherwise cost
 * that walk every second someone watches.
 */
const UPPER_EVERY_MS = 3000;
/** The protocol's field for the writable layer: its directory and its changes. */
type WritableLayer = XrayContainer["upper"];
const upperCache = new WeakMap<Container, { at: number; seq: number; value: WritableLayer }>();

/** The writable layer's changes, from the snapshotter (its diff, and where its view says the layer is). */
function upperOf(service: ContainerService, c: Container, seq: number): WritableLayer {
  const cached = upperCache.get(c);
  if (cached && cached.seq === seq && Date.now() - cached.at < UPPER_EVERY_MS) return cached.value;
  let value: WritableLayer = null;
  try {
    const all = service.snapshots.diff(c.id);
    value = { dir: service.snapshots.view(c.id).upper, changes: all.slice(0, DIFF_CAP).map((x) => ({ path: x.Path, kind: KIND[x.Kind] })), total: all.length };
  } catch {
    /* no snapshot any more (removed meanwhile) */
  }
  upperCache.set(c, { at: Date.now(), seq, value });
  return value;
}

function viewOf(service: ContainerService, c: Container, seq: number): XrayContainer {
  const r = c.record;
  const recipe = (r.recipe as Recipe | undefined) ?? null;
  const full = recipe && Array.isArray((recipe as Partial<Recipe>).trace) ? recipe : null; // older records: no reports
  const upper = upperOf(service, c, seq);
  let net: Record<string, unknown> = {};
  try {
    net = service.network.settings(c.id, c.running, r.State.Pid);
  } catch {
    /* no network state */
  }
  const ports: XrayContainer["ports"] = [];
  for (const [port, binds] of Object.entries((net.Ports ?? {}) as Record<string, { HostIp: string; HostPort: string }[] | null>)) {
    for (const b of binds ?? []) ports.push({ container: port, hostIp: b.HostIp, hostPort: b.HostPort });
  }
  const networks = Object.entries((net.Networks ?? {}) as Record<string, { IPAddress?: string; Gateway?: string; MacAddress?: string }>).map(([name, n]) => ({
    name,
    ip: n.IPAddress ?? "",
    gateway: n.Gateway ?? "",
    mac: n.MacAddress ?? "",
  }));
  return {
    id: c.id,
    name: r.Name.replace(/^\//, ""),
    image: r.Config.Image,
    imageId: r.Image,
    created: r.Created,
    state: { status: r.State.Status, running: r.State.Running, pid: r.State.Pid, exitCode: r.State.ExitCode, startedAt: r.State.StartedAt, oomKilled: r.State.OOMKilled },
    recipe: full,
    live: full && c.running ? readLiveFigures(full.cgroup.version, full.cgroup.paths) : null,
    layers: layersOf(service, c),
    upper,
    volumes: (r.Mounts ?? []).map((m) => ({ type: m.Type, ...(m.Name ? { name: m.Name } : {}), source: m.Source, destination: m.Destination, rw: m.RW })),
    ports,
    networks,
  };
}

/** The read-only layers, topmost first, with their diff ids (the init layer has none). */
function layersOf(service: ContainerService, c: Container): XrayContainer["layers"] {
  try {
    return service.snapshots.view(c.id).layers;
  } catch {
    return []; // removed meanwhile
  }
}

/** Counts what happens to containers, and wakes the requests waiting for it. */
export class XrayChanges {
  seq = 1;
  private waiters = new Set<() => void>();

  constructor(service: ContainerService) {
    service.events.on("event", () => {
      this.seq++;
      for (const w of [...this.waiters]) w();
    });
  }

  /** Resolves once seq passes `since`, or after `ms`. */
  wait(since: number, ms: number, signal?: AbortSignal): Promise<void> {
    if (this.seq > since || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref(); // a waiting request never keeps a closing engine alive
      this.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}

export function xrayView(service: ContainerService, seq: number): XrayView {
  const containers = service
    .list()
    .sort((a, b) => (a.record.Created < b.record.Created ? 1 : -1))
    .slice(0, MAX_CONTAINERS)
    .map((c) => viewOf(service, c, seq));
  return { seq, engine: { pid: process.pid, namespaces: ownNamespaces() }, containers };
}

export function xrayRoutes(router: Router, service: ContainerService): void {
  const changes = new XrayChanges(service);
  router.on("GET", "/berth/xray", async (ctx: Ctx) => {
    const since = Number(ctx.query.get("since") ?? 0);
    const wait = Math.min(MAX_WAIT_MS, Math.max(0, Number(ctx.query.get("wait") ?? 0)));
    if (!Number.isFinite(since) || !Number.isFinite(wait)) return sendJson(ctx, 400, { message: "since and wait must be numbers" });
    const gone = new AbortController();
    // The caller gave up (curl's --max-time, a closed socket): stop waiting for it.
    ctx.res?.once("close", () => gone.abort());
    await changes.wait(since, wait, gone.signal);
    if (gone.signal.aborted) return;
    sendJson(ctx, 200, xrayView(service, changes.seq));
  });
}
