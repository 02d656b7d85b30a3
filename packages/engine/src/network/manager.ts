/**
 * Container networking, done the way Docker's bridge driver does it, with iproute2 and iptables in
 * the engine's network namespace (on a learner's sandbox: the sandbox's own):
 *
 *  - a network is a Linux bridge (`berth0` for the default "bridge", `br-<id>` for user networks)
 *    holding the gateway address of its subnet;
 *  - a container gets a veth pair per network: one end on the bridge, the other moved into the
 *    container's namespace as eth0, eth1 ... with its address, MAC (02:42 + the IP, as Docker) and
 *    a default route through the first network's gateway;
 *  - iptables: MASQUERADE for traffic leaving a subnet, ACCEPT in FORWARD for our bridges (a host
 *    where Docker ran has policy DROP), and Docker's two-stage isolation: a packet from one of our
 *    bridges to another of our bridges is dropped;
 *  - `-p`: a userland proxy per published port (proxy.ts); user networks: an embedded DNS (dns.ts).
 *
 * Everything is set up lazily (the first container or `network create`) and removed by close(), so
 * an engine that never networks leaves no trace. What persists is <root>/network/state.json: the
 * networks and, per container, which networks it is attached to and with which aliases.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { EngineError } from "../errors";
import { DnsServer } from "./dns";
import { AddressSpace, contains, defaultPool, firstHost, formatSubnet, ipToNum, numToIp, overlaps, parseSubnet, routedSubnets, type Subnet } from "./ipam";
import { tcpProxy, udpProxy, type Proxy } from "./proxy";

export interface NetworkOptions {
  /** The default bridge's interface name (default berth0). */
  bridge?: string;
  /** The default bridge's subnet (default 172.17.0.0/16, Docker's). */
  subnet?: string;
  /** false: every container gets only loopback (the engine's behaviour before bridges). */
  enabled?: boolean;
}

/** @deprecated the one error type is EngineError; this name goes once nothing imports it. */
export const NetworkError = EngineError;

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
}

export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

/** What a running container's ports look like: `docker port`, ps and inspect read these. */
interface Published {
  key: string; // "80/tcp"
  hostIps: string[]; // ["0.0.0.0", "::"] for a port published on every address

  hostPort: number;
  proxies: Proxy[];
  dnat: string[][]; // the iptables rules (nat table) that carry this port in the kernel
}

interface ContainerNet {
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

/** A container as the network manager needs to see it. */
export interface NetContainer {
  id: string;
  name: string;
  hostname: string;
  running: boolean;
  pid: number;
  env?: string[]; // its Config.Env (legacy links hand it on as ALIAS_ENV_*)
}

interface State {
  networks: NetworkRecord[];
  containers: Record<string, ContainerNet>;
}

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

const shortId = (id: string) => id.slice(0, 12);

export class NetworkManager {
  readonly enabled: boolean;
  readonly defaultBridge: string;
  private readonly defaultSubnet: Subnet;
  private readonly file: string;
  private state: State;
  private spaces = new Map<string, AddressSpace>(); // network id -> addresses in use
  private bridgesUp = new Set<string>(); // network ids whose bridge (and rules, DNS) exist
  private dns = new Map<string, DnsServer>();
  private live = new Map<string, ContainerNet>(); // container id -> runtime view (same objects as state)
  private tablesReady = false;
  private readonly chain: string;
  /** The alias of every bridge this engine makes: its state dir, which no other engine shares. */
  private readonly owner: string;
  /** Problems met while setting up (iptables missing ...): shown in `docker info` warnings and logs. */
  readonly warnings: string[] = [];

