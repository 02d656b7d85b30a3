/**
 * Container networking, done the way Docker's bridge driver does it, with iproute2 and iptables in
 * the engine's network namespace (on a learner's sandbox: the sandbox's own):
 *
 *  - a network is a Linux bridge (`berth0` for the default "bridge", `br-<id>` for user networks)
 *    holding the gateway address of its subnet (this file: networks and their bridges);
 *  - a container gets a veth pair per network: one end on the bridge, the other moved into the
 *    container's namespace as eth0, eth1 ... with its address and a default route through the
 *    first network's gateway (endpoints.ts);
 *  - iptables: MASQUERADE for traffic leaving a subnet, ACCEPT in FORWARD for our bridges (a host
 *    where Docker ran has policy DROP), Docker's two-stage isolation (iptables.ts);
 *  - `-p`: a userland proxy and a DNAT rule per published port (ports.ts); user networks: an
 *    embedded DNS (dns.ts); what inspect and ps show (views.ts); what is remembered (records.ts).
 *
 * Everything is set up lazily (the first container or `network create`) and removed by close(), so
 * an engine that never networks leaves no trace; and it removes only what it made itself: several
 * engines (and a dockerd) may share a host. Every `ip` and `iptables` runs as an asynchronous
 * child process (ip.ts); a starting container's veth pairs are made by its shim (`veths` below),
 * without any.
 */
import fs from "node:fs";
import path from "node:path";
import { EngineError } from "../errors";
import type { EventLog } from "../events/log";
import { DnsServer } from "./dns";
import { assignEndpoint, LOCALHOST_HOSTS, linkEnvironment, plugIn, unplug, vethSpec } from "./endpoints";
import { deleteLink, ipBatch, linkAlias, setLinkAlias } from "./ip";
import { AddressSpace, contains, defaultPool, ipToNum, overlaps, parseSubnet, routedSubnets, type Subnet } from "./ipam";
import { Tables } from "./iptables";
import { normalizePort, parseBindings, publish, unpublish } from "./ports";
import { findNetwork, isUserDefined, loadState, newRecord, saveState, shortId, type Attachment, type ContainerNet, type NetContainer, type NetworkRecord, type PortBinding, type State } from "./records";
import { containerNetworkNames, containerPorts, containerSettings, inspectNetwork, type PortView } from "./views";

export type { Attachment, NetContainer, NetworkRecord, PortBinding } from "./records";
export { normalizePort } from "./ports";

export interface NetworkOptions {
  /** The default bridge's interface name (default berth0). */
  bridge?: string;
  /** The default bridge's subnet (default 172.17.0.0/16, Docker's). */
  subnet?: string;
  /** false: every container gets only loopback (the engine's behaviour before bridges). */
  enabled?: boolean;
}

export class NetworkManager {
  readonly enabled: boolean;
  readonly defaultBridge: string;
  private readonly file: string;
  private state: State;
  private spaces = new Map<string, AddressSpace>(); // network id -> addresses in use
  private bridges = new Map<string, Promise<void>>(); // network id -> its bridge (and rules, DNS) made
  private dns = new Map<string, DnsServer>();
  private live = new Map<string, ContainerNet>(); // container id -> runtime view (same objects as state)
  private tables: Tables;
  /** Deletions started by release(): close() waits for them. */
  private pending = new Set<Promise<void>>();
  /** The alias of every bridge this engine makes: its state dir, which no other engine shares. */
  private readonly owner: string;
  /** Problems met while setting up (iptables missing ...): shown in `docker info` warnings and logs. */
  readonly warnings: string[] = [];

