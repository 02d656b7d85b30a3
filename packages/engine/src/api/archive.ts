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
import { EngineError } from "../errors";
import { walkInRoot, type RootMount } from "../paths/in-root";
import { boolParam, send, startStream, type Ctx, type Router } from "./http";

const MAX_ARCHIVE = 1 << 30;

/** A volume or bind of a stopped container, as its record holds it. */
export interface MountMap {
  Destination: string;
  Source: string;
}

const rootMounts = (mounts: MountMap[]): RootMount[] => mounts.map((m) => ({ destination: m.Destination, source: m.Source }));

/** @deprecated use walkInRoot (paths/in-root.ts); kept while the container start still imports it from here. */
export function resolveInRoot(root: string, p: string, followLast = true, mounts: MountMap[] = []): string {
  return walkInRoot(root, p, { followLast, mounts: rootMounts(mounts) }).host;
}

/** @deprecated use walkInRoot (paths/in-root.ts); kept while the container start still imports it from here. */
export function resolveContainerPath(root: string, p: string, mounts: MountMap[] = []): string {
  return walkInRoot(root, p, { mounts: rootMounts(mounts) }).logical;
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
    // A running container is seen through its own root (/proc/<pid>/root): volumes, binds and
    // tmpfs mounts included, exactly as inside. A stopped one: its layers, with volumes and binds
    // mapped to where their files are.
    const running = c.running && c.record.State.Pid > 0 && fs.existsSync(`/proc/${c.record.State.Pid}/root`);
    const root = running ? `/proc/${c.record.State.Pid}/root` : svc.rootfs(c);
    const mounts = running ? [] : rootMounts((c.record.Mounts ?? []).filter((m) => m.Type !== "tmpfs" && m.Source));
    // A trailing "/." asks for the contents of a directory (and follows a final symlink).
    const followLast = p.endsWith("/.") || p.endsWith("/");
    const hostPath = walkInRoot(root, p, { followLast, mounts }).host;
    // The destination as the container names it: tar members are resolved below it (symlinks
    // followed again there), which works whether it lies in a layer, a volume or a bind.
    const logical = path.posix.normalize(`/${p}`).replace(/\/\.?$/, "") || "/";
    return { c, p, root, hostPath, mounts, logical };
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
    // "dir/." names the contents: dockerd's archive then starts at "./", not at "dir/".
    const name = p.endsWith("/.") ? "." : path.basename(p.replace(/\/\.?$/, "")) || "/";
    // The archive's root entry is the basename of what was asked for (even when it was a symlink).
    const args = ["--numeric-owner", "-C", path.dirname(hostPath), "-cf", "-"];
    if (base !== name && hostPath !== root) args.push(`--transform=s,^${escapeSed(base)},${name.replace(/[\\,&]/g, (m) => `\\${m}`)},`);
    const t = spawn("tar", [...args, base], { stdio: ["ignore", "pipe", "ignore"] });
    t.stdout.pipe(res);
    res.on("close", () => t.kill());
  });

  router.on("PUT", "/containers/:id/archive", async (ctx) => {
    const { p, hostPath, root, mounts, logical } = locate(ctx);
    let st: fs.Stats;
    try {
      st = fs.statSync(hostPath);
    } catch {
      throw new EngineError(404, `Could not find the file ${p} in container ${ctx.params[0]}`);
    }
    if (!st.isDirectory()) throw new EngineError(400, `extraction point is not a directory`);
    await extractInto(ctx, root, hostPath, boolParam(ctx, "copyUIDGID"), mounts, logical);
    send(ctx, 200);
  });
}

function escapeSed(s: string): string {
  return s.replace(/[\\,.*^$[\]]/g, (m) => `\\${m}`);
}

/** Unpack the request's tar under `dest`, refusing members that would escape it. */
function extractInto(ctx: Ctx, root: string, dest: string, keepOwner: boolean, mounts: RootMount[], logicalDest: string): Promise<void> {
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
      const containerDest = logicalDest.replace(/^\/+/, "") || ".";
      const logical = path.posix.join("/", containerDest, name);
      if (name.startsWith("../") || name === ".." || path.posix.isAbsolute(name) && name.includes("..")) {
        fail(new EngineError(400, `${JSON.stringify(h.name)} is outside of ${JSON.stringify(`/${containerDest}`)}`));
        return;
      }
      let target: string;
      try {
        target = walkInRoot(root, logical, { followLast: false, mounts }).host;
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
          const src = walkInRoot(root, path.posix.join("/", containerDest, h.linkname ?? ""), { followLast: false, mounts }).host;
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
