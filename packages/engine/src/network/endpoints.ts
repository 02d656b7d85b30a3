/**
 * A container's end of a network: its address, MAC (02:42 + the IP, as Docker), the veth pair
 * that plugs its namespace into the bridge, and what legacy links hand on to it.
 */
import { randomBytes } from "node:crypto";
import { deleteLink, ipBatch } from "./ip";
import { ipToNum, numToIp, parseSubnet, type AddressSpace } from "./ipam";
import type { Attachment, NetworkRecord } from "./records";

/** /etc/hosts of a container before any address is added. */
export const LOCALHOST_HOSTS = `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n`;

/** Take an address on the network (the one asked for with --ip, or the next free) and name the links. */
export function assignEndpoint(a: Attachment, space: AddressSpace, iface: number): void {
  const ip = space.allocate(a.ipv4);
  a.ip = numToIp(ip);
  a.mac = `02:42:${[ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
  a.endpointId = randomBytes(32).toString("hex");
  a.iface = `eth${iface}`;
  a.hostVeth = `veth${randomBytes(4).toString("hex").slice(0, 7)}`;
}

/**
 * At start, the shim makes the pair itself (berth-shim --veth, netlink and ioctls: no process per
 * command) as soon as the container's namespace exists: this says what to make. Its reports show
 * the `ip` commands it stood for.
 */
export function vethSpec(n: NetworkRecord, a: Attachment, route: boolean): string {
  const { Subnet, Gateway } = n.IPAM.Config[0]!;
  a.byShim = true;
  return [a.hostVeth, a.iface, a.mac, n.bridge, `${a.ip}/${parseSubnet(Subnet).prefix}`, route ? Gateway : "-"].join(",");
}

/**
 * `docker network connect` to a running container: the same pair with `ip` (one batch in the
 * engine's namespace, one in the container's): one end on the bridge, the other moved into the
 * container's namespace (pid) as eth<N> with its address, and (route) the default route through
 * this network's gateway. Returns the commands.
 */
export async function plugIn(n: NetworkRecord, a: Attachment, pid: number, route: boolean): Promise<string[]> {
  const { Subnet, Gateway } = n.IPAM.Config[0]!;
  const prefix = parseSubnet(Subnet).prefix;
  const host = [`link add ${a.hostVeth} type veth peer name ${a.iface} address ${a.mac} netns ${pid}`, `link set ${a.hostVeth} master ${n.bridge} up`];
  const inside = [`addr add ${a.ip}/${prefix} brd + dev ${a.iface}`, `link set ${a.iface} up`, ...(route ? [`route add default via ${Gateway} dev ${a.iface}`] : [])];
  await ipBatch(host);
  await ipBatch(inside, pid);
  return [...host.map((x) => `ip ${x}`), ...inside.map((x) => `nsenter --net=/proc/${pid}/ns/net ip ${x}`)];
}

/**
 * Give the address back; with deleteVeth, remove the host's end too (`network disconnect`, or a
 * pair `network connect` made). A pair the shim made at start is left to the kernel, which deletes
 * it with the container's network namespace (an `ip link del` would cost a process and, in the
 * kernel, RCU grace periods, for nothing).
 */
export async function unplug(a: Attachment, space: AddressSpace | undefined, deleteVeth = true): Promise<void> {
  if (a.ip) space?.release(ipToNum(a.ip));
  const veth = a.hostVeth;
  Object.assign(a, { ip: undefined, mac: undefined, endpointId: undefined, iface: undefined, hostVeth: undefined, byShim: undefined });
  if (veth && deleteVeth) await deleteLink(veth);
}

/** Docker's legacy-link variables: ALIAS_NAME, ALIAS_PORT[_<port>_<PROTO>[_ADDR|_PORT|_PROTO]], ALIAS_ENV_*. */
export function linkEnvironment(self: string, alias: string, ip: string, exposed: string[], env: string[]): string[] {
  const A = alias.toUpperCase().replace(/[^A-Z0-9_]/g, "_");
  const out = [`${A}_NAME=/${self}/${alias}`];
  const ports = exposed.map((k) => k.split("/") as [string, string]).sort((a, b) => Number(a[0].split("-")[0]) - Number(b[0].split("-")[0]) || a[1].localeCompare(b[1]));
  if (ports.length) out.push(`${A}_PORT=${ports[0]![1]}://${ip}:${ports[0]![0].split("-")[0]}`);
  for (const [port, proto] of ports) {
    const p = port.split("-")[0]!;
    const key = `${A}_PORT_${p}_${proto.toUpperCase()}`;
    out.push(`${key}=${proto}://${ip}:${p}`, `${key}_ADDR=${ip}`, `${key}_PORT=${p}`, `${key}_PROTO=${proto}`);
  }
  for (const e of env) {
    const k = e.split("=")[0]!;
    if (!["HOME", "HOSTNAME", "PATH"].includes(k)) out.push(`${A}_ENV_${e}`);
  }
  return out;
}
