/**
 * docker cp, both ways: HEAD/GET /containers/{id}/archive (a tar whose root is the basename) and
 * PUT (extract a tar into a directory of the container). Every path is resolved inside the
 * container's root: symlinks are followed as the container would see them, ".." stops at "/", and a
 * tar member that would land outside the destination is refused.
 */
import fs from "node:fs";
import path from "node:path";
import type { ContainerService } from "../containers/service";
import { EngineError } from "../errors";
import { walkInRoot, type RootMount } from "../paths/in-root";
import { extractStream, UnsafeArchiveError } from "../tar/extract";
import { packTree } from "../tar/writer";
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
    // "dir/." names the contents: dockerd's archive then starts at "./", not at "dir/". The
    // archive's root entry is the basename of what was asked for (even when it was a symlink).
    const name = hostPath === root || p.endsWith("/.") ? "." : path.basename(p.replace(/\/\.?$/, "")) || "/";
    const tar = packTree({ source: hostPath, name });
    tar.on("error", (e) => res.destroy(e)); // a file vanished mid-way: the CLI sees a cut archive
    tar.pipe(res);
    res.on("close", () => tar.destroy());
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

/** Unpack the request's tar under `dest` with the strict extractor's "copy" rules (../tar/extract.ts). */
async function extractInto(ctx: Ctx, root: string, dest: string, keepOwner: boolean, mounts: RootMount[], logicalDest: string): Promise<void> {
  let received = 0;
  try {
    await extractStream(ctx.req, dest, { policy: "copy", what: "archive", root, logicalDest, mounts, owners: keepOwner ? "keep" : { uid: 0, gid: 0 } }, (c) => {
      received += c.length;
      if (received > MAX_ARCHIVE) throw new EngineError(413, `archive larger than ${MAX_ARCHIVE} bytes`);
    });
  } catch (e) {
    ctx.req.resume(); // read the rest away, so the answer reaches the client
    if (e instanceof EngineError) throw e;
    if (e instanceof UnsafeArchiveError) throw new EngineError(400, e.message);
    throw new EngineError(500, `cannot extract the archive: ${(e as Error).message}`);
  }
}
