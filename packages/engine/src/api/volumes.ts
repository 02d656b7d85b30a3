/**
 * /volumes (local volumes), and the build-cache prune the CLI's `system prune` calls (there is no
 * cache to report). Networks are in networks.ts.
 */
import type { ContainerService } from "../containers/service";
import { EngineError } from "../errors";
import { labelsMatch, volumeFilter, type Volume, type VolumeStore } from "../volumes/store";
import { boolParam, parseFilters, readJson, send, sendJson, versionAtLeast, type Ctx, type Router } from "./http";

/** As dockerd shows it: no labels is null, not {}. */
function view({ anonymous: _a, ...v }: Volume) {
  return { ...v, Labels: Object.keys(v.Labels).length ? v.Labels : null };
}

export function volumeRoutes(router: Router, svc: ContainerService, volumes: VolumeStore): void {
  // A volume is in use while any container (running or not) names it, as in dockerd.
  const users = (name: string) => svc.list().filter((c) => c.record.Mounts?.some((m) => m.Type === "volume" && m.Name === name));
  const filtersOf = (ctx: Ctx) => volumeFilter(parseFilters(ctx), (n) => users(n).length > 0);

  router.on("GET", "/volumes", (ctx) => {
    const keep = filtersOf(ctx);
    sendJson(ctx, 200, { Volumes: volumes.list().filter(keep).map(view), Warnings: null });
  });

  router.on("POST", "/volumes/create", async (ctx) => {
    const body = await readJson(ctx);
    const name = typeof body.Name === "string" && body.Name ? body.Name : undefined;
    const labels = body.Labels && typeof body.Labels === "object" ? (body.Labels as Record<string, string>) : {};
    const options = body.DriverOpts && typeof body.DriverOpts === "object" ? (body.DriverOpts as Record<string, string>) : null;
    sendJson(ctx, 201, view(volumes.create(name, labels, { driver: typeof body.Driver === "string" ? body.Driver : "", options })));
  });

  // Since API 1.42 only anonymous volumes go, unless all=true; before, every unused volume.
  router.on("POST", "/volumes/prune", (ctx) => {
    const f = parseFilters(ctx);
    const newApi = versionAtLeast(ctx, "1.42");
    for (const k of Object.keys(f)) if (!["label", "label!", ...(newApi ? ["all"] : [])].includes(k)) throw new EngineError(400, `Invalid filter '${k}'`);
    for (const a of f.all ?? []) if (!["true", "false", "1", "0"].includes(a)) throw new EngineError(400, `invalid filter 'all=${a}'`);
    const all = !newApi || (f.all ?? []).some((x) => x === "true" || x === "1");
    const deleted: string[] = [];
    let space = 0;
    for (const v of volumes.list()) {
      if (users(v.Name).length || (!all && !v.anonymous)) continue;
      if (f.label && !labelsMatch(v.Labels, f.label)) continue;
      if (f["label!"]?.some((l) => labelsMatch(v.Labels, [l]))) continue;
      space += volumes.size(v);
      volumes.remove(v.Name);
      deleted.push(v.Name);
    }
    sendJson(ctx, 200, { VolumesDeleted: deleted.length ? deleted : null, SpaceReclaimed: space });
  });

  router.on("GET", "/volumes/:name", (ctx) => {
    const v = volumes.get(ctx.params[0]!);
    if (!v) throw new EngineError(404, `get ${ctx.params[0]}: no such volume`);
    sendJson(ctx, 200, view(v));
  });

  // In use is refused even with force, as in dockerd (its force only covers driver errors).
  router.on("DELETE", "/volumes/:name", (ctx) => {
    const name = ctx.params[0]!;
    if (!volumes.get(name)) {
      if (boolParam(ctx, "force")) return send(ctx, 204);
      throw new EngineError(404, `get ${name}: no such volume`);
    }
    const using = users(name);
    if (using.length) throw new EngineError(409, `remove ${name}: volume is in use - [${using.map((c) => c.id).join(", ")}]`);
    volumes.remove(name);
    send(ctx, 204);
  });

  router.on("POST", "/build/prune", (ctx) => sendJson(ctx, 200, { CachesDeleted: [], SpaceReclaimed: 0 }));
}
