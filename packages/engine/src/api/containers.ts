/**
 * /containers/... and /exec/...: the endpoints `docker run`, `ps`, `logs`, `exec` and friends call.
 * Shapes follow the Docker Engine API; the comments say where the CLI is picky.
 */
import { PassThrough } from "node:stream";
import { statusText, type ContainerRecord } from "../containers/container";
import { ContainerService, matchesLabels, type Container } from "../containers/service";
import { statsSample, type StatsSample } from "../containers/stats";
import { EngineError } from "../errors";
import type { ImageStore } from "../images/store";
import { packTree } from "../tar/writer";
import { publicMounts } from "../volumes/mounts";
import type { StreamName } from "../logs/json-file";
import type { NetworkManager } from "../network/manager";
import type { SnapshotView } from "../snapshots/snapshotter";
import { boolParam, hijack, parseFilters, readJson, send, sendJson, startStream, versionAtLeast, type Ctx, type Router } from "./http";

const RAW = "application/vnd.docker.raw-stream";
const MULTIPLEXED = "application/vnd.docker.multiplexed-stream";

/** Without a tty, each chunk gets an 8-byte header: stream (1 stdout, 2 stderr), 0, 0, 0, length. */
export function frame(stream: StreamName | "system", chunk: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream === "stdout" ? 1 : stream === "stderr" ? 2 : 3;
  header.writeUInt32BE(chunk.length, 4);
  return Buffer.concat([header, chunk]);
}

function streamType(ctx: Ctx, tty: boolean): string {
  return !tty && versionAtLeast(ctx, "1.42") ? MULTIPLEXED : RAW;
}

