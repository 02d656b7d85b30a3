/**
 * Published ports (`-p`, `-P`): checked as dockerd checks them at create, then at start one
 * userland proxy per host address and port (proxy.ts), which holds the port and serves IPv6, and
 * for IPv4 a DNAT rule that carries the traffic in the kernel (iptables.ts).
 */
import fs from "node:fs";
import { EngineError } from "../errors";
import type { Tables } from "./iptables";
import { tcpProxy, udpProxy, type Proxy } from "./proxy";
import type { ContainerNet, NetContainer, PortBinding, Published } from "./records";

const PORT_RE = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/;

/** "80/tcp" from "80", refusing what Docker refuses. */
export function normalizePort(spec: string): string {
  const m = PORT_RE.exec(spec);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535 || (m[2] && Number(m[2]) > 65535)) throw new EngineError(400, `invalid port specification: "${spec}"`);
  return `${m[1]}${m[2] ? `-${m[2]}` : ""}/${m[3] ?? "tcp"}`;
}

function validHostPort(p: string): boolean {
  if (p === "") return true;
  const m = /^(\d+)(?:-(\d+))?$/.exec(p);
  return !!m && Number(m[1]) >= 1 && Number(m[1]) <= 65535 && (!m[2] || (Number(m[2]) <= 65535 && Number(m[2]) >= Number(m[1])));
}

/** HostConfig.PortBindings as dockerd accepts them, keyed by normalized port. */
export function parseBindings(bindings: Record<string, PortBinding[] | null>): Record<string, PortBinding[]> {
  const clean: Record<string, PortBinding[]> = {};
  for (const [key, list] of Object.entries(bindings)) {
    const port = normalizePort(key);
    for (const b of list ?? []) {
      if (!validHostPort(String(b?.HostPort ?? ""))) throw new EngineError(400, `invalid port specification: "${b.HostPort}"`);
      if (b?.HostIp && !/^[\d.]+$|:/.test(b.HostIp)) throw new EngineError(400, `invalid IP address: ${b.HostIp}`);
    }
    clean[port] = (list ?? []).map((b) => ({ HostIp: b?.HostIp ?? "", HostPort: String(b?.HostPort ?? "") }));
  }
  return clean;
}

/** -p and -P for a container about to start: one proxy per host address and port, on its first address. */
export async function publish(c: NetContainer, cn: ContainerNet, running: Iterable<ContainerNet>, tables: Tables | undefined): Promise<Published[]> {
  const target = cn.attachments[0]?.ip;
  const out: Published[] = [];
  const wanted: [string, PortBinding][] = [];
  for (const [key, list] of Object.entries(cn.bindings)) for (const b of list.length ? list : [{ HostIp: "", HostPort: "" }]) wanted.push([key, b]);
  if (cn.publishAll) for (const key of cn.exposed) if (!cn.bindings[key]) wanted.push([key, { HostIp: "", HostPort: "" }]);
  if (!target || !wanted.length) return out;
  const others = [...running]; // this container included: its own earlier bindings count
  try {
    for (const [key, b] of wanted) {
      const [portSpec, proto] = key.split("/") as [string, string];
      const containerPort = Number(portSpec.split("-")[0]);
      if (proto === "sctp") throw new EngineError(500, "sctp ports cannot be published by Berth's userland proxy");
      const hostIp = b.HostIp || "0.0.0.0";
      // No address given: every IPv4 and IPv6 address, one dual-stack socket (Docker lists both).
      const dual = !b.HostIp && ipv6Available();
      const hostIps = dual ? ["0.0.0.0", "::"] : [hostIp];
      const listenOn = dual ? "::" : hostIp;
      let port = b.HostPort ? Number(b.HostPort.split("-")[0]) : 0;
      const clash = (p: number) => portTaken(others, hostIp, p, proto);
      if (port && clash(port)) throw new EngineError(500, `driver failed programming external connectivity on endpoint ${c.name} (${cn.attachments[0]!.endpointId}): Bind for ${hostIp}:${port} failed: port is already allocated`);
      const open = (p: number) => (proto === "udp" ? udpProxy(listenOn, p, target, containerPort) : tcpProxy(listenOn, p, target, containerPort));
      let proxy: Proxy | undefined;
      if (port) {
        try {
          proxy = await open(port);
        } catch (e) {
          throw new EngineError(500, `driver failed programming external connectivity on endpoint ${c.name} (${cn.attachments[0]!.endpointId}): Error starting userland proxy: listen ${proto}4 ${hostIp}:${port}: bind: ${(e as NodeJS.ErrnoException).code === "EADDRINUSE" ? "address already in use" : (e as Error).message}`);
        }
      } else {
        // Docker's range for ephemeral host ports (the kernel's ip_local_port_range), lowest free first.
        const [lo, hi] = localPortRange();
        for (let p = lo; p <= hi && !proxy; p++) {
          if (clash(p)) continue;
          try {
            proxy = await open(p);
            port = p;
          } catch {
            /* in use by someone else: next */
          }
        }
        if (!proxy) throw new EngineError(500, `Bind for ${hostIp}:0 failed: no free port in ${lo}-${hi}`);
      }
      // IPv4 traffic to the port goes through the kernel (DNAT, as dockerd without its proxy);
      // the proxy keeps the port reserved and serves IPv6 and, if DNAT is not possible, all.
      const dnat: string[][] = [];
      if (tables?.dnatReady) {
        for (const ip of hostIps.filter((x) => !x.includes(":"))) {
          const rule = tables.dnatRule(proto, ip, port, target, containerPort);
          if (await tables.addDnat(rule)) dnat.push(rule);
        }
      }
      out.push({ key, hostIps, hostPort: port, proxies: [proxy], dnat });
      cn.published = out; // so that the next binding of this container sees its own ports
    }
  } catch (e) {
    await unpublish(out, tables);
    cn.published = undefined;
    throw e;
  }
  return out;
}

/** Close the proxies and remove the DNAT rules of published ports. */
export async function unpublish(published: Published[], tables: Tables | undefined): Promise<void> {
  for (const p of published) {
    for (const x of p.proxies) x.close();
    for (const rule of p.dnat) await tables?.deleteDnat(rule);
  }
}

function portTaken(running: ContainerNet[], ip: string, port: number, proto: string): boolean {
  for (const cn of running) {
    for (const p of cn.published ?? []) {
      if (p.hostPort !== port || !p.key.endsWith(`/${proto}`)) continue;
      if (p.hostIps.includes(ip) || p.hostIps.includes("0.0.0.0") || ip === "0.0.0.0") return true;
    }
  }
  return false;
}

function ipv6Available(): boolean {
  try {
    return fs.readFileSync("/proc/net/if_inet6", "utf8").trim().length > 0;
  } catch {
    return false;
  }
}

function localPortRange(): [number, number] {
  try {
    const [lo, hi] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (lo && hi) return [lo, hi];
  } catch {
    /* not readable */
  }
  return [32768, 60999];
}
