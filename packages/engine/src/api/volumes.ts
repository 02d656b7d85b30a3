/**
 * /volumes (local volumes), and the little of /networks and /build the CLI needs before the
 * networking issue lands: `network ls` lists bridge, host and none; prunes answer with nothing.
 */
import type { ContainerService } from "../containers/service";
import { EngineError } from "../containers/service";
import type { Volume, VolumeStore } from "../volumes/store";
import { boolParam, parseFilters, readJson, send, sendJson, versionAtLeast, type Router } from "./http";

function view({ anonymous: _a, ...v }: Volume) {
  return v;
}

export function volumeRoutes(router: Router, svc: ContainerService, volumes: VolumeStore): void {
  const users = (name: string) => svc.list().filter((c) => c.record.Mounts?.some((m) => m.Name === name));

  router.on("GET", "/volumes", (ctx) => {
    const f = parseFilters(ctx);
    let list = volumes.list();
    if (f.dangling?.includes("true")) list = list.filter((v) => users(v.Name).length === 0);
    if (f.name) list = list.filter((v) => f.name!.some((n) => v.Name.includes(n)));
    sendJson(ctx, 200, { Volumes: list.map(view), Warnings: [] });
  });

  router.on("POST", "/volumes/create", async (ctx) => {
    const body = await readJson(ctx);
    try {
      sendJson(ctx, 201, view(volumes.create(typeof body.Name === "string" && body.Name ? body.Name : undefined, (body.Labels as Record<string, string>) ?? {})));
    } catch (e) {
      throw new EngineError(400, (e as Error).message);
    }
  });

  router.on("POST", "/volumes/prune", (ctx) => {
    const f = parseFilters(ctx);
    // Since API 1.42 only anonymous volumes go, unless all=true.
    const all = !versionAtLeast(ctx, "1.42") || (f.all ?? []).some((x) => x === "true" || x === "1");
    const deleted: string[] = [];
    let space = 0;
    for (const v of volumes.list()) {
      if (users(v.Name).length || (!all && !v.anonymous)) continue;
      space += volumes.size(v);
      volumes.remove(v.Name);
      deleted.push(v.Name);
    }
    sendJson(ctx, 200, { VolumesDeleted: deleted, SpaceReclaimed: space });
  });

  router.on("GET", "/volumes/:name", (ctx) => {
    const v = volumes.get(ctx.params[0]!);
    if (!v) throw new EngineError(404, `get ${ctx.params[0]}: no such volume`);
    sendJson(ctx, 200, view(v));
  });

  router.on("DELETE", "/volumes/:name", (ctx) => {
    const name = ctx.params[0]!;
    if (!volumes.get(name)) throw new EngineError(404, `get ${name}: no such volume`);
    const using = users(name);
    if (using.length && !boolParam(ctx, "force")) throw new EngineError(409, `remove ${name}: volume is in use - [${using.map((c) => c.id).join(", ")}]`);
    volumes.remove(name);
    send(ctx, 204);
  });

  // ---------- networks (placeholders until the bridge exists) ----------
  const NETWORKS = ["bridge", "host", "none"].map((name) => ({
    Name: name,
    Id: Buffer.from(name.padEnd(32, "0")).toString("hex").slice(0, 64),
    Created: "0001-01-01T00:00:00Z",
    Scope: "local",
    Driver: name === "none" ? "null" : name,
    EnableIPv6: false,
    IPAM: { Driver: "default", Options: null, Config: [] },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: "" },
    ConfigOnly: false,
    Containers: {},
    Options: {},
    Labels: {},
  }));
  router.on("GET", "/networks", (ctx) => sendJson(ctx, 200, NETWORKS));
  router.on("GET", "/networks/:id", (ctx) => {
    const n = NETWORKS.find((x) => x.Name === ctx.params[0] || x.Id.startsWith(ctx.params[0]!));
    if (!n) throw new EngineError(404, `network ${ctx.params[0]} not found`);
    sendJson(ctx, 200, n);
  });
  router.on("POST", "/networks/prune", (ctx) => sendJson(ctx, 200, { NetworksDeleted: [] }));
  router.on("POST", "/build/prune", (ctx) => sendJson(ctx, 200, { CachesDeleted: [], SpaceReclaimed: 0 }));
}
