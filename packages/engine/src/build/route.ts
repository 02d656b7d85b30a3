/**
 * POST /build: the context tar is read in full (to a file: it may be large), unpacked with the
 * checks of ./context.ts, and built; the output leaves as Docker's JSON lines.
 *
 * Like dockerd, the response only becomes a 200 stream at the first line of output: anything that
 * fails before (a bad context, a parse error, a missing Dockerfile or target) is an ordinary
 * `400 {"message": ...}`, which the CLI prints as `Error response from daemon: ...`.
 */
import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { EngineError } from "../errors";
import type { ImageStore } from "../images/store";
import { boolParam, startStream, type Ctx } from "../api/http";
import { BuildError, type Builder } from "./builder";
import { unpackContext } from "./context";
import { DockerfileParseError } from "./parser";
import { UnsafeArchiveError } from "../tar/format";

export async function handleBuild(ctx: Ctx, builder: Builder, images: ImageStore): Promise<void> {
  const work = path.join(images.root, "tmp", `build-${Date.now()}-${Math.random().toString(16).slice(2)}`);
  const context = path.join(work, "context");
  const upload = path.join(work, "context.tar");
  fs.mkdirSync(context, { recursive: true });
  try {
    await pipeline(ctx.req, fs.createWriteStream(upload));
    try {
      await unpackContext(upload, context);
    } catch (e) {
      throw new EngineError(400, e instanceof UnsafeArchiveError ? (e as Error).message : `invalid build context: ${(e as Error).message}`);
    }
    fs.rmSync(upload);
    const json = <T>(k: string, fallback: T): T => {
      const raw = ctx.query.get(k);
      if (!raw) return fallback;
      try {
        return JSON.parse(raw) as T;
      } catch {
        throw new EngineError(400, `invalid ${k} parameter: not JSON`);
      }
    };
    const quiet = boolParam(ctx, "q");
    let res: ReturnType<typeof startStream> | undefined;
    const write = (o: object) => {
      res ??= startStream(ctx, "application/json");
      if (!res.destroyed && !res.writableEnded) res.write(`${JSON.stringify(o)}\n`); // the client may be gone (Ctrl-C)
    };
    const cancel = new AbortController();
    ctx.res?.on("close", () => {
      if (!ctx.res!.writableFinished) cancel.abort();
    });
    const tags = ctx.query.getAll("t").filter(Boolean);
    for (const t of tags) {
      if (!/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?::\d+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?$/.test(t.replace(/^[a-zA-Z0-9.-]+(?::\d+)?\//, (h) => h.toLowerCase()))) {
        throw new EngineError(400, `invalid reference format: repository name must be lowercase (${t})`);
      }
    }
    try {
      const id = await builder.build(
        {
          context,
          dockerfile: ctx.query.get("dockerfile") || "Dockerfile",
          tags,
          buildArgs: json<Record<string, string | null>>("buildargs", {}),
          labels: json<Record<string, string>>("labels", {}),
          noCache: boolParam(ctx, "nocache"),
          target: ctx.query.get("target") || undefined,
          networkMode: ctx.query.get("networkmode") || undefined,
          rm: ctx.query.get("rm") === null ? true : boolParam(ctx, "rm"),
          forceRm: boolParam(ctx, "forcerm"),
          signal: cancel.signal,
        },
        { say: (text) => (quiet ? undefined : write({ stream: text })), aux: (id) => write({ aux: { ID: id } }) },
      );
      if (quiet) write({ stream: `${id}\n` });
      res ??= startStream(ctx, "application/json");
      res.end();
    } catch (e) {
      if (res?.destroyed) return; // cancelled: nobody to tell
      const message = (e as Error).message;
      if (!res) {
        if (e instanceof BuildError || e instanceof DockerfileParseError || e instanceof EngineError) throw e instanceof EngineError ? e : new EngineError(400, message);
        throw e;
      }
      res.end(`${JSON.stringify({ errorDetail: { code: e instanceof BuildError ? e.code : 1, message }, error: message })}\n`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
