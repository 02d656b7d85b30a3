/**
 * docker cp, both ways: HEAD/GET /containers/{id}/archive (a tar whose root is the basename) and
 * PUT (extract a tar into a directory of the container). Every path is resolved inside the
 * container's root: symlinks are followed as the container would see them, ".." stops at "/", and a
 * tar member that would land outside the destination is refused.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import tar from "tar-stream";
import type { ContainerService } from "../containers/service";
import { EngineError } from "../containers/service";
import { boolParam, send, startStream, type Ctx, type Router } from "./http";

const MAX_ARCHIVE = 1 << 30;

/** Resolve `p` as the container sees it; the result always lies inside `root`. */
export function resolveInRoot(root: string, p: string, followLast = true): string {
  const parts = p.split("/").filter((x) => x && x !== ".");
  const resolved: string[] = [];
  let hops = 0;
  while (parts.length) {
    const part = parts.shift()!;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(candidate);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink() && (parts.length > 0 || followLast)) {
      if (++hops > 40) throw new EngineError(400, `too many levels of symbolic links: ${p}`);
      const target = fs.readlinkSync(candidate);
      if (target.startsWith("/")) resolved.length = 0;
      parts.unshift(...target.split("/").filter((x) => x && x !== "."));
      continue;
    }
    resolved.push(part);
  }
  return path.join(root, ...resolved);
}

/** Go's os.FileMode bits, which the CLI decodes from X-Docker-Container-Path-Stat. */
function goFileMode(st: fs.Stats): number {
  let mode = st.mode & 0o777;
  if (st.isDirectory()) mode |= 2 ** 31;
  if (st.isSymbolicLink()) mode |= 2 ** 27;
  if (st.mode & 0o4000) mode |= 2 ** 23;
  if (st.mode & 0o2000) mode |= 2 ** 22;
  if (st.mode & 0o1000) mode |= 2 ** 20;
  return mode >>> 0;
}

function pathStat(hostPath: string, containerPath: string, container: string): { header: string; st: fs.Stats } {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(hostPath);
  } catch {
    throw new EngineError(404, `Could not find the file ${containerPath} in container ${container}`);
  }
  const json = { name: path.basename(containerPath) || "/", size: st.size, mode: goFileMode(st), mtime: st.mtime.toISOString(), linkTarget: st.isSymbolicLink() ? fs.readlinkSync(hostPath) : "" };
  return { header: Buffer.from(JSON.stringify(json)).toString("base64"), st };
}

export function archiveRoutes(router: Router, svc: ContainerService): void {
  const locate = (ctx: Ctx) => {
    const c = svc.find(ctx.params[0]!);
    const p = ctx.query.get("path");
    if (!p) throw new EngineError(400, "path is required");
    const root = svc.rootfs(c);
    // A trailing "/." asks for the contents of a directory (and follows a final symlink).
    const followLast = p.endsWith("/.") || p.endsWith("/");
    const hostPath = resolveInRoot(root, p, followLast);
    return { c, p, root, hostPath };
  };

  router.on("HEAD", "/containers/:id/archive", (ctx) => {
    const { p, hostPath } = locate(ctx);
    const { header } = pathStat(hostPath, p, ctx.params[0]!);
    send(ctx, 200, undefined, "application/x-tar", { "X-Docker-Container-Path-Stat": header });
  });

  router.on("GET", "/containers/:id/archive", (ctx) => {
    const { p, hostPath, root } = locate(ctx);
    const { header } = pathStat(hostPath, p, ctx.params[0]!);
    if (ctx.method === "HEAD") return send(ctx, 200, undefined, "application/x-tar", { "X-Docker-Container-Path-Stat": header });
    ctx.res!.setHeader("X-Docker-Container-Path-Stat", header);
    const res = startStream(ctx, "application/x-tar");
    const base = hostPath === root ? "." : path.basename(hostPath);
    const name = path.basename(p.replace(/\/\.?$/, "")) || "/";
    // The archive's root entry is the basename of what was asked for (even when it was a symlink).
    const args = ["--numeric-owner", "-C", path.dirname(hostPath), "-cf", "-"];
    if (base !== name && hostPath !== root) args.push(`--transform=s,^${escapeSed(base)},${escapeSed(name)},`);
    const t = spawn("tar", [...args, base], { stdio: ["ignore", "pipe", "ignore"] });
    t.stdout.pipe(res);
    res.on("close", () => t.kill());
  });

  router.on("PUT", "/containers/:id/archive", async (ctx) => {
    const { p, hostPath, root } = locate(ctx);
    let st: fs.Stats;
    try {
      st = fs.statSync(hostPath);
    } catch {
      throw new EngineError(404, `Could not find the file ${p} in container ${ctx.params[0]}`);
    }
    if (!st.isDirectory()) throw new EngineError(400, `extraction point is not a directory`);
    await extractInto(ctx, root, hostPath, boolParam(ctx, "copyUIDGID"));
    send(ctx, 200);
  });
}