  constructor(
    root: string,
    opts: NetworkOptions = {},
    private log: (m: string) => void = () => {},
  ) {
    this.enabled = opts.enabled !== false;
    this.defaultBridge = opts.bridge ?? "berth0";
    if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(this.defaultBridge)) throw new Error(`invalid bridge name: ${this.defaultBridge}`);
    this.defaultSubnet = parseSubnet(opts.subnet ?? "172.17.0.0/16");
    this.chain = this.defaultBridge.toUpperCase().replace(/[^A-Z0-9]/g, "").slice(0, 12);
    this.owner = `berth-engine:${path.resolve(root)}`.slice(0, 255);
    const dir = path.join(root, "network");
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, "state.json");
    this.state = fs.existsSync(this.file) ? (JSON.parse(fs.readFileSync(this.file, "utf8")) as State) : { networks: [], containers: {} };
    // The three networks every engine has.
    for (const [name, driver] of [["bridge", "bridge"], ["host", "host"], ["none", "null"]] as const) {
      if (!this.state.networks.some((n) => n.Name === name)) this.state.networks.push(this.record(name, driver, name === "bridge" ? this.defaultSubnet : undefined, {}, {}, false));
    }
    const bridge = this.state.networks.find((n) => n.Name === "bridge")!;
    bridge.bridge = this.defaultBridge;
    bridge.IPAM.Config = [{ Subnet: formatSubnet(this.defaultSubnet), Gateway: numToIp(firstHost(this.defaultSubnet)) }];
    bridge.Options = { "com.docker.network.bridge.default_bridge": "true", "com.docker.network.bridge.enable_icc": "true", "com.docker.network.bridge.enable_ip_masquerade": "true", "com.docker.network.bridge.name": this.defaultBridge };
    for (const n of this.state.networks) if (n.Driver === "bridge") this.spaceOf(n);
    this.save();
  }

  private save(): void {
    // What a container holds while it runs (proxies, addresses) is not configuration: left out.
    const containers = Object.fromEntries(Object.entries(this.state.containers).map(([id, { published: _p, pid: _q, ...c }]) => [id, { ...c, attachments: c.attachments.map((a) => ({ network: a.network, aliases: a.aliases, ipv4: a.ipv4 })) }]));
    fs.writeFileSync(`${this.file}.tmp`, JSON.stringify({ networks: this.state.networks, containers }));
    fs.renameSync(`${this.file}.tmp`, this.file);
  }

  private record(name: string, driver: string, subnet: Subnet | undefined, labels: Record<string, string>, options: Record<string, string>, internal: boolean, gateway?: number): NetworkRecord {
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

  private spaceOf(n: NetworkRecord): AddressSpace {
    let s = this.spaces.get(n.Id);
    if (!s) {
      const cfg = n.IPAM.Config[0]!;
      s = new AddressSpace(parseSubnet(cfg.Subnet), ipToNum(cfg.Gateway));
      this.spaces.set(n.Id, s);
    }
    return s;
  }

  // ---------- networks ----------

  list(): NetworkRecord[] {
    return this.state.networks;
  }

  /** By name, full id or unique id prefix, as Docker resolves networks. */
  find(ref: string): NetworkRecord | undefined {
    const byName = this.state.networks.find((n) => n.Name === ref);
    if (byName) return byName;
    const byId = this.state.networks.filter((n) => n.Id.startsWith(ref));
    return ref.length > 0 && byId.length === 1 ? byId[0] : undefined;
  }

  get(ref: string): NetworkRecord {
    const n = this.find(ref);
    if (!n) throw new EngineError(404, `network ${ref} not found`);
    return n;
  }

  isUserDefined(n: NetworkRecord): boolean {
    return !["bridge", "host", "none"].includes(n.Name);
  }

  /** POST /networks/create. */
  create(body: Record<string, unknown>): NetworkRecord {
    const name = String(body.Name ?? "");
    if (!name) throw new EngineError(400, "network name is required");
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw new EngineError(400, `invalid network name "${name}"`);
    if (this.find(name)?.Name === name) throw new EngineError(409, `network with name ${name} already exists`);
    const driver = String(body.Driver || "bridge");
    if (driver !== "bridge") {
      if (driver === "host" || driver === "null") throw new EngineError(403, `only one instance of "${driver}" network is allowed`);
      throw new EngineError(404, `plugin "${driver}" not found`);
    }
    const ipam = (body.IPAM ?? {}) as { Config?: { Subnet?: string; Gateway?: string; IPRange?: string }[] };
    const cfg = ipam.Config?.[0];
    let subnet: Subnet;
    let gateway: number | undefined;
    const taken = [...this.state.networks.filter((n) => n.IPAM.Config[0]).map((n) => parseSubnet(n.IPAM.Config[0]!.Subnet))];
    if (cfg?.Subnet) {
      try {
        subnet = parseSubnet(cfg.Subnet);
      } catch (e) {
        throw new EngineError(400, `Invalid subnet ${cfg.Subnet} : ${(e as Error).message}`);
      }
      if (subnet.prefix > 30) throw new EngineError(400, `invalid subnet ${cfg.Subnet}: too small for a network`);
      if (taken.some((t) => overlaps(t, subnet))) throw new EngineError(403, "Pool overlaps with other one on this address space");
      if (cfg.Gateway) {
        try {
          gateway = ipToNum(cfg.Gateway);
        } catch (e) {
          throw new EngineError(400, (e as Error).message);
        }
        if (!contains(subnet, gateway)) throw new EngineError(403, `no matching subnet for gateway ${cfg.Gateway}`);
      }
    } else {
      // The first pool entry that neither our networks nor this namespace's routes use.
      const routes = this.enabled ? routedSubnets() : [];
      const free = [...defaultPool()].find((p) => !taken.some((t) => overlaps(t, p)) && !routes.some((r) => r.prefix > 0 && overlaps(r, p)));
      if (!free) throw new EngineError(403, "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network");
      subnet = free;
    }
    const n = this.record(name, "bridge", subnet, (body.Labels as Record<string, string>) ?? {}, (body.Options as Record<string, string>) ?? {}, !!body.Internal, gateway);
    n.Attachable = !!body.Attachable;
    this.state.networks.push(n);
    this.spaceOf(n);
    this.save();
    if (this.enabled) {
      try {
        this.ensureBridge(n);
      } catch (e) {
        this.state.networks = this.state.networks.filter((x) => x !== n);
        this.save();
        throw new EngineError(500, `failed to create network ${name}: ${(e as Error).message}`);
      }
    }
    return n;
  }

  /** DELETE /networks/{id}. */
  remove(ref: string): void {
    const n = this.get(ref);
    if (!this.isUserDefined(n)) throw new EngineError(403, `${n.Name} is a pre-defined network and cannot be removed`);
    const users = this.endpointsOn(n).filter(([, cn]) => this.live.has(cn.id));
    if (users.length) throw new EngineError(403, `error while removing network: network ${n.Name} id ${n.Id} has active endpoints`);
    // Stopped containers keep their configuration; like Docker they then fail to start.
    this.teardownBridge(n);
    this.state.networks = this.state.networks.filter((x) => x !== n);
    this.spaces.delete(n.Id);
    this.save();
  }

  /** POST /networks/prune: user networks with no container attached (running or not). */
  prune(): string[] {
    const gone: string[] = [];
    for (const n of [...this.state.networks]) {
      if (!this.isUserDefined(n)) continue;
      if (Object.values(this.state.containers).some((c) => c.attachments.some((a) => a.network === n.Id))) continue;
      this.remove(n.Id);
      gone.push(n.Name);
    }
    return gone;
  }

  /** Containers attached to a network: [attachment, container id]. */
  private endpointsOn(n: NetworkRecord): [Attachment, { id: string; name: string }][] {
    const out: [Attachment, { id: string; name: string }][] = [];
    for (const [id, c] of Object.entries(this.state.containers)) for (const a of c.attachments) if (a.network === n.Id) out.push([a, { id, name: c.name }]);
    return out;
  }

  /** The Containers map of network inspect: running containers only, as Docker shows them. */
  inspect(n: NetworkRecord): Record<string, unknown> {
    const containers: Record<string, unknown> = {};
    for (const [a, c] of this.endpointsOn(n)) {
      if (!this.live.has(c.id) || !a.ip) continue;
      const prefix = parseSubnet(n.IPAM.Config[0]!.Subnet).prefix;
      containers[c.id] = { Name: c.name, EndpointID: a.endpointId, MacAddress: a.mac, IPv4Address: `${a.ip}/${prefix}`, IPv6Address: "" };
    }
    const { bridge: _b, ...rest } = n;
    // dockerd shows the default bridge's subnet without its gateway (which is still 172.17.0.1).
    const IPAM = n.Name === "bridge" ? { ...n.IPAM, Config: n.IPAM.Config.map(({ Subnet }) => ({ Subnet })) } : n.IPAM;
    return { ...rest, IPAM, Containers: containers };
  }

  // ---------- containers: create ----------

  /**
   * At create: check the network mode, port bindings, aliases and links the way dockerd does, and
   * remember them. `resolve` finds another container (for container:<x> and --link).
   */
  register(c: NetContainer, hostConfig: Record<string, unknown>, config: { ExposedPorts?: Record<string, object> }, networking: Record<string, unknown> | undefined, resolve: (ref: string) => NetContainer): void {
    const mode = typeof hostConfig.NetworkMode === "string" && hostConfig.NetworkMode ? hostConfig.NetworkMode : "default";
    const endpoints = ((networking ?? {}) as { EndpointsConfig?: Record<string, { Aliases?: string[] | null; IPAMConfig?: { IPv4Address?: string } | null } | null> }).EndpointsConfig ?? {};
    const attachments: Attachment[] = [];
    let netName = mode === "default" ? "bridge" : mode;
    if (mode.startsWith("container:")) netName = ""; // the other container is looked up at start
    const bindings = (hostConfig.PortBindings ?? {}) as Record<string, PortBinding[] | null>;
    const cleanBindings: Record<string, PortBinding[]> = {};
    for (const [key, list] of Object.entries(bindings)) {
      const port = normalizePort(key);
      for (const b of list ?? []) {
        if (!validHostPort(String(b?.HostPort ?? ""))) throw new EngineError(400, `invalid port specification: "${b.HostPort}"`);
        if (b?.HostIp && !/^[\d.]+$|:/.test(b.HostIp)) throw new EngineError(400, `invalid IP address: ${b.HostIp}`);
      }
      cleanBindings[port] = (list ?? []).map((b) => ({ HostIp: b?.HostIp ?? "", HostPort: String(b?.HostPort ?? "") }));
    }
    const exposed = Object.keys(config.ExposedPorts ?? {}).map(normalizePort);
    if ((netName === "host" || netName === "none" || !netName) && Object.keys(cleanBindings).length && netName !== "host") {
      // dockerd refuses published ports without a network to publish them on.
      throw new EngineError(400, `conflicting options: port publishing and the container type network mode`);
    }
    // Networks are kept by id when they exist, by the name given when not (start then fails).
    for (const [key, ep] of Object.entries(endpoints)) {
      const n = this.find(key === "default" ? "bridge" : key);
      const aliases = ep?.Aliases ?? [];
      if (n && aliases.length && !this.isUserDefined(n)) throw new EngineError(400, "network-scoped alias is supported only for containers in user defined networks");
      if (n && !this.isUserDefined(n) && n.Name !== netName) continue; // host/none/bridge are the mode's business
      attachments.push({ network: n?.Id ?? key, aliases, ipv4: ep?.IPAMConfig?.IPv4Address || undefined });
    }
    if (netName && netName !== "none" && netName !== "host") {
      const n = this.find(netName);
      if (n && n.Driver !== "bridge") throw new EngineError(400, `container cannot be connected to network ${n.Name}`);
      const id = n?.Id ?? netName;
      if (!attachments.some((a) => a.network === id)) attachments.unshift({ network: id, aliases: [] });
      else attachments.unshift(...attachments.splice(attachments.findIndex((a) => a.network === id), 1));
    }
    const links: { name: string; alias: string }[] = [];
    for (const l of (hostConfig.Links as string[] | null) ?? []) {
      const [target, alias] = l.split(":");
      let other: NetContainer;
      try {
        other = resolve(target!.replace(/^\//, ""));
      } catch {
        throw new EngineError(400, `could not get container for ${target}`);
      }
      links.push({ name: other.id, alias: (alias ?? other.name).replace(/^.*\//, "") });
    }
    this.state.containers[c.id] = { name: c.name, mode, attachments, links, exposed, bindings: cleanBindings, publishAll: !!hostConfig.PublishAllPorts };
    this.save();
  }

  /** The container is gone: forget its configuration. */
  forget(id: string): void {
    this.release(id);
    delete this.state.containers[id];
    this.save();
  }

  rename(id: string, name: string): void {
    const c = this.state.containers[id];
    if (c) {
      c.name = name;
      this.save();
    }
  }

  // ---------- containers: start and stop ----------

  /**
   * Before the container's processes exist: addresses, published ports (so a conflict fails the
   * start before anything runs), the files /etc/hosts and /etc/resolv.conf.
   * Returns how the shim must treat the network namespace.
   */
  async prepare(c: NetContainer, resolve: (ref: string) => NetContainer, hostResolv: string): Promise<{ hostNetwork: boolean; netns?: string; hosts: string; resolvConf: string; steps: string[]; env?: string[] }> {
    const cn = this.state.containers[c.id];
    const localhost = `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n`;
    if (!cn) return { hostNetwork: false, hosts: localhost, resolvConf: hostResolv, steps: [] };
    const steps: string[] = [];
    if (cn.mode === "host") return { hostNetwork: true, hosts: fs.existsSync("/etc/hosts") ? fs.readFileSync("/etc/hosts", "utf8") : localhost, resolvConf: hostResolv, steps };
    if (cn.mode === "none") return { hostNetwork: false, hosts: localhost, resolvConf: hostResolv, steps };
    if (cn.mode.startsWith("container:")) {
      const other = resolve(cn.mode.slice("container:".length));
      if (!other.running) throw new EngineError(409, `cannot join network of a non running container: ${other.id}`);
      const o = this.live.get(other.id);
      const first = o?.attachments.find((a) => a.ip);
      steps.push(`join the network namespace of ${other.name}: setns(/proc/${other.pid}/ns/net)`);
      return { hostNetwork: false, netns: `/proc/${other.pid}/ns/net`, hosts: localhost + (first ? `${first.ip}\t${other.hostname}\n` : ""), resolvConf: this.resolvFor(o, hostResolv), steps };
    }
    // Like dockerd, a network that does not exist (any more) fails the start, not the create.
    for (const a of cn.attachments) a.network = this.get(a.network).Id;
    if (!this.enabled) {
      steps.push("networking disabled in this engine: loopback only");
      this.live.set(c.id, cn);
      return { hostNetwork: false, hosts: localhost, resolvConf: hostResolv, steps };
    }
    // Legacy links: the other container's address under its alias, name and hostname.
    let linkLines = "";
    const env: string[] = [];
    const bridgeId = this.get("bridge").Id;
    for (const l of cn.links) {
      const other = this.live.get(l.name);
      const otherName = this.state.containers[l.name]?.name ?? l.name;
      if (other && !other.attachments.some((a) => a.network === bridgeId)) {
        throw new EngineError(400, `Cannot link to /${otherName}, as it does not belong to the default network`);
      }
      const ip = other?.attachments.find((a) => a.ip)?.ip;
      if (!ip) throw new EngineError(400, `Cannot link to a non running container: /${this.state.containers[l.name]?.name ?? l.name} AS /${c.name}/${l.alias}`);
      const otherC = resolve(l.name);
      linkLines += `${ip}\t${l.alias === otherC.name ? "" : `${l.alias} `}${otherC.hostname} ${otherC.name}\n`;
      env.push(...linkEnvironment(c.name, l.alias, ip, this.state.containers[l.name]?.exposed ?? [], otherC.env ?? []));
    }
    this.live.set(c.id, cn); // from here on, release() gives back whatever was taken
    try {
      cn.attachments.forEach((a, i) => {
        const n = this.state.networks.find((x) => x.Id === a.network)!;
        this.ensureBridge(n);
        const ip = this.spaceOf(n).allocate(a.ipv4);
        a.ip = numToIp(ip);
        a.mac = `02:42:${[ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
        a.endpointId = randomBytes(32).toString("hex");
        a.iface = `eth${i}`;
        a.hostVeth = `veth${randomBytes(4).toString("hex").slice(0, 7)}`;
      });
      cn.published = await this.publish(c, cn);
    } catch (e) {
      this.release(c.id);
      throw e;
    }
    const first = cn.attachments[0];
    let hosts = localhost + linkLines;
    if (first?.ip) hosts += `${first.ip}\t${c.hostname}\n`;
    return { hostNetwork: false, hosts, resolvConf: this.resolvFor(cn, hostResolv), steps, env };
  }

  /** User networks ask the embedded DNS (at the gateway); the default bridge gets the host's servers. */
  private resolvFor(cn: ContainerNet | undefined, hostResolv: string): string {
    const user = cn?.attachments.map((a) => this.state.networks.find((n) => n.Id === a.network)).find((n) => n && this.isUserDefined(n));
    if (!user || !this.enabled) return hostResolv;
    const search = hostResolv.split("\n").filter((l) => /^(search|options)\s/.test(l));
    return [`nameserver ${user.IPAM.Config[0]!.Gateway}`, ...search.filter((l) => !l.startsWith("options")), "options ndots:0", ""].join("\n");
  }

  /**
   * The container's init exists (in its new, empty network namespace) and waits for "go": make its
   * veth pairs, move one end in as eth<N>, address it, route through the first gateway.
   */
  attach(c: NetContainer, pid: number): string[] {
    const cn = this.live.get(c.id);
    if (!cn || !this.enabled || cn.mode === "host" || cn.mode === "none" || cn.mode.startsWith("container:")) return [];
    cn.pid = pid;
    const steps: string[] = [];
    cn.attachments.forEach((a, i) => steps.push(...this.plugIn(cn, a, pid, i === 0)));
    return steps;
  }

  private plugIn(cn: ContainerNet, a: Attachment, pid: number, route: boolean): string[] {
    const n = this.state.networks.find((x) => x.Id === a.network)!;
    const { Subnet, Gateway } = n.IPAM.Config[0]!;
    const prefix = parseSubnet(Subnet).prefix;
    const host = [`link add ${a.hostVeth} type veth peer name ${a.iface} address ${a.mac} netns ${pid}`, `link set ${a.hostVeth} master ${n.bridge} up`];
    const inside = [`addr add ${a.ip}/${prefix} brd + dev ${a.iface}`, `link set ${a.iface} up`, ...(route ? [`route add default via ${Gateway} dev ${a.iface}`] : [])];
    ipBatch(host);
    ipBatch(inside, pid);
    return [...host.map((x) => `ip ${x}`), ...inside.map((x) => `nsenter --net=/proc/${pid}/ns/net ip ${x}`)];
  }

  /** The container stopped (its namespace, and with it the veth pairs, are gone): free what it held. */
  release(id: string): void {
    const cn = this.live.get(id);
    if (!cn) return;
    for (const p of cn.published ?? []) {
      for (const x of p.proxies) x.close();
      for (const rule of p.dnat) this.iptables(["-t", "nat", "-D", ...rule], true);
    }
    cn.published = undefined;
    for (const a of cn.attachments) {
      if (a.ip) this.spaces.get(a.network)?.release(ipToNum(a.ip));
      if (a.hostVeth) {
        // Normally gone with the namespace; a container that never got that far leaves nothing either.
        try {
          execFileSync("ip", ["link", "del", a.hostVeth], { stdio: "ignore" });
        } catch {
          /* already gone */
        }
      }
      Object.assign(a, { ip: undefined, mac: undefined, endpointId: undefined, iface: undefined, hostVeth: undefined });
    }
    cn.pid = undefined;
    this.live.delete(id);
  }

  /** `docker network connect`: to a running container at once (eth<N>), to a stopped one at its next start. */
  connect(ref: string, c: NetContainer, body: { EndpointConfig?: { Aliases?: string[] | null; IPAMConfig?: { IPv4Address?: string } | null } }): void {
    const n = this.get(ref);
    if (n.Driver !== "bridge") throw new EngineError(400, `container cannot be disconnected from host network or connected to host network`);
    const cn = this.state.containers[c.id];
    if (!cn) throw new EngineError(400, `container ${c.id} has no network configuration`);
    if (cn.mode === "host" || cn.mode === "none" || cn.mode.startsWith("container:")) throw new EngineError(400, `container sharing network namespace with another container or host cannot be connected to any other network`);
    if (cn.attachments.some((a) => a.network === n.Id)) throw new EngineError(403, `endpoint with name ${c.name} already exists in network ${n.Name}`);
    const aliases = body.EndpointConfig?.Aliases ?? [];
    if (aliases.length && !this.isUserDefined(n)) throw new EngineError(400, "network-scoped alias is supported only for containers in user defined networks");
    const a: Attachment = { network: n.Id, aliases, ipv4: body.EndpointConfig?.IPAMConfig?.IPv4Address || undefined };
    const live = this.live.get(c.id);
    if (live && c.running && this.enabled) {
      this.ensureBridge(n);
      const ip = this.spaceOf(n).allocate(a.ipv4);
      a.ip = numToIp(ip);
      a.mac = `02:42:${[ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
      a.endpointId = randomBytes(32).toString("hex");
      a.iface = `eth${Math.max(-1, ...cn.attachments.map((x) => Number(x.iface?.slice(3) ?? -1))) + 1}`;
      a.hostVeth = `veth${randomBytes(4).toString("hex").slice(0, 7)}`;
      try {
        this.plugIn(cn, a, c.pid, !cn.attachments.some((x) => x.ip));
      } catch (e) {
        this.spaceOf(n).release(ip);
        throw new EngineError(500, `failed to connect ${c.name} to ${n.Name}: ${(e as Error).message}`);
      }
    }
    cn.attachments.push(a);
    this.save();
  }

  disconnect(ref: string, c: NetContainer): void {
    const n = this.get(ref);
    const cn = this.state.containers[c.id];
    const a = cn?.attachments.find((x) => x.network === n.Id);
    if (!cn || !a) throw new EngineError(403, `container ${c.id} is not connected to network ${n.Name}`);
    if (a.hostVeth) {
      try {
        execFileSync("ip", ["link", "del", a.hostVeth], { stdio: "ignore" });
      } catch {
        /* gone with the namespace */
      }
    }
    if (a.ip) this.spaces.get(n.Id)?.release(ipToNum(a.ip));
    cn.attachments = cn.attachments.filter((x) => x !== a);
    this.save();
  }

  // ---------- publishing ----------

  /** -p and -P: one proxy per host address and port, on the container's first address. */
  private async publish(c: NetContainer, cn: ContainerNet): Promise<Published[]> {
    const target = cn.attachments[0]?.ip;
    const out: Published[] = [];
    const wanted: [string, PortBinding][] = [];
    for (const [key, list] of Object.entries(cn.bindings)) for (const b of list.length ? list : [{ HostIp: "", HostPort: "" }]) wanted.push([key, b]);
    if (cn.publishAll) for (const key of cn.exposed) if (!cn.bindings[key]) wanted.push([key, { HostIp: "", HostPort: "" }]);
    if (!target || !wanted.length) return out;
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
        const clash = (p: number) => this.portTaken(hostIp, p, proto);
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
        if (this.dnatReady) {
          for (const ip of hostIps.filter((x) => !x.includes(":"))) {
            const rule = [this.chains.dnat, "-p", proto, ...(ip === "0.0.0.0" ? [] : ["-d", ip]), "--dport", String(port), "-j", "DNAT", "--to-destination", `${target}:${containerPort}`];
            if (this.iptables(["-t", "nat", "-A", ...rule])) dnat.push(rule);
          }
        }
        const pub: Published = { key, hostIps, hostPort: port, proxies: [proxy], dnat };
        out.push(pub);
        cn.published = out; // so that the next binding of this container sees its own ports
      }
    } catch (e) {
      for (const p of out) {
        for (const x of p.proxies) x.close();
        for (const rule of p.dnat) this.iptables(["-t", "nat", "-D", ...rule], true);
      }
      cn.published = undefined;
      throw e;
    }
    return out;
  }

  private portTaken(ip: string, port: number, proto: string): boolean {
    for (const cn of this.live.values()) {
      for (const p of cn.published ?? []) {
        if (p.hostPort !== port || !p.key.endsWith(`/${proto}`)) continue;
        if (p.hostIps.includes(ip) || p.hostIps.includes("0.0.0.0") || ip === "0.0.0.0") return true;
      }
    }
    return false;
  }

  // ---------- what inspect and ps show ----------

  /** NetworkSettings of container inspect. */
  settings(id: string, running: boolean, pid: number): Record<string, unknown> {
    const cn = this.state.containers[id];
    const live = running ? this.live.get(id) : undefined;
    const ports: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
    if (cn && running && !cn.mode.startsWith("container:") && cn.mode !== "none") {
      for (const k of cn.exposed) ports[k] = null;
      for (const k of Object.keys(cn.bindings)) ports[k] = null;
      for (const p of live?.published ?? []) for (const ip of p.hostIps) (ports[p.key] ??= []).push({ HostIp: ip, HostPort: String(p.hostPort) });
    }
    const networks: Record<string, unknown> = {};
    const names = cn ? (cn.mode === "host" || cn.mode === "none" ? [cn.mode] : []) : [];
    for (const name of names) {
      const n = this.find(name);
      networks[name] = endpoint(n?.Id ?? "", [], undefined, undefined);
    }
    for (const a of cn?.attachments ?? []) {
      const n = this.state.networks.find((x) => x.Id === a.network);
      if (!n) continue;
      const aliases = this.isUserDefined(n) ? [...a.aliases, shortId(id)] : null;
      networks[n.Name] = endpoint(n.Id, aliases, running ? a : undefined, n);
    }
    const first = live?.attachments.find((a) => a.ip);
    const firstNet = first && this.state.networks.find((x) => x.Id === first.network);
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
  ports(id: string): { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] {
    const cn = this.state.containers[id];
    const live = this.live.get(id);
    if (!cn || !live) return []; // a stopped container shows no ports, as in dockerd
    const out: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] = [];
    for (const p of live?.published ?? []) {
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
  networkNames(id: string): string[] {
    const cn = this.state.containers[id];
    if (!cn) return [];
    if (cn.mode === "host" || cn.mode === "none") return [cn.mode];
    return cn.attachments.map((a) => this.state.networks.find((n) => n.Id === a.network)?.Name).filter((x): x is string => !!x);
  }

  // ---------- name resolution ----------

  /**
   * The embedded DNS: the names of running containers that share a user network with the asking
   * container (found by its address), whichever of its networks' servers it asked.
   */
  private lookup(name: string, client: string): string[] | undefined {
    let asking: ContainerNet | undefined;
    for (const cn of this.live.values()) if (cn.attachments.some((a) => a.ip === client)) asking = cn;
    if (!asking) return undefined;
    const ips: string[] = [];
    for (const mine of asking.attachments) {
      const net = this.state.networks.find((n) => n.Id === mine.network);
      if (!net || !this.isUserDefined(net)) continue;
      const suffix = `.${net.Name.toLowerCase()}`;
      const bare = name.endsWith(suffix) ? name.slice(0, -suffix.length) : name;
      for (const [a, c] of this.endpointsOn(net)) {
        if (!a.ip || !this.live.has(c.id)) continue;
        const names = [c.name, ...a.aliases, shortId(c.id)].map((x) => x.toLowerCase());
        if ((names.includes(bare) || names.includes(name)) && !ips.includes(a.ip)) ips.push(a.ip);
      }
    }
    return ips.length ? ips : undefined;
  }

  // ---------- bridges and iptables ----------

  /**
   * The bridge of a network, made if missing. Each bridge this engine makes carries its owner tag
   * as the link's alias (`ip link show` prints it): one found with our tag was left by this
   * engine's own earlier run (a crash) and is taken over; one without it belongs to someone else
   * (another engine, a dockerd, the administrator) and is never used or removed. The default
   * bridge is claimed before any other, so the iptables chains named after it are ours alone.
   */
  private ensureBridge(n: NetworkRecord): void {
    if (this.bridgesUp.has(n.Id) || !n.bridge) return;
    if (n.Name !== "bridge") this.ensureBridge(this.get("bridge"));
    const { Subnet, Gateway } = n.IPAM.Config[0]!;
    const prefix = parseSubnet(Subnet).prefix;
    const alias = linkAlias(n.bridge);
    if (alias === undefined) {
      ipBatch([`link add name ${n.bridge} type bridge`, `addr add ${Gateway}/${prefix} dev ${n.bridge}`, `link set ${n.bridge} up`]);
      setLinkAlias(n.bridge, this.owner);
    } else if (alias === this.owner) {
      ipBatch([`addr replace ${Gateway}/${prefix} dev ${n.bridge}`, `link set ${n.bridge} up`]);
    } else {
      throw new EngineError(500, `the bridge ${n.bridge} exists and was not made by this engine (${alias ? `its owner: ${alias}` : "it has no owner tag"}): another engine or program uses it; start this engine with a bridge of its own (--bridge <name> --bridge-subnet <cidr>)`);
    }
    this.bridgesUp.add(n.Id);
    this.setupTables();
    this.rules(n, "-A");
    if (this.isUserDefined(n)) {
      const dns = new DnsServer(Gateway, (name, client) => this.lookup(name, client));
      this.dns.set(n.Id, dns);
      dns.listen().catch((e: Error) => this.warn(`embedded DNS on ${Gateway}:53 for network ${n.Name}: ${e.message}`));
    }
  }

  private teardownBridge(n: NetworkRecord): void {
    this.dns.get(n.Id)?.close();
    this.dns.delete(n.Id);
    if (!this.bridgesUp.has(n.Id) || !n.bridge) return;
    this.rules(n, "-D");
    // Only while it still carries our tag: a bridge someone else made since is theirs.
    if (linkAlias(n.bridge) === this.owner) {
      try {
        execFileSync("ip", ["link", "del", n.bridge], { stdio: "ignore" });
      } catch {
        /* already gone */
      }
    }
    this.bridgesUp.delete(n.Id);
  }

  private warn(m: string): void {
    if (this.warnings.includes(m)) return;
    this.warnings.push(m);
    this.log(`network: ${m}`);
  }

  private iptables(args: string[], quiet = false): boolean {
    try {
      execFileSync("iptables", ["-w", ...args], { stdio: ["ignore", "ignore", "pipe"] });
      return true;
    } catch (e) {
      if (!quiet) this.warn(`iptables ${args.join(" ")}: ${(e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message}`);
      return false;
    }
  }

  private get chains() {
    const c = this.chain;
    return { fwd: `BERTH-FWD-${c}`, iso1: `BERTH-ISO1-${c}`, iso2: `BERTH-ISO2-${c}`, nat: `BERTH-NAT-${c}`, dnat: `BERTH-DNAT-${c}` };
  }

  /** Our chains, hooked into FORWARD and POSTROUTING once; ip_forward on (this namespace's). */
  private setupTables(): void {
    if (this.tablesReady) return;
    this.tablesReady = true;
    try {
      fs.writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
    } catch (e) {
      this.warn(`cannot enable IPv4 forwarding: ${(e as Error).message}`);
    }
    const { fwd, iso1, iso2, nat, dnat } = this.chains;
    for (const [table, chain] of [["filter", fwd], ["filter", iso1], ["filter", iso2], ["nat", nat], ["nat", dnat]] as const) {
      if (!this.iptables(["-t", table, "-N", chain], true)) this.iptables(["-t", table, "-F", chain]);
    }
    this.iptables(["-A", fwd, "-j", iso1]);
    if (!this.iptables(["-C", "FORWARD", "-j", fwd], true)) this.iptables(["-I", "FORWARD", "1", "-j", fwd]);
    if (!this.iptables(["-t", "nat", "-C", "POSTROUTING", "-j", nat], true)) this.iptables(["-t", "nat", "-A", "POSTROUTING", "-j", nat]);
    // Published ports: DNAT for packets to a local address, from outside (PREROUTING) and from
    // this namespace's own processes (OUTPUT). 127.0.0.1 is included only if route_localnet can be
    // set (a DNATed loopback packet is otherwise dropped as martian); its replies need the
    // masquerade below. Packets from our bridges are left to the proxy (no hairpin NAT).
    let localnet = true;
    try {
      fs.writeFileSync("/proc/sys/net/ipv4/conf/all/route_localnet", "1");
    } catch {
      localnet = false;
    }
    const jump = (chain: string, extra: string[]) => {
      const rule = [chain, "-m", "addrtype", "--dst-type", "LOCAL", ...extra, "-j", dnat];
      return this.iptables(["-t", "nat", "-C", ...rule], true) || this.iptables(["-t", "nat", "-A", ...rule]);
    };
    this.dnatReady = jump("PREROUTING", []) && jump("OUTPUT", localnet ? [] : ["!", "-d", "127.0.0.0/8"]);
    if (localnet) this.iptables(["-t", "nat", "-A", nat, "-s", "127.0.0.0/8", "!", "-o", "lo", "-j", "MASQUERADE"]);
  }
  private dnatReady = false;

  /** A network's rules: accept its traffic, isolate it from our other bridges, masquerade what leaves. */
  private rules(n: NetworkRecord, op: "-A" | "-D"): void {
    const { fwd, iso1, iso2, nat, dnat } = this.chains;
    const br = n.bridge!;
    this.iptables(["-t", "nat", op === "-A" ? "-I" : "-D", dnat, "-i", br, "-j", "RETURN"], op === "-D");
    this.iptables([op, iso1, "-i", br, "!", "-o", br, "-j", iso2], op === "-D");
    this.iptables([op, iso2, "-o", br, "-j", "DROP"], op === "-D");
    this.iptables([op, fwd, "-i", br, "-j", "ACCEPT"], op === "-D");
    this.iptables([op, fwd, "-o", br, "-j", "ACCEPT"], op === "-D");
    if (!n.Internal) this.iptables(["-t", "nat", op, nat, "-s", n.IPAM.Config[0]!.Subnet, "!", "-o", br, "-j", "MASQUERADE"], op === "-D");
  }

  /** Engine shutdown: proxies, DNS servers, bridges and our iptables chains go. */
  close(): void {
    for (const id of [...this.live.keys()]) this.release(id);
    for (const n of this.state.networks) this.teardownBridge(n);
    if (!this.tablesReady) return;
    const { fwd, iso1, iso2, nat, dnat } = this.chains;
    this.iptables(["-D", "FORWARD", "-j", fwd], true);
    this.iptables(["-t", "nat", "-D", "POSTROUTING", "-j", nat], true);
    for (const chain of ["PREROUTING", "OUTPUT"]) {
      for (const extra of [[], ["!", "-d", "127.0.0.0/8"]]) this.iptables(["-t", "nat", "-D", chain, "-m", "addrtype", "--dst-type", "LOCAL", ...extra, "-j", dnat], true);
    }
    for (const [table, chain] of [["filter", fwd], ["filter", iso1], ["filter", iso2], ["nat", nat], ["nat", dnat]] as const) {
      this.iptables(["-t", table, "-F", chain], true);
      this.iptables(["-t", table, "-X", chain], true);
    }
    this.tablesReady = false;
  }
}

/** Docker's legacy-link variables: ALIAS_NAME, ALIAS_PORT[_<port>_<PROTO>[_ADDR|_PORT|_PROTO]], ALIAS_ENV_*. */
function linkEnvironment(self: string, alias: string, ip: string, exposed: string[], env: string[]): string[] {
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

/** `ip -batch -`, in the engine's namespace or (pid) in a container's. */
function ipBatch(cmds: string[], pid?: number): void {
  const argv = pid ? ["nsenter", `--net=/proc/${pid}/ns/net`, "ip", "-batch", "-"] : ["ip", "-batch", "-"];
  try {
    execFileSync(argv[0]!, argv.slice(1), { input: `${cmds.join("\n")}\n`, stdio: ["pipe", "ignore", "pipe"] });
  } catch (e) {
    throw new Error(`${argv.join(" ")}: ${(e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message}`);
  }
}

/**
 * A link's alias ("" if it has none), or undefined if there is no such link. Asked through
 * netlink (`ip -j`), not /sys/class/net: a process moved into a namespace with nsenter still sees
 * the sysfs of the namespace that mounted it.
 */
function linkAlias(name: string): string | undefined {
  let out: string;
  try {
    out = execFileSync("ip", ["-j", "link", "show", "dev", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return undefined;
  }
  const [link] = JSON.parse(out || "[]") as { ifalias?: string }[];
  return link ? (link.ifalias ?? "") : undefined;
}

function setLinkAlias(name: string, alias: string): void {
  execFileSync("ip", ["link", "set", "dev", name, "alias", alias], { stdio: ["ignore", "ignore", "pipe"] });
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