  constructor(
    root: string,
    opts: NetworkOptions = {},
    private log: (m: string) => void = () => {},
    /** `docker events`: network create, connect, disconnect, destroy, as dockerd sends them. */
    private readonly events?: EventLog,
  ) {
    this.enabled = opts.enabled !== false;
    this.defaultBridge = opts.bridge ?? "berth0";
    if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(this.defaultBridge)) throw new Error(`invalid bridge name: ${this.defaultBridge}`);
    const defaultSubnet: Subnet = parseSubnet(opts.subnet ?? "172.17.0.0/16");
    this.tables = new Tables(this.defaultBridge.toUpperCase().replace(/[^A-Z0-9]/g, "").slice(0, 12), (m) => this.warn(m));
    this.owner = `berth-engine:${path.resolve(root)}`.slice(0, 255);
    const dir = path.join(root, "network");
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, "state.json");
    this.state = loadState(this.file, this.defaultBridge, defaultSubnet);
    for (const n of this.state.networks) if (n.Driver === "bridge") this.spaceOf(n);
    this.save();
  }

  private save(): void {
    saveState(this.file, this.state);
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

  private network(id: string): NetworkRecord {
    return this.state.networks.find((x) => x.Id === id)!;
  }

  // ---------- networks ----------

  list(): NetworkRecord[] {
    return this.state.networks;
  }

  find(ref: string): NetworkRecord | undefined {
    return findNetwork(this.state, ref);
  }

  get(ref: string): NetworkRecord {
    const n = this.find(ref);
    if (!n) throw new EngineError(404, `network ${ref} not found`);
    return n;
  }

  isUserDefined(n: NetworkRecord): boolean {
    return isUserDefined(n);
  }

  /** POST /networks/create. */
  async create(body: Record<string, unknown>): Promise<NetworkRecord> {
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
    const taken = this.state.networks.filter((n) => n.IPAM.Config[0]).map((n) => parseSubnet(n.IPAM.Config[0]!.Subnet));
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
    const n = newRecord(name, "bridge", subnet, (body.Labels as Record<string, string>) ?? {}, (body.Options as Record<string, string>) ?? {}, !!body.Internal, gateway);
    n.Attachable = !!body.Attachable;
    this.state.networks.push(n);
    this.event(n, "create");
    this.spaceOf(n);
    this.save();
    if (this.enabled) {
      try {
        await this.ensureBridge(n);
      } catch (e) {
        this.state.networks = this.state.networks.filter((x) => x !== n);
        this.spaces.delete(n.Id);
        this.save();
        throw new EngineError(500, `failed to create network ${name}: ${(e as Error).message}`);
      }
    }
    return n;
  }

  /** DELETE /networks/{id}. */
  async remove(ref: string): Promise<void> {
    const n = this.get(ref);
    if (!isUserDefined(n)) throw new EngineError(403, `${n.Name} is a pre-defined network and cannot be removed`);
    const users = Object.entries(this.state.containers).filter(([id, c]) => this.live.has(id) && c.attachments.some((a) => a.network === n.Id));
    if (users.length) throw new EngineError(403, `error while removing network: network ${n.Name} id ${n.Id} has active endpoints`);
    // Stopped containers keep their configuration; like Docker they then fail to start.
    this.state.networks = this.state.networks.filter((x) => x !== n);
    this.spaces.delete(n.Id);
    this.save();
    await this.teardownBridge(n);
    this.event(n, "destroy");
  }

  private event(n: NetworkRecord, action: string, container?: string): void {
    this.events?.publish("network", action, n.Id, { ...(container ? { container } : {}), name: n.Name, type: n.Driver });
  }

  /** POST /networks/prune: user networks with no container attached (running or not). */
  async prune(): Promise<string[]> {
    const gone: string[] = [];
    for (const n of [...this.state.networks]) {
      if (!isUserDefined(n)) continue;
      if (Object.values(this.state.containers).some((c) => c.attachments.some((a) => a.network === n.Id))) continue;
      await this.remove(n.Id);
      gone.push(n.Name);
    }
    return gone;
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
    const bindings = parseBindings((hostConfig.PortBindings ?? {}) as Record<string, PortBinding[] | null>);
    const exposed = Object.keys(config.ExposedPorts ?? {}).map(normalizePort);
    if ((netName === "none" || !netName) && Object.keys(bindings).length) {
      // dockerd refuses published ports without a network to publish them on.
      throw new EngineError(400, `conflicting options: port publishing and the container type network mode`);
    }
    // Networks are kept by id when they exist, by the name given when not (start then fails).
    for (const [key, ep] of Object.entries(endpoints)) {
      const n = this.find(key === "default" ? "bridge" : key);
      const aliases = ep?.Aliases ?? [];
      if (n && aliases.length && !isUserDefined(n)) throw new EngineError(400, "network-scoped alias is supported only for containers in user defined networks");
      if (n && !isUserDefined(n) && n.Name !== netName) continue; // host/none/bridge are the mode's business
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
    this.state.containers[c.id] = { name: c.name, mode, attachments, links, exposed, bindings, publishAll: !!hostConfig.PublishAllPorts };
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
   * Returns how the shim must treat the network namespace, and the veth pairs it is to make
   * (berth-shim --veth) as soon as the container's namespace exists.
   */
  async prepare(c: NetContainer, resolve: (ref: string) => NetContainer, hostResolv: string): Promise<{ hostNetwork: boolean; netns?: string; hosts: string; resolvConf: string; steps: string[]; env?: string[]; veths?: string[] }> {
    const cn = this.state.containers[c.id];
    if (!cn) return { hostNetwork: false, hosts: LOCALHOST_HOSTS, resolvConf: hostResolv, steps: [] };
    const steps: string[] = [];
    if (cn.mode === "host") return { hostNetwork: true, hosts: fs.existsSync("/etc/hosts") ? fs.readFileSync("/etc/hosts", "utf8") : LOCALHOST_HOSTS, resolvConf: hostResolv, steps };
    if (cn.mode === "none") return { hostNetwork: false, hosts: LOCALHOST_HOSTS, resolvConf: hostResolv, steps };
    if (cn.mode.startsWith("container:")) {
      const other = resolve(cn.mode.slice("container:".length));
      if (!other.running) throw new EngineError(409, `cannot join network of a non running container: ${other.id}`);
      const o = this.live.get(other.id);
      const first = o?.attachments.find((a) => a.ip);
      steps.push(`join the network namespace of ${other.name}: setns(/proc/${other.pid}/ns/net)`);
      return { hostNetwork: false, netns: `/proc/${other.pid}/ns/net`, hosts: LOCALHOST_HOSTS + (first ? `${first.ip}\t${other.hostname}\n` : ""), resolvConf: this.resolvFor(o, hostResolv), steps };
    }
    // Like dockerd, a network that does not exist (any more) fails the start, not the create.
    for (const a of cn.attachments) a.network = this.get(a.network).Id;
    if (!this.enabled) {
      steps.push("networking disabled in this engine: loopback only");
      this.live.set(c.id, cn);
      for (const a of cn.attachments) this.event(this.network(a.network), "connect", c.id);
      return { hostNetwork: false, hosts: LOCALHOST_HOSTS, resolvConf: hostResolv, steps };
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
      if (!ip) throw new EngineError(400, `Cannot link to a non running container: /${otherName} AS /${c.name}/${l.alias}`);
      const otherC = resolve(l.name);
      linkLines += `${ip}\t${l.alias === otherC.name ? "" : `${l.alias} `}${otherC.hostname} ${otherC.name}\n`;
      env.push(...linkEnvironment(c.name, l.alias, ip, this.state.containers[l.name]?.exposed ?? [], otherC.env ?? []));
    }
    this.live.set(c.id, cn); // from here on, release() gives back whatever was taken
    for (const a of cn.attachments) this.event(this.network(a.network), "connect", c.id);
    try {
      for (const [i, a] of cn.attachments.entries()) {
        const n = this.network(a.network);
        await this.ensureBridge(n);
        assignEndpoint(a, this.spaceOf(n), i);
      }
      cn.published = await publish(c, cn, this.live.values(), this.tables);
    } catch (e) {
      this.release(c.id);
      throw e;
    }
    const first = cn.attachments[0];
    let hosts = LOCALHOST_HOSTS + linkLines;
    if (first?.ip) hosts += `${first.ip}\t${c.hostname}\n`;
    const veths = cn.attachments.map((a, i) => vethSpec(this.network(a.network), a, i === 0));
    return { hostNetwork: false, hosts, resolvConf: this.resolvFor(cn, hostResolv), steps, env, veths };
  }

  /** User networks ask the embedded DNS (at the gateway); the default bridge gets the host's servers. */
  private resolvFor(cn: ContainerNet | undefined, hostResolv: string): string {
    const user = cn?.attachments.map((a) => this.state.networks.find((n) => n.Id === a.network)).find((n) => n && isUserDefined(n));
    if (!user || !this.enabled) return hostResolv;
    const search = hostResolv.split("\n").filter((l) => /^(search|options)\s/.test(l));
    return [`nameserver ${user.IPAM.Config[0]!.Gateway}`, ...search.filter((l) => !l.startsWith("options")), "options ndots:0", ""].join("\n");
  }

  /** The container's init exists, its veth pairs plugged in by the shim: remember its pid. */
  attached(c: NetContainer, pid: number): void {
    const cn = this.live.get(c.id);
    if (cn) cn.pid = pid;
  }

  /**
   * The container stopped (its namespace, and with it the veth pairs, are gone): free what it held
   * at once; the leftover links and rules are removed in the background (close() waits for them).
   */
  release(id: string): void {
    const cn = this.live.get(id);
    if (!cn) return;
    this.live.delete(id);
    for (const a of cn.attachments) {
      const n = this.state.networks.find((x) => x.Id === a.network);
      if (n) this.event(n, "disconnect", id);
    }
    const published = cn.published ?? [];
    cn.published = undefined;
    cn.pid = undefined;
    const work = Promise.all([unpublish(published, this.tables), ...cn.attachments.map((a) => unplug(a, this.spaces.get(a.network), !a.byShim))]).then(
      () => {},
      (e: Error) => this.warn(`releasing the network of ${shortId(id)}: ${e.message}`),
    );
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }

  /** `docker network connect`: to a running container at once (eth<N>), to a stopped one at its next start. */
  async connect(ref: string, c: NetContainer, body: { EndpointConfig?: { Aliases?: string[] | null; IPAMConfig?: { IPv4Address?: string } | null } }): Promise<void> {
    const n = this.get(ref);
    if (n.Driver !== "bridge") throw new EngineError(400, `container cannot be disconnected from host network or connected to host network`);
    const cn = this.state.containers[c.id];
    if (!cn) throw new EngineError(400, `container ${c.id} has no network configuration`);
    if (cn.mode === "host" || cn.mode === "none" || cn.mode.startsWith("container:")) throw new EngineError(400, `container sharing network namespace with another container or host cannot be connected to any other network`);
    if (cn.attachments.some((a) => a.network === n.Id)) throw new EngineError(403, `endpoint with name ${c.name} already exists in network ${n.Name}`);
    const aliases = body.EndpointConfig?.Aliases ?? [];
    if (aliases.length && !isUserDefined(n)) throw new EngineError(400, "network-scoped alias is supported only for containers in user defined networks");
    const a: Attachment = { network: n.Id, aliases, ipv4: body.EndpointConfig?.IPAMConfig?.IPv4Address || undefined };
    if (this.live.has(c.id) && c.running && this.enabled) {
      await this.ensureBridge(n);
      assignEndpoint(a, this.spaceOf(n), Math.max(-1, ...cn.attachments.map((x) => Number(x.iface?.slice(3) ?? -1))) + 1);
      try {
        await plugIn(n, a, c.pid, !cn.attachments.some((x) => x.ip));
      } catch (e) {
        await unplug(a, this.spaceOf(n));
        throw new EngineError(500, `failed to connect ${c.name} to ${n.Name}: ${(e as Error).message}`);
      }
    }
    cn.attachments.push(a);
    this.save();
    if (this.live.has(c.id)) this.event(n, "connect", c.id);
  }

  async disconnect(ref: string, c: NetContainer): Promise<void> {
    const n = this.get(ref);
    const cn = this.state.containers[c.id];
    const a = cn?.attachments.find((x) => x.network === n.Id);
    if (!cn || !a) throw new EngineError(403, `container ${c.id} is not connected to network ${n.Name}`);
    cn.attachments = cn.attachments.filter((x) => x !== a);
    this.save();
    await unplug(a, this.spaces.get(n.Id));
    this.event(n, "disconnect", c.id); // dockerd tells it for a stopped container too (a connect, only for a running one)
  }

  // ---------- what inspect and ps show (views.ts) ----------

  inspect(n: NetworkRecord): Record<string, unknown> {
    return inspectNetwork(this.state, this.live, n);
  }

  settings(id: string, running: boolean, pid: number): Record<string, unknown> {
    return containerSettings(this.state, this.live, id, running, pid);
  }

  ports(id: string): PortView[] {
    return containerPorts(this.state, this.live, id);
  }

  networkNames(id: string): string[] {
    return containerNetworkNames(this.state, id);
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
      if (!net || !isUserDefined(net)) continue;
      const suffix = `.${net.Name.toLowerCase()}`;
      const bare = name.endsWith(suffix) ? name.slice(0, -suffix.length) : name;
      for (const [id, c] of Object.entries(this.state.containers)) {
        if (!this.live.has(id)) continue;
        for (const a of c.attachments) {
          if (a.network !== net.Id || !a.ip) continue;
          const names = [c.name, ...a.aliases, shortId(id)].map((x) => x.toLowerCase());
          if ((names.includes(bare) || names.includes(name)) && !ips.includes(a.ip)) ips.push(a.ip);
        }
      }
    }
    return ips.length ? ips : undefined;
  }

  // ---------- bridges ----------

  /**
   * The bridge of a network, made once (concurrent starts share the promise). Each bridge this
   * engine makes carries its owner tag as the link's alias (`ip link show` prints it): one found
   * with our tag was left by this engine's own earlier run (a crash) and is taken over; one
   * without it belongs to someone else (another engine, a dockerd, the administrator) and is
   * never used or removed. The default bridge is claimed before any other, so the iptables chains
   * named after it are ours alone.
   */
  private ensureBridge(n: NetworkRecord): Promise<void> {
    let p = this.bridges.get(n.Id);
    if (!p) {
      p = this.makeBridge(n);
      this.bridges.set(n.Id, p);
      p.catch(() => this.bridges.delete(n.Id)); // a later start tries again
    }
    return p;
  }

  private async makeBridge(n: NetworkRecord): Promise<void> {
    if (!n.bridge) return;
    if (n.Name !== "bridge") await this.ensureBridge(this.get("bridge"));
    const { Subnet, Gateway } = n.IPAM.Config[0]!;
    const prefix = parseSubnet(Subnet).prefix;
    const alias = await linkAlias(n.bridge);
    if (alias === undefined) {
      await ipBatch([`link add name ${n.bridge} type bridge`, `addr add ${Gateway}/${prefix} dev ${n.bridge}`, `link set ${n.bridge} up`]);
      await setLinkAlias(n.bridge, this.owner);
    } else if (alias === this.owner) {
      await ipBatch([`addr replace ${Gateway}/${prefix} dev ${n.bridge}`, `link set ${n.bridge} up`]);
    } else {
      throw new EngineError(500, `the bridge ${n.bridge} exists and was not made by this engine (${alias ? `its owner: ${alias}` : "it has no owner tag"}): another engine or program uses it; start this engine with a bridge of its own (--bridge <name> --bridge-subnet <cidr>)`);
    }
    await this.tables.setup();
    await this.tables.bridge(n.bridge, Subnet, n.Internal, "-A");
    if (isUserDefined(n)) {
      const dns = new DnsServer(Gateway, (name, client) => this.lookup(name, client));
      this.dns.set(n.Id, dns);
      dns.listen().catch((e: Error) => this.warn(`embedded DNS on ${Gateway}:53 for network ${n.Name}: ${e.message}`));
    }
  }

  private async teardownBridge(n: NetworkRecord): Promise<void> {
    this.dns.get(n.Id)?.close();
    this.dns.delete(n.Id);
    const made = this.bridges.get(n.Id);
    this.bridges.delete(n.Id);
    if (!made || !n.bridge) return;
    if (!(await made.then(() => true, () => false))) return;
    await this.tables.bridge(n.bridge, n.IPAM.Config[0]!.Subnet, n.Internal, "-D");
    // Only while it still carries our tag: a bridge someone else made since is theirs.
    if ((await linkAlias(n.bridge)) === this.owner) await deleteLink(n.bridge);
  }

  private warn(m: string): void {
    if (this.warnings.includes(m)) return;
    this.warnings.push(m);
    this.log(`network: ${m}`);
  }

  /** Engine shutdown: proxies, DNS servers, bridges and our iptables chains go. */
  async close(): Promise<void> {
    for (const id of [...this.live.keys()]) this.release(id);
    await Promise.all(this.pending);
    // User networks first: the default bridge is what makes the chains ours.
    for (const n of [...this.state.networks].reverse()) await this.teardownBridge(n);
    await this.tables.close();
  }
}
