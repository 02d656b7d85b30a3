/**
 * What the network side remembers: the networks (as `docker network inspect` shows them) and, per
 * container, how it asked to be networked. Persisted in <root>/network/state.json; what only exists
 * while a container runs (its addresses, veths, published ports) is kept out of the file.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { firstHost, formatSubnet, numToIp, type Subnet } from "./ipam";
import type { Proxy } from "./proxy";

export interface NetworkRecord {
  Name: string;
  Id: string;
  Created: string;
  Scope: "local";
  Driver: string; // bridge, host, null
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: { Subnet: string; Gateway: string }[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Options: Record<string, string>;
  Labels: Record<string, string>;
  /** The bridge interface (bridge driver only). */
  bridge?: string;
}

/** One container on one network, as configured (persisted) and as running (ip, mac, endpoint). */
export interface Attachment {
  network: string; // network id
  aliases: string[];
  ipv4?: string; // asked for with --ip
  ip?: string;
  mac?: string;
  endpointId?: string;
  iface?: string; // eth0 ... inside the container
  hostVeth?: string;
  /** Made by the shim at start (gone with the container's namespace), not by `network connect`. */
  byShim?: boolean;
}

export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

/** What a running container's ports look like: `docker port`, ps and inspect read these. */
export interface Published {
  key: string; // "80/tcp"
  hostIps: string[]; // ["0.0.0.0", "::"] for a port published on every address
  hostPort: number;
  proxies: Proxy[];
  dnat: string[][]; // the iptables rules (nat table) that carry this port in the kernel
}

export interface ContainerNet {
  name: string;
  mode: string; // default, bridge, host, none, container:<id>, <user network>
  attachments: Attachment[];
  links: { name: string; alias: string }[];
  exposed: string[]; // "80/tcp"
  bindings: Record<string, PortBinding[]>;
  publishAll: boolean;
  published?: Published[];
  pid?: number;
}

/** A container as the network side needs to see it. */
export interface NetContainer {
  id: string;
  name: string;
  hostname: string;
  running: boolean;
  pid: number;
  env?: string[]; // its Config.Env (legacy links hand it on as ALIAS_ENV_*)
}

export interface State {
  networks: NetworkRecord[];
  containers: Record<string, ContainerNet>;
}

export const shortId = (id: string) => id.slice(0, 12);

export const isUserDefined = (n: NetworkRecord) => !["bridge", "host", "none"].includes(n.Name);

export function newRecord(name: string, driver: string, subnet: Subnet | undefined, labels: Record<string, string>, options: Record<string, string>, internal: boolean, gateway?: number): NetworkRecord {
  const id = randomBytes(32).toString("hex");
  return {
    Name: name,
    Id: id,
    Created: new Date().toISOString(),
    Scope: "local",
    Driver: driver,
    EnableIPv6: false,
    IPAM: { Driver: "default", Options: driver === "bridge" && name !== "bridge" ? {} : null, Config: subnet ? [{ Subnet: formatSubnet(subnet), Gateway: numToIp(gateway ?? firstHost(subnet)) }] : [] },
    Internal: internal,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: "" },
    ConfigOnly: false,
    Options: options,
    Labels: labels,
    bridge: driver === "bridge" ? `br-${shortId(id)}` : undefined,
  };
}

/** The state on disk, with the three networks every engine has (the default bridge as configured). */
export function loadState(file: string, defaultBridge: string, defaultSubnet: Subnet): State {
  const state = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as State) : { networks: [], containers: {} };
  for (const [name, driver] of [["bridge", "bridge"], ["host", "host"], ["none", "null"]] as const) {
    if (!state.networks.some((n) => n.Name === name)) state.networks.push(newRecord(name, driver, name === "bridge" ? defaultSubnet : undefined, {}, {}, false));
  }
  const bridge = state.networks.find((n) => n.Name === "bridge")!;
  bridge.bridge = defaultBridge;
  bridge.IPAM.Config = [{ Subnet: formatSubnet(defaultSubnet), Gateway: numToIp(firstHost(defaultSubnet)) }];
  bridge.Options = { "com.docker.network.bridge.default_bridge": "true", "com.docker.network.bridge.enable_icc": "true", "com.docker.network.bridge.enable_ip_masquerade": "true", "com.docker.network.bridge.name": defaultBridge };
  return state;
}

export function saveState(file: string, state: State): void {
  // What a container holds while it runs (proxies, addresses) is not configuration: left out.
  const containers = Object.fromEntries(Object.entries(state.containers).map(([id, { published: _p, pid: _q, ...c }]) => [id, { ...c, attachments: c.attachments.map((a) => ({ network: a.network, aliases: a.aliases, ipv4: a.ipv4 })) }]));
  fs.writeFileSync(`${file}.tmp`, JSON.stringify({ networks: state.networks, containers }));
  fs.renameSync(`${file}.tmp`, file);
}

/** By name, full id or unique id prefix, as Docker resolves networks. */
export function findNetwork(state: State, ref: string): NetworkRecord | undefined {
  const byName = state.networks.find((n) => n.Name === ref);
  if (byName) return byName;
  const byId = state.networks.filter((n) => n.Id.startsWith(ref));
  return ref.length > 0 && byId.length === 1 ? byId[0] : undefined;
}
