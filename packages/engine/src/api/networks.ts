/**
 * /networks: list, inspect, create, remove, connect, disconnect, prune (src/network/manager.ts does
 * the work). Docker's words for every refusal; the CLI adds "Error response from daemon: ".
 */
import type { ContainerService } from "../containers/service";
import { EngineError } from "../errors";
import { type NetworkManager, type NetworkRecord } from "../network/manager";
import { parseFilters, readJson, send, sendJson, type Router } from "./http";

export function networkRoutes(router: Router, svc: ContainerService, net: NetworkManager): void {
  const netContainer = (ref: string) => {
    const c = svc.find(ref);
    return { id: c.id, name: c.name, hostname: c.record.Config.Hostname, running: c.running, pid: c.record.State.Pid };
  };

  router.on("GET", "/networks", (ctx) => {
    const f = parseFilters(ctx);
    const match = (n: NetworkRecord) => {
      if (f.name && !f.name.some((x) => n.Name.includes(x))) return false;
      if (f.id && !f.id.some((x) => n.Id.startsWith(x))) return false;
      if (f.driver && !f.driver.includes(n.Driver)) return false;
      if (f.type && !f.type.includes(net.isUserDefined(n) ? "custom" : "builtin")) return false;
      if (f.label && !f.label.every((l) => {
        const [k, ...v] = l.split("=");
        return v.length ? n.Labels[k!] === v.join("=") : n.Labels[k!] !== undefined;
      })) return false;
      if (f.dangling?.includes("true") && (!net.isUserDefined(n) || Object.keys(net.inspect(n).Containers as object).length)) return false;
      return true;
    };
    sendJson(ctx, 200, net.list().filter(match).map((n) => net.inspect(n)));
  });

  router.on("GET", "/networks/:id", (ctx) => {
    sendJson(ctx, 200, net.inspect(net.get(ctx.params[0]!)));
  });

  router.on("POST", "/networks/create", async (ctx) => {
    const body = await readJson(ctx);
    const n = await net.create(body);
    sendJson(ctx, 201, { Id: n.Id, Warning: "" });
  });

  router.on("DELETE", "/networks/:id", async (ctx) => {
    await net.remove(ctx.params[0]!);
    send(ctx, 204);
  });

  router.on("POST", "/networks/:id/connect", async (ctx) => {
    const body = await readJson(ctx);
    const n = net.get(ctx.params[0]!);
    await net.connect(n.Id, netContainer(String(body.Container ?? "")), body as Parameters<NetworkManager["connect"]>[2]);
    send(ctx, 200);
  });

  router.on("POST", "/networks/:id/disconnect", async (ctx) => {
    const body = await readJson(ctx);
    const n = net.get(ctx.params[0]!);
    await net.disconnect(n.Id, netContainer(String(body.Container ?? "")));
    send(ctx, 200);
  });

  router.on("POST", "/networks/prune", async (ctx) => sendJson(ctx, 200, { NetworksDeleted: await net.prune() }));
}
