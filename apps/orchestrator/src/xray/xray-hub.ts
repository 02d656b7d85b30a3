// The X-ray feed: a learner's own containers, as the engine in their sandbox recorded and sees
// them, pushed to their browser over socket.io.
//
//   browser → xray:watch {labId}            (ack {ok, chapters} | {ok:false, error})
//   browser → xray:unwatch {labId}
//   browser → xray:source {path, from, to}   (ack {ok, excerpt}): the engine's code behind a step
//   server  → xray:view {labId, view, links} when a container appears, starts, stops, goes
//   server  → xray:live {labId, at, containers: {id → live figures, upper dir, state}} otherwise
//   server  → xray:status {labId, state, message} while there is no answer (no sandbox, engine down)
//
// Who sees what: the feed is keyed by the socket's signed-in user and the lab; the sandbox is
// looked up as that user's (SandboxManager.find), so no request can name another learner's. The
// engine is asked through the sandbox's agent (its exec op runs curl on the engine's socket with a
// long poll, packages/engine/src/recipe/xray.ts): one request is open per watched sandbox, and it
// returns as soon as a container changes, or after POLL_MS with fresh figures. Everything the
// engine answers is checked (ViewSchema, @berth/protocol) before it is forwarded: the learner is root there.
import { ViewSchema, xraySourceKey, type XrayLiveMsg, type XrayStatusMsg, type XrayView, type XrayViewMsg } from "@berth/protocol";
import type { Logger } from "pino";
import { z } from "zod";
import type { LabCatalog } from "../labs/catalog.js";
import type { LearnerSandbox, SandboxManager } from "../sandboxes/sandbox-manager.js";
import { availableChapters } from "./chapters.js";
import { EngineSources, SECTION_SOURCES, type SourceLink } from "./sources.js";

const LabRef = z.object({ labId: z.string().min(1).max(100) });
const SourceRequest = z.object({ path: z.string().max(256), from: z.number().int().min(1), to: z.number().int().min(1) });
/** The engine answers at the latest after this long: the period of the live figures. */
export const POLL_MS = 1000;
const ENGINE_SOCKET = "/var/run/docker.sock";
const MAX_VIEW_BYTES = 8 * 1024 * 1024;

type Ack = (reply: unknown) => void;
/** The part of a socket.io socket the hub uses (the gateway's sockets are typed for its own events). */
export interface XraySocket {
  id: string;
  on(event: string, listener: (raw: unknown, reply?: Ack) => void): unknown;
  emit(event: string, msg: unknown): unknown;
}
type Emit = (event: string, msg: unknown) => void;

interface Feed {
  userId: string;
  labId: string;
  viewers: Map<string, Emit>;
  /** Viewers that have had the current view (newcomers get it at the next answer). */
  upToDate: Set<string>;
  seq: number;
  last: XrayView | null;
  lastStatus: string;
  running: boolean;
  timer?: NodeJS.Timeout;
  wake?: () => void;
}

export class XrayHub {
  private readonly feeds = new Map<string, Feed>();
  private readonly sources: EngineSources;
  private disposed = false;

  constructor(
    private readonly deps: {
      sandboxes: Pick<SandboxManager, "find">;
      catalog: Pick<LabCatalog, "get">;
      log: Logger;
      sources?: EngineSources;
      pollMs?: number;
    },
  ) {
    this.sources = deps.sources ?? new EngineSources();
  }

  /** Registers the X-ray events of one signed-in socket. */
  attach(socket: XraySocket, userId: string): void {
    const mine = new Set<string>();
    const emit: Emit = (event, msg) => socket.emit(event, msg);
    socket.on("xray:watch", (raw: unknown, reply?: Ack) => {
      const ack = typeof reply === "function" ? reply : () => {};
      const parsed = LabRef.safeParse(raw);
      if (!parsed.success || !this.deps.catalog.get(parsed.data.labId)) return ack({ ok: false, error: "no such lab" });
      const key = this.watch(userId, parsed.data.labId, socket.id, emit);
      mine.add(key);
      ack({ ok: true, chapters: availableChapters((id) => !!this.deps.catalog.get(id)) });
    });
    socket.on("xray:unwatch", (raw: unknown) => {
      const parsed = LabRef.safeParse(raw);
      if (!parsed.success) return;
      const key = keyOf(userId, parsed.data.labId);
      this.unwatch(key, socket.id);
      mine.delete(key);
    });
    socket.on("xray:source", (raw: unknown, reply?: Ack) => {
      const ack = typeof reply === "function" ? reply : () => {};
      const parsed = SourceRequest.safeParse(raw);
      const excerpt = parsed.success ? this.sources.excerpt(parsed.data.path, parsed.data.from, parsed.data.to) : null;
      ack(excerpt ? { ok: true, excerpt } : { ok: false, error: "no such source" });
    });
    socket.on("disconnect", () => {
      for (const key of mine) this.unwatch(key, socket.id);
      mine.clear();
    });
  }

  private watch(userId: string, labId: string, viewer: string, emit: Emit): string {
    const key = keyOf(userId, labId);
    let feed = this.feeds.get(key);
    if (!feed) {
      feed = { userId, labId, viewers: new Map(), upToDate: new Set(), seq: 0, last: null, lastStatus: "", running: false };
      this.feeds.set(key, feed);
    }
    feed.viewers.set(viewer, emit);
    feed.upToDate.delete(viewer);
    if (feed.last) this.sendView(feed, viewer, emit);
    if (!feed.running) void this.run(feed);
    else feed.wake?.(); // a newcomer should not wait out a retry pause
    return key;
  }

