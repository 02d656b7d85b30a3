/**
 * `docker events`: what happened to containers (and images, networks, volumes), as dockerd tells
 * it. Every event is published here ("event" on this emitter, for live streams and the X-ray
 * panel) and the most recent ones are kept in memory, so `--since` can replay the past and
 * `--until` can end a stream. Filters: type, event (action), container, image, label, network,
 * volume (others are ignored, as dockerd ignores them).
 */
import { EventEmitter } from "node:events";
import { EngineError } from "../errors";

export interface DockerEvent {
  status?: string;
  id?: string;
  from?: string;
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: "local";
  time: number;
  timeNano: number;
}

/** How many past events are kept for --since (dockerd keeps a bounded buffer too). */
const KEPT = 1024;

export class EventLog extends EventEmitter {
  private readonly recent: DockerEvent[] = [];
  private lastNano = 0;

  constructor() {
    super();
    this.setMaxListeners(0);
  }

  publish(type: string, action: string, id: string, attributes: Record<string, string>, from?: string): DockerEvent {
    // Nanoseconds from a millisecond clock: kept strictly increasing, so order survives a replay.
    this.lastNano = Math.max(Date.now() * 1e6, this.lastNano + 1);
    const e: DockerEvent = {
      ...(type === "container" ? { status: action, id, from: from ?? attributes.image ?? "" } : {}),
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: "local",
      time: Math.floor(this.lastNano / 1e9),
      timeNano: this.lastNano,
    };
    this.recent.push(e);
    if (this.recent.length > KEPT) this.recent.splice(0, this.recent.length - KEPT);
    this.emit("event", e);
    return e;
  }

  /** Kept events at or after `sinceNano` (and not after `untilNano`, if given). */
  past(sinceNano: number, untilNano?: number): DockerEvent[] {
    return this.recent.filter((e) => e.timeNano >= sinceNano && (untilNano === undefined || e.timeNano <= untilNano));
  }
}

/** `since`/`until` as the API carries them: Unix seconds, with an optional fraction ("1700000000.5"). */
export function eventTime(s: string | null, name: string): number | undefined {
  if (s === null || s === "") return undefined;
  const m = /^(\d+)(?:\.(\d{1,9}))?$/.exec(s);
  if (!m) throw new EngineError(400, `invalid value for ${name}: ${s}`);
  return Number(m[1]) * 1e9 + Number((m[2] ?? "").padEnd(9, "0"));
}

/** dockerd's event filters: values of one key are alternatives, different keys must all match. */
export function eventMatches(e: DockerEvent, filters: Record<string, string[]>): boolean {
  const attrs = e.Actor.Attributes;
  const any = (key: string, test: (v: string) => boolean) => !filters[key]?.length || filters[key]!.some(test);
  return (
    any("type", (v) => v === e.Type) &&
    any("event", (v) => v === e.Action || v === e.Action.split(":")[0]) &&
    any("container", (v) => e.Type === "container" && (e.Actor.ID.startsWith(v) || attrs.name === v)) &&
    any("image", (v) => attrs.image === v || (e.Type === "image" && (e.Actor.ID === v || attrs.name === v))) &&
    any("label", (v) => {
      const [k, ...rest] = v.split("=");
      return rest.length ? attrs[k!] === rest.join("=") : k! in attrs;
    }) &&
    any("network", (v) => e.Type === "network" && (e.Actor.ID.startsWith(v) || attrs.name === v)) &&
    any("volume", (v) => e.Type === "volume" && e.Actor.ID === v) &&
    any("scope", (v) => v === "local")
  );
}

/**
 * GET /events: the kept events from `since`, then live ones, until `until` (or the client leaves).
 * Headers go out at once: the CLI waits for them before it prints anything.
 */
export function streamEvents(log: EventLog, res: import("node:http").ServerResponse, opts: { since?: number; until?: number; filters: Record<string, string[]> }): void {
  const write = (e: DockerEvent) => {
    if (eventMatches(e, opts.filters) && res.writable) res.write(`${JSON.stringify(e)}\n`);
  };
  const now = Date.now() * 1e6;
  // Either bound asks for the kept past (all of it without --since), as dockerd's buffer does.
  if (opts.since !== undefined || opts.until !== undefined) for (const e of log.past(opts.since ?? 0, opts.until)) write(e);
  if (opts.until !== undefined && opts.until <= now) {
    res.end();
    return;
  }
  const live = (e: DockerEvent) => write(e);
  log.on("event", live);
  const timer = opts.until !== undefined ? setTimeout(() => res.end(), (opts.until - now) / 1e6) : undefined;
  timer?.unref();
  res.on("close", () => {
    log.off("event", live);
    clearTimeout(timer);
  });
}