/** "ctrl-p,ctrl-q" -> [0x10, 0x11]; Docker's default detach sequence. */
export function parseDetachKeys(spec: string | null): number[] {
  if (!spec) return [0x10, 0x11];
  return spec.split(",").map((k) => {
    const m = /^ctrl-(.)$/i.exec(k.trim());
    if (m) {
      const ch = m[1]!.toLowerCase();
      if (ch >= "a" && ch <= "z") return ch.charCodeAt(0) - 96;
      return { "@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, _: 31 }[ch] ?? ch.charCodeAt(0);
    }
    if (k.length !== 1) throw new EngineError(400, `Unknown character: '${k}'`);
    return k.charCodeAt(0);
  });
}

export function containerRoutes(router: Router, svc: ContainerService, images: ImageStore): void {
  const find = (ctx: Ctx) => svc.find(ctx.params[0]!);

  router.on("POST", "/containers/create", async (ctx) => {
    const body = await readJson(ctx);
    const c = svc.create({ name: ctx.query.get("name") ?? undefined, body });
    sendJson(ctx, 201, { Id: c.id, Warnings: [] });
  });

  router.on("GET", "/containers/json", (ctx) => {
    const filters = parseFilters(ctx);
    const all = boolParam(ctx, "all");
    const limit = Number(ctx.query.get("limit") ?? 0) || 0;
    const before = svc.list();
    let list = before.filter((c) => all || limit > 0 || c.record.State.Running || (filters.status ?? []).some((s) => s !== "running"));
    list = list.filter((c) => matchesFilters(c, filters));
    if (limit > 0) list = list.slice(0, limit);
    const withSize = boolParam(ctx, "size");
    sendJson(ctx, 200, list.map((c) => ({ ...summary(c, images, svc.network), ...(withSize ? svc.sizes(c) : {}) })));
  });

  router.on("GET", "/containers/:id/json", (ctx) => {
    const c = find(ctx);
    sendJson(ctx, 200, { ...inspect(c, svc.network, svc.snapshots.view(c.id)), ...(boolParam(ctx, "size") ? svc.sizes(c) : {}) });
  });

  router.on("POST", "/containers/:id/start", async (ctx) => {
    const c = find(ctx);
    if (c.running) return send(ctx, 304);
    try {
      await svc.start(c);
    } catch (e) {
      if (c.record.HostConfig.AutoRemove && !c.running) await svc.removeAsync(c, { force: true }).catch(() => {});
      throw e;
    }
    send(ctx, 204);
  });

  // The CLI sends wait before start and blocks on it: headers must leave at once.
  router.on("POST", "/containers/:id/wait", async (ctx) => {
    const c = find(ctx);
    const condition = ctx.query.get("condition") || "not-running";
    if (!["not-running", "next-exit", "removed"].includes(condition)) throw new EngineError(400, `invalid condition: "${condition}"`);
    const res = startStream(ctx, "application/json");
    const code = await svc.wait(c, condition);
    res.end(`${JSON.stringify({ Error: null, StatusCode: code })}\n`);
  });

  router.on("POST", "/containers/:id/attach", (ctx) => attach(ctx, find(ctx)));

  router.on("GET", "/containers/:id/logs", (ctx) => logs(ctx, find(ctx)));

  router.on("POST", "/containers/:id/kill", (ctx) => {
    let c: Container;
    try {
      c = find(ctx);
    } catch (e) {
      throw new EngineError(404, `Cannot kill container: ${ctx.params[0]}: ${(e as Error).message}`);
    }
    svc.kill(c, ctx.query.get("signal") || undefined);
    send(ctx, 204);
  });

  router.on("POST", "/containers/:id/stop", async (ctx) => {
    const t = ctx.query.get("t");
    const stopped = await svc.stop(find(ctx), t === null || t === "" ? undefined : Number(t), ctx.query.get("signal") || undefined);
    send(ctx, stopped ? 204 : 304);
  });

  router.on("POST", "/containers/:id/restart", async (ctx) => {
    const t = ctx.query.get("t");
    await svc.restart(find(ctx), t === null || t === "" ? undefined : Number(t));
    send(ctx, 204);
  });

  router.on("DELETE", "/containers/:id", async (ctx) => {
    await svc.removeAsync(find(ctx), { force: boolParam(ctx, "force"), volumes: boolParam(ctx, "v") });
    send(ctx, 204);
  });

  router.on("POST", "/containers/:id/pause", (ctx) => {
    svc.pause(find(ctx), true);
    send(ctx, 204);
  });
  router.on("POST", "/containers/:id/unpause", (ctx) => {
    svc.pause(find(ctx), false);
    send(ctx, 204);
  });

  router.on("POST", "/containers/:id/rename", (ctx) => {
    const name = ctx.query.get("name");
    if (!name) throw new EngineError(400, "name is required");
    svc.rename(find(ctx), name);
    send(ctx, 204);
  });

  router.on("POST", "/containers/:id/resize", (ctx) => {
    const c = find(ctx);
    svc.resize(c, Number(ctx.query.get("h") ?? 0), Number(ctx.query.get("w") ?? 0));
    send(ctx, 200);
  });

  router.on("GET", "/containers/:id/top", (ctx) => sendJson(ctx, 200, svc.top(find(ctx), ctx.query.get("ps_args") || "-ef")));

  router.on("GET", "/containers/:id/changes", (ctx) => {
    const list = svc.changes(find(ctx));
    sendJson(ctx, 200, list.length ? list : null);
  });

  router.on("GET", "/containers/:id/export", (ctx) => {
    const c = find(ctx);
    const root = svc.rootfs(c);
    const res = startStream(ctx, "application/x-tar");
    // The engine's own tar writer (../tar/writer.ts): numeric owners, xattrs, hard links kept.
    const tar = packTree({ source: root, name: "." });
    tar.on("error", (e) => res.destroy(e));
    tar.pipe(res);
    res.on("close", () => tar.destroy());
  });

  router.on("POST", "/containers/prune", async (ctx) => sendJson(ctx, 200, await svc.prune(parseFilters(ctx))));

  // docker stats: figures from the container's cgroup. Streamed once a second; without streaming
  // two samples a second apart (as dockerd), so CPU % has a "before"; one-shot: a single sample.
  router.on("GET", "/containers/:id/stats", async (ctx) => {
    const c = find(ctx);
    const stream = ctx.query.get("stream") === null ? true : boolParam(ctx, "stream");
    if (!stream) {
      let sample = statsSample(c);
      if (!boolParam(ctx, "one-shot") && c.running) {
        await new Promise((r) => setTimeout(r, 1000));
        sample = statsSample(c, sample);
      }
      return sendJson(ctx, 200, sample);
    }
    const res = startStream(ctx, "application/json");
    let previous: StatsSample | undefined;
    const tick = () => {
      previous = statsSample(c, previous);
      res.write(`${JSON.stringify(previous)}\n`);
    };
    tick();
    const timer = setInterval(tick, 1000);
    res.on("close", () => clearInterval(timer));
  });

  router.on("POST", "/containers/:id/update", async (ctx) => {
    const c = find(ctx);
    svc.update(c, await readJson(ctx));
    sendJson(ctx, 200, { Warnings: [] });
  });

  // The X-ray panel: what the engine did to make this container.
  router.on("GET", "/berth/containers/:id/recipe", (ctx) => {
    const c = find(ctx);
    sendJson(ctx, 200, { Id: c.id, Name: c.record.Name, State: c.record.State, ...(c.record.recipe ?? {}) });
  });

  // ---------- exec ----------

  router.on("POST", "/containers/:id/exec", async (ctx) => {
    const c = find(ctx);
    const body = await readJson(ctx);
    const e = svc.createExec(c, body, ctx.params[0]);
    sendJson(ctx, 201, { Id: e.ID });
  });

  router.on("POST", "/exec/:id/start", async (ctx) => {
    const e = svc.findExec(ctx.params[0]!);
    const body = await readJson(ctx);
    if (body.Tty !== undefined) e.config.Tty = !!body.Tty;
    if (Array.isArray(body.ConsoleSize)) e.config.ConsoleSize = body.ConsoleSize as [number, number];
    if (body.Detach) {
      const shim = await svc.startExec(e);
      shim.stdout.resume();
      shim.stderr.resume();
      return send(ctx, 200);
    }
    const shim = await svc.startExec(e);
    const tty = e.config.Tty;
    const sock = hijack(ctx, streamType(ctx, tty));
    const write = (stream: StreamName, b: Buffer) => {
      if (sock.writable) sock.write(tty ? b : frame(stream, b));
    };
    shim.stdout.on("data", (b: Buffer) => e.config.AttachStdout && write("stdout", b));
    shim.stderr.on("data", (b: Buffer) => e.config.AttachStderr && write("stderr", b));
    if (e.config.AttachStdin && shim.stdin) {
      const stdin = shim.stdin;
      stdin.on("error", () => {});
      if (ctx.head?.length) stdin.write(ctx.head);
      sock.on("data", (b: Buffer) => stdin.writable && stdin.write(b));
      sock.on("end", () => stdin.end()); // the client is done sending: end-of-file for the process
    }
    // The CLI reads /exec/{id}/json after the stream ends: the exit code must be there by then.
    if (e.startError) {
      write("stdout", Buffer.from(e.startError));
      finish(sock);
    } else if (!e.Running) finish(sock);
    else shim.once("exit", () => finish(sock));
    sock.on("close", () => {
      if (e.Running && !tty) {
        /* the client went away; the process carries on, as in Docker */
      }
    });
  });

  router.on("POST", "/exec/:id/resize", (ctx) => {
    const e = svc.findExec(ctx.params[0]!);
    e.shim?.resize(Number(ctx.query.get("h") ?? 0), Number(ctx.query.get("w") ?? 0));
    send(ctx, 200);
  });

  router.on("GET", "/exec/:id/json", (ctx) => {
    const e = svc.findExec(ctx.params[0]!);
    sendJson(ctx, 200, {
      ID: e.ID,
      Running: e.Running,
      ExitCode: e.ExitCode,
      ProcessConfig: { tty: e.config.Tty, entrypoint: e.config.Cmd[0], arguments: e.config.Cmd.slice(1), privileged: e.config.Privileged, user: e.config.User },
      OpenStdin: e.config.AttachStdin,
      OpenStderr: e.config.AttachStderr,
      OpenStdout: e.config.AttachStdout,
      CanRemove: false,
      ContainerID: e.container.id,
      DetachKeys: "",
      Pid: e.Pid,
    });
  });

  // ---------- attach and logs ----------

  function attach(ctx: Ctx, c: Container): void {
    svc.attached(c);
    const tty = c.record.Config.Tty;
    const want = { stdin: boolParam(ctx, "stdin"), stdout: boolParam(ctx, "stdout"), stderr: boolParam(ctx, "stderr") };
    const detachKeys = parseDetachKeys(ctx.query.get("detachKeys"));
    const sock = hijack(ctx, streamType(ctx, tty));
    const write = (stream: StreamName, b: Buffer) => {
      if (sock.writable) sock.write(tty ? b : frame(stream, b));
    };
    if (boolParam(ctx, "logs")) for (const e of c.log.read()) if (want[e.stream]) write(e.stream, e.log);
    if (!boolParam(ctx, "stream")) {
      finish(sock);
      return;
    }
    // A stopped container keeps the stream open for its next start (docker start -a attaches first).
    const listener = (stream: StreamName, b: Buffer) => want[stream] && write(stream, b);
    c.listeners_.add(listener);
    const done = () => {
      c.listeners_.delete(listener);
      c.off("exit", onExit);
    };
    const onExit = () => {
      done();
      finish(sock);
    };
    c.on("exit", onExit);
    sock.on("close", done);
    if (want.stdin && c.record.Config.OpenStdin) {
      let matched = 0;
      const feed = (b: Buffer) => {
        // With a tty the engine watches for the detach keys (^P^Q): they end the attach, not the container.
        if (tty) {
          for (let i = 0; i < b.length; i++) {
            if (b[i] === detachKeys[matched]) {
              matched++;
              if (matched === detachKeys.length) {
                const before = b.subarray(0, Math.max(0, i + 1 - matched));
                if (before.length) stdinOf(c).write(before);
                done();
                finish(sock);
                return;
              }
            } else matched = b[i] === detachKeys[0] ? 1 : 0;
          }
        }
        stdinOf(c).write(b);
      };
      if (ctx.head?.length) feed(ctx.head);
      sock.on("data", feed);
      // Half-close: the client has no more input. Only then, and only for StdinOnce without a tty,
      // does the container's stdin close; the socket itself stays open for output.
      sock.on("end", () => {
        if (c.record.Config.StdinOnce && !tty) stdinOf(c).end();
      });
    } else {
      sock.on("data", () => {});
    }
  }

  function logs(ctx: Ctx, c: Container): void {
    const want = { stdout: boolParam(ctx, "stdout"), stderr: boolParam(ctx, "stderr") };
    if (!want.stdout && !want.stderr) throw new EngineError(400, "Bad parameters: you must choose at least one stream");
    const tty = c.record.Config.Tty;
    const timestamps = boolParam(ctx, "timestamps");
    const tail = ctx.query.get("tail");
    // --since/--until to the nanosecond (the CLI sends seconds.nanoseconds; a float would round).
    const since = unixNanos(ctx.query.get("since"));
    const until = unixNanos(ctx.query.get("until"));
    const res = startStream(ctx, streamType(ctx, tty));
    const write = (e: { stream: StreamName; log: Buffer; time: string }) => {
      if (!want[e.stream]) return;
      const t = rfc3339Nanos(e.time);
      if (since && t < since) return;
      if (until && t > until) return;
      const line = timestamps ? Buffer.concat([Buffer.from(`${e.time} `), e.log]) : e.log;
      res.write(tty ? line : frame(e.stream, line));
    };
    let entries = c.log.read().filter((e) => want[e.stream]);
    if (tail && tail !== "all" && Number(tail) >= 0) entries = Number(tail) === 0 ? [] : entries.slice(-Number(tail));
    for (const e of entries) write(e);
    if (!boolParam(ctx, "follow") || !c.running) {
      res.end();
      return;
    }
    const onEntry = (e: { stream: StreamName; log: Buffer; time: string }) => write(e);
    const stop = () => {
      c.log.off("entry", onEntry);
      c.off("exit", onExit);
    };
    const onExit = () => {
      stop();
      res.end();
    };
    c.log.on("entry", onEntry);
    c.once("exit", onExit);
    res.on("close", stop);
  }
}

/** "1700000000.5" (seconds, optional fraction) -> ns as a bigint; 0n when absent. */
function unixNanos(s: string | null): bigint {
  const m = /^(\d+)(?:\.(\d{1,9}))?$/.exec(s ?? "");
  if (!m) {
    if (s) throw new EngineError(400, `invalid time: ${s}`);
    return 0n;
  }
  return BigInt(m[1]!) * 1_000_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
}

/** A log entry's RFC 3339 time with up to nine fraction digits -> ns since the epoch. */
function rfc3339Nanos(t: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(t);
  if (!m) return BigInt(Date.parse(t)) * 1_000_000n;
  return BigInt(Date.parse(`${m[1]}Z`)) * 1_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
}

/** End our side of a hijacked stream; drop the connection if the client never closes its side. */
function finish(sock: import("node:stream").Duplex): void {
  sock.end();
  setTimeout(() => sock.destroy(), 5000).unref();
}

function stdinOf(c: Container): PassThrough {
  // Attach comes before start: hold the bytes until start() connects this to the process.
  c.stdin ??= new PassThrough();
  return c.stdin;
}

// ---------- shapes ----------

/** `docker ps` lists the command with single quotes around arguments that hold spaces. */
function commandLine(r: ContainerRecord): string {
  if (!r.Args.length) return r.Path;
  return `${r.Path} ${r.Args.map((a) => (a.includes(" ") ? `'${a}'` : a)).join(" ")}`;
}

function summary(c: Container, images: ImageStore, net: NetworkManager) {
  const r = c.record;
  return {
    Id: r.Id,
    Names: [r.Name],
    Image: r.Config.Image || images.get(r.Image)?.tags[0] || r.Image,
    ImageID: r.Image,
    Command: commandLine(r),
    Created: Math.floor(Date.parse(r.Created) / 1000),
    Ports: net.ports(c.id),
    Labels: r.Config.Labels,
    State: r.State.Status,
    Status: statusText(r.State),
    HostConfig: { NetworkMode: r.HostConfig.NetworkMode },
    NetworkSettings: { Networks: (net.settings(c.id, c.running, r.State.Pid) as { Networks: object }).Networks },
    Mounts: publicMounts(r.Mounts),
  };
}

/** `docker inspect`: the record, GraphDriver as the snapshotter shows its snapshot, mounts, network. */
export function inspect(c: Container, net: NetworkManager, snapshot: SnapshotView) {
  const { recipe, manuallyStopped, shimPid, ...r } = c.record;
  return {
    ...r,
    GraphDriver: { Name: snapshot.driver, Data: snapshot.data },
    Mounts: publicMounts(r.Mounts),
    NetworkSettings: net.settings(c.id, c.running, r.State.Pid),
  };
}

function matchesFilters(c: Container, f: Record<string, string[]>): boolean {
  const r = c.record;
  if (f.label && !matchesLabels(c, f.label)) return false;
  if (f.status && !f.status.includes(r.State.Status)) return false;
  if (f.name && !f.name.some((n) => new RegExp(n).test(c.name))) return false;
  if (f.id && !f.id.some((i) => r.Id.startsWith(i))) return false;
  if (f.health && !f.health.includes(r.State.Health?.Status ?? "none")) return false;
  if (f.exited && (r.State.Running || !f.exited.map(Number).includes(r.State.ExitCode))) return false;
  if (f.ancestor && !f.ancestor.some((a) => a === r.Config.Image || r.Image.includes(a))) return false;
  // volume=: a volume name, a bind's host path, or a mount's destination, as dockerd matches it.
  if (f.volume && !f.volume.some((v) => publicMounts(r.Mounts).some((m) => v === (m.Name || m.Source) || v === m.Destination))) return false;
  return true;
}