  private unwatch(key: string, viewer: string): void {
    const feed = this.feeds.get(key);
    if (!feed) return;
    feed.viewers.delete(viewer);
    feed.upToDate.delete(viewer);
    if (feed.viewers.size === 0) {
      // The open request ends within POLL_MS; the loop then sees nobody and stops.
      this.feeds.delete(key);
      feed.wake?.();
    }
  }

  /** One feed's loop: a long poll at a time while anybody watches. */
  private async run(feed: Feed): Promise<void> {
    feed.running = true;
    try {
      while (!this.disposed && feed.viewers.size > 0 && this.feeds.get(keyOf(feed.userId, feed.labId)) === feed) {
        const sb = this.deps.sandboxes.find(feed.userId, feed.labId);
        if (!sb) {
          this.status(feed, "waiting", "No sandbox yet: open the terminal.");
          await this.pause(feed, POLL_MS);
          continue;
        }
        try {
          const view = await this.ask(sb, feed.seq);
          this.publish(feed, view);
        } catch (err) {
          this.status(feed, "waiting", err instanceof Error ? err.message : String(err));
          await this.pause(feed, POLL_MS);
        }
      }
    } finally {
      feed.running = false;
      if (feed.timer) clearTimeout(feed.timer);
    }
  }

  private pause(feed: Feed, ms: number): Promise<void> {
    return new Promise((resolve) => {
      feed.wake = () => {
        if (feed.timer) clearTimeout(feed.timer);
        feed.timer = undefined;
        feed.wake = undefined;
        resolve();
      };
      feed.timer = setTimeout(feed.wake, ms);
    });
  }

  /** GET /berth/xray on the engine's socket, through the agent: answers on a change or after pollMs. */
  private async ask(sb: LearnerSandbox, since: number): Promise<XrayView> {
    const wait = this.deps.pollMs ?? POLL_MS;
    const url = `http://engine/berth/xray?since=${since}&wait=${wait}`;
    const r = await sb.agent.request({
      op: "exec",
      cmd: ["curl", "-sS", "--fail-with-body", "--max-time", String(Math.ceil(wait / 1000) + 10), "--unix-socket", ENGINE_SOCKET, url],
      timeoutMs: wait + 15_000,
      maxOutputBytes: MAX_VIEW_BYTES,
    });
    const stdout = Buffer.from(r.stdout, "base64").toString("utf8");
    if (r.exitCode !== 0) {
      const why = Buffer.from(r.stderr, "base64").toString("utf8").trim().slice(0, 300);
      throw new Error(r.exitCode === 7 ? "The container engine is not answering yet." : `The container engine did not answer: ${why || `curl exited with ${r.exitCode}`}`);
    }
    if (r.truncated) throw new Error("The engine's answer was too large.");
    const parsed = ViewSchema.safeParse(JSON.parse(stdout));
    if (!parsed.success) throw new Error(`The engine's answer was not understood: ${parsed.error.issues[0]?.path.join(".")} ${parsed.error.issues[0]?.message}`);
    return parsed.data;
  }

  private publish(feed: Feed, view: XrayView): void {
    const changed = !feed.last || view.seq !== feed.seq;
    feed.last = view;
    feed.seq = view.seq;
    feed.lastStatus = "";
    if (changed) feed.upToDate.clear();
    for (const [id, emit] of feed.viewers) {
      if (!feed.upToDate.has(id)) this.sendView(feed, id, emit);
      else
        emit("xray:live", {
          labId: feed.labId,
          seq: view.seq,
          containers: Object.fromEntries(view.containers.map((c) => [c.id, { live: c.live, upper: c.upper, state: c.state }])),
        } satisfies XrayLiveMsg);
    }
  }

  private sendView(feed: Feed, id: string, emit: Emit): void {
    if (!feed.last) return;
    emit("xray:view", { labId: feed.labId, view: feed.last, links: this.linksOf(feed.last) } satisfies XrayViewMsg);
    feed.upToDate.add(id);
  }

  private status(feed: Feed, state: string, message: string): void {
    if (feed.lastStatus === message) return;
    feed.lastStatus = message;
    for (const emit of feed.viewers.values()) emit("xray:status", { labId: feed.labId, state, message } satisfies XrayStatusMsg);
  }

  /** Every source reference in a view, resolved to a repository path and line range. */
  private linksOf(view: XrayView): Record<string, SourceLink> {
    const out: Record<string, SourceLink> = {};
    for (const [name, ref] of Object.entries(SECTION_SOURCES)) {
      const link = this.sources.resolve(ref);
      if (link) out[`section:${name}`] = link;
    }
    const add = (ref: { file: string; line?: number; find?: string }) => {
      const key = xraySourceKey(ref);
      if (key in out) return;
      const link = this.sources.resolve(ref);
      if (link) out[key] = link;
    };
    for (const c of view.containers) {
      if (!c.recipe) continue;
      for (const s of c.recipe.trace) add(s.source);
      for (const m of c.recipe.mounts) add(m.sourceRef);
      for (const n of c.recipe.namespaces) add(n.source);
    }
    return out;
  }

  dispose(): void {
    this.disposed = true;
    for (const feed of this.feeds.values()) feed.wake?.();
    this.feeds.clear();
  }
}

const keyOf = (userId: string, labId: string) => `${userId}\n${labId}`;
