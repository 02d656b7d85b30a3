// The lab registry for a uml guest. A namespaces sandbox reaches its registry gateway through a
// UNIX socket bound into it; a guest kernel cannot see a host socket, so here the same gateway
// (namespaces/registry-gateway.ts: name mapping, read-only lab images, quota) listens on its UNIX
// socket in the sandbox's directory, and a TCP bridge on the sandbox's gateway address
// (GATEWAY_REGISTRY_PORT, let through by the host firewall from that sandbox's own address and link
// only) carries the guest's connections to it. Inside, the guest's init relays
// /run/berth-gw/registry.sock to that port, and the agent serves localhost:5000 from the socket as
// in a namespaces sandbox, so the engine's mirror and `docker push localhost:5000/x` work alike.
import { mkdir } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import { GATEWAY_REGISTRY_PORT, type UplinkSlot } from "../namespaces/network.js";
import { MAX_CONNECTIONS, RegistryGateway } from "../namespaces/registry-gateway.js";
import type { RegistryQuota } from "../namespaces/registry-quota.js";

export interface GuestRegistryOptions {
  /** The sandbox's directory on the host: the gateway's socket goes in gw/ there. */
  dir: string;
  uplink: UplinkSlot;
  /** The lab registry, e.g. http://127.0.0.1:5000. */
  upstream: string;
  owner: string;
  quota?: RegistryQuota;
  log?: (line: string) => void;
}

export class GuestRegistry {
  private constructor(
    readonly gateway: RegistryGateway,
    private readonly bridge: net.Server,
    private readonly sockets: Set<net.Socket>,
  ) {}

  /** Rejects with EADDRINUSE when another live process serves this sandbox already. */
  static async listen(o: GuestRegistryOptions): Promise<GuestRegistry> {
    await mkdir(join(o.dir, "gw"), { recursive: true, mode: 0o700 });
    const socketPath = join(o.dir, "gw", "registry.sock");
    // The bridge first: if the port is taken, nothing of this process's is left half-made.
    const sockets = new Set<net.Socket>();
    const bridge = net.createServer((client) => {
      // Only the guest itself (the firewall already checked its address came from its own link;
      // another sandbox could still aim at this gateway address).
      if (client.remoteAddress !== o.uplink.address && client.remoteAddress !== `::ffff:${o.uplink.address}`) {
        client.destroy();
        return;
      }
      const upstream = net.connect(socketPath);
      sockets.add(client).add(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      // One side finished: end the other (bytes still queued for it are delivered), then forget.
      client.on("close", () => (sockets.delete(client), upstream.end()));
      upstream.on("close", () => (sockets.delete(upstream), client.end()));
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      client.setTimeout(120_000, () => client.destroy());
    });
    bridge.maxConnections = MAX_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      bridge.once("error", reject);
      bridge.listen(GATEWAY_REGISTRY_PORT, o.uplink.gateway, () => {
        bridge.off("error", reject);
        resolve();
      });
    });
    try {
      const gateway = await RegistryGateway.listen({ socketPath, upstream: o.upstream, owner: o.owner, quota: o.quota, log: o.log });
      return new GuestRegistry(gateway, bridge, sockets);
    } catch (err) {
      bridge.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all([new Promise<void>((r) => this.bridge.close(() => r())), this.gateway.close()]);
  }
}
