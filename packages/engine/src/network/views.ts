/**
 * How networking looks from outside: NetworkSettings of `docker inspect`, the ports of `docker ps`
 * and `docker port`, a network's Containers in `docker network inspect`. Read-only views of the
 * records (records.ts) and of what running containers hold.
 */
import { parseSubnet } from "./ipam";
import { isUserDefined, shortId, type Attachment, type ContainerNet, type NetworkRecord, type State } from "./records";

export interface PortView {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

/** The Containers map of network inspect: running containers only, as Docker shows them. */
export function inspectNetwork(state: State, live: Map<string, ContainerNet>, n: NetworkRecord): Record<string, unknown> {
  const containers: Record<string, unknown> = {};
  for (const [id, c] of Object.entries(state.containers)) {
    for (const a of c.attachments) {
      if (a.network !== n.Id || !live.has(id) || !a.ip) continue;
      const prefix = parseSubnet(n.IPAM.Config[0]!.Subnet).prefix;
      containers[id] = { Name: c.name, EndpointID: a.endpointId, MacAddress: a.mac, IPv4Address: `${a.ip}/${prefix}`, IPv6Address: "" };
    }
  }
  const { bridge: _b, ...rest } = n;
  // dockerd shows the default bridge's subnet without its gateway (which is still 172.17.0.1).
  const IPAM = n.Name === "bridge" ? { ...n.IPAM, Config: n.IPAM.Config.map(({ Subnet }) => ({ Subnet })) } : n.IPAM;
  return { ...rest, IPAM, Containers: containers };
}

/** NetworkSettings of container inspect. */
export function containerSettings(state: State, live: Map<string, ContainerNet>, id: string, running: boolean, pid: number): Record<string, unknown> {
  const cn = state.containers[id];
  const mine = running ? live.get(id) : undefined;
  const find = (ref: string) => state.networks.find((x) => x.Id === ref || x.Name === ref);
  const ports: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
  if (cn && running && !cn.mode.startsWith("container:") && cn.mode !== "none") {
    for (const k of cn.exposed) ports[k] = null;
    for (const k of Object.keys(cn.bindings)) ports[k] = null;
    for (const p of mine?.published ?? []) for (const ip of p.hostIps) (ports[p.key] ??= []).push({ HostIp: ip, HostPort: String(p.hostPort) });
  }
  const networks: Record<string, unknown> = {};
  const names = cn ? (cn.mode === "host" || cn.mode === "none" ? [cn.mode] : []) : [];
  for (const name of names) networks[name] = endpoint(find(name)?.Id ?? "", [], undefined, undefined);
  for (const a of cn?.attachments ?? []) {
    const n = state.networks.find((x) => x.Id === a.network);
    if (!n) continue;
    const aliases = isUserDefined(n) ? [...a.aliases, shortId(id)] : null;
    networks[n.Name] = endpoint(n.Id, aliases, running ? a : undefined, n);
  }
  const first = mine?.attachments.find((a) => a.ip);
  const firstNet = first && state.networks.find((x) => x.Id === first.network);
  const onBridge = firstNet?.Name === "bridge";
  return {
    Bridge: "",
    SandboxID: "",
    HairpinMode: false,
    LinkLocalIPv6Address: "",
    LinkLocalIPv6PrefixLen: 0,
    Ports: ports,
    SandboxKey: running && pid ? `/proc/${pid}/ns/net` : "",
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    // The top-level fields describe the default bridge only (Docker's legacy view).
    EndpointID: onBridge ? first!.endpointId : "",
    Gateway: onBridge ? firstNet!.IPAM.Config[0]!.Gateway : "",
    GlobalIPv6Address: "",
    GlobalIPv6PrefixLen: 0,
    IPAddress: onBridge ? first!.ip : "",
    IPPrefixLen: onBridge ? parseSubnet(firstNet!.IPAM.Config[0]!.Subnet).prefix : 0,
    IPv6Gateway: "",
    MacAddress: onBridge ? first!.mac : "",
    Networks: networks,
  };
}

/** Ports of `docker ps`: published ones with their host side, exposed ones without. */
export function containerPorts(state: State, live: Map<string, ContainerNet>, id: string): PortView[] {
  const cn = state.containers[id];
  const mine = live.get(id);
  if (!cn || !mine) return []; // a stopped container shows no ports, as in dockerd
  const out: PortView[] = [];
  for (const p of mine.published ?? []) {
    const [port, proto] = p.key.split("/");
    for (const ip of p.hostIps) out.push({ IP: ip, PrivatePort: Number(port!.split("-")[0]), PublicPort: p.hostPort, Type: proto! });
  }
  for (const k of cn.exposed) {
    if (out.some((o) => `${o.PrivatePort}/${o.Type}` === k)) continue;
    const [port, proto] = k.split("/");
    out.push({ PrivatePort: Number(port!.split("-")[0]), Type: proto! });
  }
  return out;
}

/** ps's NetworkSettings.Networks (names only matter to `--filter network=` and templates). */
export function containerNetworkNames(state: State, id: string): string[] {
  const cn = state.containers[id];
  if (!cn) return [];
  if (cn.mode === "host" || cn.mode === "none") return [cn.mode];
  return cn.attachments.map((a) => state.networks.find((n) => n.Id === a.network)?.Name).filter((x): x is string => !!x);
}

function endpoint(networkId: string, aliases: string[] | null, a: Attachment | undefined, n: NetworkRecord | undefined) {
  const cfg = n?.IPAM.Config[0];
  return {
    IPAMConfig: null,
    Links: null,
    Aliases: aliases,
    NetworkID: networkId,
    EndpointID: a?.endpointId ?? "",
    Gateway: a?.ip && cfg ? cfg.Gateway : "",
    IPAddress: a?.ip ?? "",
    IPPrefixLen: a?.ip && cfg ? parseSubnet(cfg.Subnet).prefix : 0,
    IPv6Gateway: "",
    GlobalIPv6Address: "",
    GlobalIPv6PrefixLen: 0,
    MacAddress: a?.mac ?? "",
    DriverOpts: null,
  };
}