function escapeSed(s: string): string {
  return s.replace(/[\\,.*^$[\]]/g, (m) => `\\${m}`);
}

/** Unpack the request's tar under `dest`, refusing members that would escape it. */
function extractInto(ctx: Ctx, root: string, dest: string, keepOwner: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const extract = tar.extract();
    let received = 0;
    let failed = false;
    const fail = (e: Error) => {
      if (failed) return;
      failed = true;
      ctx.req.unpipe(extract);
      extract.destroy();
      reject(e);
    };
    ctx.req.on("data", (b: Buffer) => {
      received += b.length;
      if (received > MAX_ARCHIVE) fail(new EngineError(413, `archive larger than ${MAX_ARCHIVE} bytes`));
    });
    extract.on("entry", (h, stream, next) => {
      const name = path.posix.normalize(h.name);
      const containerDest = path.relative(root, dest) || ".";
      const logical = path.posix.join("/", containerDest, name);
      if (name.startsWith("../") || name === ".." || path.posix.isAbsolute(name) && name.includes("..")) {
        fail(new EngineError(400, `${JSON.stringify(h.name)} is outside of ${JSON.stringify(`/${containerDest}`)}`));
        return;
      }
      let target: string;
      try {
        target = resolveInRoot(root, logical, false);
      } catch (e) {
        fail(e as Error);
        return;
      }
      const owner = () => {
        try {
          fs.lchownSync(target, keepOwner ? h.uid ?? 0 : 0, keepOwner ? h.gid ?? 0 : 0);
        } catch {
          /* best effort, as Docker */
        }
      };
      const done = () => {
        owner();
        next();
      };
      try {
        fs.mkdirSync(path.dirname(target), { recursive: true });
        if (h.type === "directory") {
          fs.mkdirSync(target, { recursive: true, mode: h.mode });
          stream.resume();
          stream.on("end", done);
        } else if (h.type === "symlink") {
          fs.rmSync(target, { force: true });
          fs.symlinkSync(h.linkname ?? "", target);
          stream.resume();
          stream.on("end", done);
        } else if (h.type === "link") {
          const src = resolveInRoot(root, path.posix.join("/", containerDest, h.linkname ?? ""), false);
          fs.rmSync(target, { force: true });
          fs.linkSync(src, target);
          stream.resume();
          stream.on("end", done);
        } else if (h.type === "file" || h.type === "contiguous-file") {
          if (fs.existsSync(target) && fs.lstatSync(target).isSymbolicLink()) fs.rmSync(target);
          const out = fs.createWriteStream(target, { mode: h.mode });
          stream.pipe(out);
          out.on("finish", () => {
            fs.chmodSync(target, h.mode ?? 0o644);
            done();
          });
          out.on("error", fail);
        } else {
          stream.resume();
          stream.on("end", next);
        }
      } catch (e) {
        fail(e as Error);
      }
    });
    extract.on("finish", () => !failed && resolve());
    extract.on("error", (e) => fail(new EngineError(400, `invalid tar: ${e.message}`)));
    ctx.req.pipe(extract);
  });
}
