// A sandbox's uplink: one veth pair per sandbox, routed (no bridge), and a default-deny firewall in
// Berth's own iptables chains: a sandbox reaches the host's nameservers (NAT out through the host)
// and, through a host-side proxy that checks names (egress.ts), plain HTTP to the egress
// allow-list (Debian's archive); nothing else: not the host, other sandboxes, private ranges, or
// any other address or port.
//
//   host netns                               sandbox netns (owned by the sandbox's user namespace)
//   berthv<slot>  10.213.x.(4s+1)/30  <--->  eth0  10.213.x.(4s+2)/30, default via the host end
//
// Why routed /30s and not a bridge: every packet a sandbox sends arrives on its own host
// interface, so "which sandbox sent this" is the interface, and a sandbox cannot reach a neighbour
// at L2 (there is no shared L2). The learner is root in their network namespace and can change
// eth0's address, routes and MAC; everything that enforces anything lives in the host netns,
// which they cannot touch: the source check (one rule per sandbox: this interface, this address),
// the firewall, the NAT, IPv6 switched off on the host end.
//
// Slots (which /30 and which interface name a sandbox gets) are host-wide, not per state dir: the
// interface names and addresses are. They are claimed with O_EXCL files under /run/berth-net
// (tmpfs: gone on reboot, like the links and the rules they describe). The subnet and that
// directory are an UplinkNet the drivers pass to every function here (default DEFAULT_UPLINK_NET;
// the programs' entry points read BERTH_UPLINK_SUBNET and BERTH_NET_DIR): every driver on a host
// must pass the same one, as the chains are host-wide too.
//
// iptables (host netns), all in chains named BERTH-*:
//   filter FORWARD  -j BERTH-FORWARD       replies back in; sandbox → BERTH-SANDBOXES; nothing new in
//   filter BERTH-SANDBOXES                 -i berthv<slot> -s <its address> -j BERTH-EGRESS (one per sandbox)
//   filter BERTH-EGRESS                    replies; new connections rate-limited per sandbox; the
//                                          sandbox's egress proxy; nameservers; everything else REJECT
//   filter INPUT    -j BERTH-INPUT         from a sandbox: replies, and its egress proxy and (VM
//                                          sandboxes) registry gateway ports (through
//                                          BERTH-SANDBOXES, so the source check holds), else DROP
//   nat PREROUTING  -j BERTH-PREROUTING    tcp port 80 to a public address -> REDIRECT to the proxy
//                                          on the sandbox's own gateway (EGRESS_PROXY_PORT)
//   nat POSTROUTING -j BERTH-POSTROUTING   MASQUERADE out of the subnet (DNS)
// They coexist with dockerd's chains and a FORWARD policy of DROP (our ACCEPTs come first for our
// interfaces only), and removeHostNetwork() takes them all out again.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface UplinkNet {
  /** The sandboxes' addresses, cut into /30s (prefix 8-30). */
  subnet: string;
  /** Where slot claims live (`<netDir>/slots/<slot>`): a tmpfs, so they go with a reboot. */
  netDir: string;
}

/** A /16 in 10/8: clear of Docker's 172.17/16 and the engine's bridges. */
export const DEFAULT_UPLINK_NET: UplinkNet = { subnet: "10.213.0.0/16", netDir: "/run/berth-net" };
/** Host ends are berthv<slot>; the sandbox end is always eth0. */
export const UPLINK_IF_PREFIX = "berthv";

/** Every iptables chain Berth owns on the host, by table. */
const BERTH_CHAINS = [
  ["filter", "BERTH-FORWARD"],
  ["filter", "BERTH-INPUT"],
  ["filter", "BERTH-SANDBOXES"],
  ["filter", "BERTH-EGRESS"],
  ["nat", "BERTH-PREROUTING"],
  ["nat", "BERTH-POSTROUTING"],
] as const;

/** Where each sandbox's egress proxy listens, on the sandbox's gateway address (egress.ts). */
export const EGRESS_PROXY_PORT = 3128;
/**
 * Where a VM sandbox's registry gateway listens, on its gateway address (the uml driver: a guest
 * kernel cannot reach a host UNIX socket, so its localhost:5000 is relayed here over the uplink).
 * Accepted like the egress proxy: from the sandbox's own address on its own link, to a host address.
 */
export const GATEWAY_REGISTRY_PORT = 3129;

/**
 * New connections per sandbox (through the proxy, DNS, and every refused attempt alike): a steady
 * rate and the burst allowed above it. apt opens a handful; a scanner or a flood opens thousands.
 */
export const EGRESS_NEW_CONNECTIONS = { perSecond: 10, burst: 40 };

/** Private, shared, link-local, loopback, multicast and reserved IPv4 ranges: never reachable. */
export const BLOCKED_RANGES = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "224.0.0.0/4",
  "240.0.0.0/4",
];

export interface UplinkSlot {
  slot: number;
  /** Host end of the veth pair. */
  ifname: string;
  /** The host end's address: the sandbox's gateway. */
  gateway: string;
  /** The sandbox's eth0 address. */
  address: string;
  prefix: 30;
}

interface SlotClaim extends UplinkSlot {
  /** The sandbox directory that owns this slot: the slot is stale once its meta.json is gone. */
  sandboxDir: string;
  id: string;
}

function ipToInt(ip: string): number {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

function parseCidr(cidr: string): { base: number; prefix: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(cidr);
  if (!m || Number(m[2]) > 30 || Number(m[2]) < 8) throw new Error(`uplink subnet ${JSON.stringify(cidr)} (BERTH_UPLINK_SUBNET): want an IPv4 network like 10.213.0.0/16 (prefix 8–30)`);
  const prefix = Number(m[2]);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return { base: (ipToInt(m[1]!) & mask) >>> 0, prefix };
}

/** Whether an IPv4 address lies in a CIDR range. */
export function inRange(ip: string, cidr: string): boolean {
  const [net, bits] = cidr.split("/");
  const prefix = Number(bits);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return ((ipToInt(ip) & mask) >>> 0) === ((ipToInt(net!) & mask) >>> 0);
}

export function slotAddresses(slot: number, subnet = DEFAULT_UPLINK_NET.subnet): UplinkSlot {
  const { base, prefix } = parseCidr(subnet);
  const count = 2 ** (32 - prefix) / 4;
  if (!Number.isInteger(slot) || slot < 0 || slot >= count) throw new Error(`uplink slot ${slot} outside ${subnet} (${count} slots)`);
  const net = base + slot * 4;
  return { slot, ifname: `${UPLINK_IF_PREFIX}${slot}`, gateway: intToIp(net + 1), address: intToIp(net + 2), prefix: 30 };
}

function slotCount(subnet: string): number {
  return 2 ** (32 - parseCidr(subnet).prefix) / 4;
}

interface RunResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

function run(cmd: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
    child.on("error", (err) => reject(new Error(`could not run ${cmd} (${err.message}); the uplink needs iproute2, iptables and util-linux (nsenter)`)));
    child.on("close", (code) => resolve({ stdout, stderr, code }));
    if (input !== undefined) child.stdin!.end(input);
  });
}

async function must(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await run(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.code}: ${(r.stderr || r.stdout).trim()}${input ? `\ninput:\n${input}` : ""}`);
  return r.stdout;
}

/** The host's IPv4 nameservers the sandboxes should use (never a loopback stub: it is the host's own). */
export function hostNameservers(): string[] {
  const read = (file: string) => {
    try {
      return [...readFileSync(file, "utf8").matchAll(/^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/gm)].map((m) => m[1]!);
    } catch {
      return [];
    }
  };
  let servers = read("/etc/resolv.conf");
  // systemd-resolved's stub (127.0.0.53) is not reachable from another netns: use its upstreams.
  if (servers.every((s) => s.startsWith("127."))) servers = read("/run/systemd/resolve/resolv.conf");
  return servers.filter((s) => !s.startsWith("127.")).slice(0, 3);
}

/** The networks the host is directly on (its LANs), apart from loopback and the sandboxes' own. */
async function hostNetworks(): Promise<string[]> {
  const out = await must("ip", ["-4", "-o", "addr", "show"]);
  const nets = new Set<string>();
  for (const line of out.split("\n")) {
    const m = /^\d+:\s+(\S+)\s+inet\s+(\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(line);
    if (!m || m[1] === "lo" || m[1]!.startsWith(UPLINK_IF_PREFIX)) continue;
    const prefix = Number(m[3]);
    const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
    nets.add(`${intToIp((ipToInt(m[2]!) & mask) >>> 0)}/${prefix}`);
  }
  return [...nets].sort();
}

const ipt = (args: string[]) => run("iptables", ["-w", ...args]);

/** Adds `chain -j target` at the top of a built-in chain unless it is there already. */
async function ensureJump(table: string, chain: string, spec: string[]): Promise<void> {
  if ((await ipt(["-t", table, "-C", chain, ...spec])).code === 0) return;
  await must("iptables", ["-w", "-t", table, "-I", chain, "1", ...spec]);
}

async function ensureChain(table: string, chain: string): Promise<void> {
  const r = await ipt(["-t", table, "-N", chain]);
  if (r.code !== 0 && !/exists/i.test(r.stderr)) throw new Error(`iptables -t ${table} -N ${chain}: ${r.stderr.trim()}`);
}

/**
 * Makes the host ready for sandbox uplinks: IP forwarding on (as Docker does), Berth's chains
 * (re)written from what the host looks like now (nameservers, its own networks), the jumps into
 * them at the top of INPUT, FORWARD and nat POSTROUTING. Idempotent; safe while sandboxes run
 * (the per-sandbox rules live in BERTH-SANDBOXES, which this never flushes).
 */
export async function ensureHostNetwork(net: UplinkNet = DEFAULT_UPLINK_NET): Promise<{ nameservers: string[] }> {
  await writeFile("/proc/sys/net/ipv4/ip_forward", "1\n");
  const subnet = net.subnet;
  parseCidr(subnet);
  const nameservers = hostNameservers();
  const blocked = [...new Set([...BLOCKED_RANGES, ...(await hostNetworks()), subnet])];
  const any = `${UPLINK_IF_PREFIX}+`;
  await ensureChain("filter", "BERTH-SANDBOXES");
  // One transaction per table: the generic chains are declared (which flushes them) and refilled.
  const filter = [
    "*filter",
    ":BERTH-FORWARD - [0:0]",
    ":BERTH-EGRESS - [0:0]",
    ":BERTH-INPUT - [0:0]",
    // Replies to what a sandbox started come back in (DNS answers: the rest goes through the proxy).
    `-A BERTH-FORWARD -o ${any} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    // From a sandbox: only its own address, on its own interface (BERTH-SANDBOXES), else dropped
    // silently (an answer would go to whoever the forged address belongs to).
    `-A BERTH-FORWARD -i ${any} -j BERTH-SANDBOXES`,
    `-A BERTH-FORWARD -i ${any} -j DROP`,
    // Nothing else is forwarded into a sandbox.
    `-A BERTH-FORWARD -o ${any} -j DROP`,
    // BERTH-EGRESS sees everything a sandbox sends that passed its source check: forwarded out, and
    // to its egress proxy on the host (from BERTH-INPUT). Default deny; refused, not dropped, so a
    // learner's curl fails at once ("No route to host"), not after a timeout. (The source was
    // checked, so the answer goes to the sandbox that asked.)
    "-A BERTH-EGRESS -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    `-A BERTH-EGRESS -m hashlimit --hashlimit-above ${EGRESS_NEW_CONNECTIONS.perSecond}/sec --hashlimit-burst ${EGRESS_NEW_CONNECTIONS.burst} --hashlimit-mode srcip --hashlimit-name berth-egress -j REJECT --reject-with icmp-admin-prohibited`,
    // (the proxy is a host address: LOCAL; a forwarded packet to port ${EGRESS_PROXY_PORT} elsewhere is not)
    `-A BERTH-EGRESS -p tcp --dport ${EGRESS_PROXY_PORT} -m addrtype --dst-type LOCAL -j ACCEPT`,
    `-A BERTH-EGRESS -p tcp --dport ${GATEWAY_REGISTRY_PORT} -m addrtype --dst-type LOCAL -j ACCEPT`,
    ...nameservers.flatMap((ns) => ["udp", "tcp"].map((p) => `-A BERTH-EGRESS -d ${ns}/32 -p ${p} --dport 53 -j ACCEPT`)),
    "-A BERTH-EGRESS -j REJECT --reject-with icmp-admin-prohibited",
    // Any address of the host itself (every port, every interface's address, the gateway's), but
    // the sandbox's egress proxy, and that only from the sandbox's own address on its own link.
    `-A BERTH-INPUT -i ${any} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    `-A BERTH-INPUT -i ${any} -p tcp --dport ${EGRESS_PROXY_PORT} -j BERTH-SANDBOXES`,
    `-A BERTH-INPUT -i ${any} -p tcp --dport ${GATEWAY_REGISTRY_PORT} -j BERTH-SANDBOXES`,
    `-A BERTH-INPUT -i ${any} -j DROP`,
    "COMMIT",
    "",
  ].join("\n");
  await must("iptables-restore", ["-w", "--noflush"], filter);
  const nat = [
    "*nat",
    ":BERTH-PREROUTING - [0:0]",
    ":BERTH-POSTROUTING - [0:0]",
    // HTTP to a public address goes to the sandbox's egress proxy, which checks the name asked
    // for. Private, host and sandbox addresses are left alone: the filter refuses them as before.
    ...blocked.map((net) => `-A BERTH-PREROUTING -i ${any} -d ${net} -j RETURN`),
    `-A BERTH-PREROUTING -i ${any} -p tcp --dport 80 -j REDIRECT --to-ports ${EGRESS_PROXY_PORT}`,
    `-A BERTH-POSTROUTING -s ${subnet} ! -d ${subnet} -j MASQUERADE`,
    "COMMIT",
    "",
  ].join("\n");
  await must("iptables-restore", ["-w", "--noflush"], nat);
  await ensureJump("filter", "INPUT", ["-j", "BERTH-INPUT"]);
  await ensureJump("filter", "FORWARD", ["-j", "BERTH-FORWARD"]);
  await ensureJump("nat", "POSTROUTING", ["-j", "BERTH-POSTROUTING"]);
  await ensureJump("nat", "PREROUTING", ["-j", "BERTH-PREROUTING"]);
  return { nameservers };
}

/** The per-sandbox rule: this interface, this source address, then the egress policy. */
function sandboxRule(s: UplinkSlot): string[] {
  return ["BERTH-SANDBOXES", "-i", s.ifname, "-s", `${s.address}/32`, "-j", "BERTH-EGRESS"];
}

/**
 * Checks, with one iptables-save, that the host's firewall for sandboxes is whole: the jumps, the
 * chains' final rules, and one rule per live claim. Something on the host may have flushed it
 * (firewalld reload, `iptables -F`), and without the jumps the sandboxes would be unfiltered: so
 * whatever is missing is put back. Returns what was missing (empty: nothing to do).
 */
export async function repairHostNetwork(net: UplinkNet = DEFAULT_UPLINK_NET): Promise<string[]> {
  const save = await must("iptables-save", []);
  const has = (line: string) => save.split("\n").some((l) => l.trim() === line);
  const any = `${UPLINK_IF_PREFIX}+`;
  const missing: string[] = [];
  for (const line of [
    "-A INPUT -j BERTH-INPUT",
    "-A FORWARD -j BERTH-FORWARD",
    "-A POSTROUTING -j BERTH-POSTROUTING",
    "-A PREROUTING -j BERTH-PREROUTING",
    `-A BERTH-INPUT -i ${any} -j DROP`,
    `-A BERTH-FORWARD -i ${any} -j DROP`,
    `-A BERTH-FORWARD -o ${any} -j DROP`,
    `-A BERTH-PREROUTING -i ${any} -p tcp -m tcp --dport 80 -j REDIRECT --to-ports ${EGRESS_PROXY_PORT}`,
    "-A BERTH-EGRESS -j REJECT --reject-with icmp-admin-prohibited",
  ]) {
    if (!has(line)) missing.push(line);
  }
  if (missing.length) await ensureHostNetwork(net);
  for (const claim of await liveClaims(net)) {
    // iptables-save prints the source before the interface.
    if (has(`-A BERTH-SANDBOXES -s ${claim.address}/32 -i ${claim.ifname} -j BERTH-EGRESS`)) continue;
    // A claim whose link is not there yet is a create() in progress: it adds its own rule.
    if (!existsSync(`/sys/class/net/${claim.ifname}`)) continue;
    missing.push(`rule for ${claim.ifname}`);
    await must("iptables", ["-w", "-A", ...sandboxRule(claim)]);
  }
  return missing;
}

async function liveClaims(net: UplinkNet): Promise<SlotClaim[]> {
  const dir = join(net.netDir, "slots");
  if (!existsSync(dir)) return [];
  const out: SlotClaim[] = [];
  for (const name of await readdir(dir)) {
    const claim = await readFile(join(dir, name), "utf8").then((t) => JSON.parse(t) as SlotClaim, () => undefined);
    if (claim && existsSync(join(claim.sandboxDir, "meta.json"))) out.push(claim);
  }
  return out;
}

/** Claims the lowest free slot for a sandbox (host-wide, across state dirs and processes). */
export async function claimSlot(sandboxDir: string, id: string, net: UplinkNet = DEFAULT_UPLINK_NET): Promise<UplinkSlot> {
  const dir = join(net.netDir, "slots");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const taken = new Set((await readdir(dir)).map(Number));
  const count = slotCount(net.subnet);
  for (let slot = 0; slot < count; slot++) {
    if (taken.has(slot)) continue;
    const s = slotAddresses(slot, net.subnet);
    try {
      const fh = await open(join(dir, String(slot)), "wx", 0o600);
      await fh.writeFile(JSON.stringify({ ...s, sandboxDir, id } satisfies SlotClaim) + "\n");
      await fh.close();
      return s;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  throw new Error(`no free uplink address in ${net.subnet} (${count} sandboxes)`);
}

/**
 * Connects a created (not yet started) sandbox: the veth pair with its eth0 end made directly in
 * the sandbox's network namespace (the namespace runc made, owned by the sandbox's user
 * namespace), addresses, routes, and the per-sandbox firewall rule.
 */
export async function attachUplink(pid: number, s: UplinkSlot): Promise<void> {
  // One `ip` for the host side: the pair (eth0 born in the sandbox's netns), the gateway address.
  await must("ip", ["-batch", "-"], [`link add ${s.ifname} type veth peer name eth0 netns ${pid}`, `addr add ${s.gateway}/${s.prefix} dev ${s.ifname}`, `link set ${s.ifname} up`, ""].join("\n"));
  // The rest is independent: run it side by side (each command costs tens of ms on a busy host).
  await Promise.all([
    // No IPv6 on the host end: a learner who gives eth0 an IPv6 address reaches nothing.
    writeFile(`/proc/sys/net/ipv6/conf/${s.ifname}/disable_ipv6`, "1\n").catch(() => {}),
    must(
      "nsenter",
      [`--net=/proc/${pid}/ns/net`, "ip", "-batch", "-"],
      ["link set lo up", `addr add ${s.address}/${s.prefix} dev eth0`, "link set eth0 up", `route add default via ${s.gateway} dev eth0`, ""].join("\n"),
    ),
    must("iptables", ["-w", "-A", ...sandboxRule(s)]),
  ]);
}

/** Removes a sandbox's link, rule and slot claim. Idempotent: each part may already be gone. */
export async function detachUplink(s: UplinkSlot, net: UplinkNet = DEFAULT_UPLINK_NET): Promise<void> {
  // Gone by itself when the sandbox's netns died with its last process; not if something holds it.
  if (existsSync(`/sys/class/net/${s.ifname}`)) await run("ip", ["link", "del", s.ifname]);
  while ((await ipt(["-D", ...sandboxRule(s)])).code === 0) {
    // (a duplicate from a crashed attempt goes too)
  }
  await rm(join(net.netDir, "slots", String(s.slot)), { force: true });
}

/**
 * Cleans what a crashed run left: slot claims whose sandbox directory is gone, host links and
 * per-sandbox rules without a claim. Returns the slots it freed.
 */
export async function removeStaleUplinks(net: UplinkNet = DEFAULT_UPLINK_NET): Promise<number[]> {
  const dir = join(net.netDir, "slots");
  const freed: number[] = [];
  const live = new Set<number>();
  if (existsSync(dir)) {
    for (const name of await readdir(dir)) {
      let claim: SlotClaim | undefined;
      try {
        claim = JSON.parse(await readFile(join(dir, name), "utf8")) as SlotClaim;
      } catch {
        // A claim being written right now reads as empty: leave it to its owner.
        live.add(Number(name));
        continue;
      }
      if (existsSync(join(claim.sandboxDir, "meta.json"))) {
        live.add(claim.slot);
        continue;
      }
      await detachUplink(slotAddresses(claim.slot, net.subnet), net);
      freed.push(claim.slot);
    }
  }
  const links = await run("ip", ["-o", "link", "show"]);
  for (const m of links.stdout.matchAll(new RegExp(`^\\d+:\\s+${UPLINK_IF_PREFIX}(\\d+)[@:]`, "gm"))) {
    const slot = Number(m[1]);
    if (!live.has(slot) && !freed.includes(slot)) {
      await detachUplink(slotAddresses(slot, net.subnet), net);
      freed.push(slot);
    }
  }
  const rules = await ipt(["-S", "BERTH-SANDBOXES"]);
  for (const m of rules.stdout.matchAll(new RegExp(`-i ${UPLINK_IF_PREFIX}(\\d+) `, "g"))) {
    const slot = Number(m[1]);
    if (!live.has(slot) && !freed.includes(slot)) {
      await detachUplink(slotAddresses(slot, net.subnet), net);
      freed.push(slot);
    }
  }
  return freed;
}

/** Number of slots claimed right now (host-wide). */
export async function claimedSlots(net: UplinkNet = DEFAULT_UPLINK_NET): Promise<number> {
  const dir = join(net.netDir, "slots");
  return existsSync(dir) ? (await readdir(dir)).length : 0;
}

/**
 * Takes Berth's chains and jumps out of the host's iptables, if no sandbox holds a slot (pass
 * force to remove them anyway). IP forwarding stays on: dockerd and others may rely on it.
 */
export async function removeHostNetwork(opts: { force?: boolean; net?: UplinkNet } = {}): Promise<boolean> {
  if (!opts.force && (await claimedSlots(opts.net)) > 0) return false;
  for (const [table, chain, target] of [
    ["filter", "INPUT", "BERTH-INPUT"],
    ["filter", "FORWARD", "BERTH-FORWARD"],
    ["nat", "POSTROUTING", "BERTH-POSTROUTING"],
    ["nat", "PREROUTING", "BERTH-PREROUTING"],
  ] as const) {
    while ((await ipt(["-t", table, "-D", chain, "-j", target])).code === 0) {
      // every copy
    }
  }
  // Flush all before deleting any: a chain still jumped to from another cannot be deleted.
  for (const [table, chain] of BERTH_CHAINS) await ipt(["-t", table, "-F", chain]);
  for (const [table, chain] of BERTH_CHAINS) await ipt(["-t", table, "-X", chain]);
  return true;
}

/** /etc/resolv.conf for a sandbox: the host's nameservers (reached through the NAT). */
export function sandboxResolvConf(nameservers: string[]): string {
  return nameservers.length ? nameservers.map((ns) => `nameserver ${ns}`).join("\n") + "\n" : "";
}

/** Releases every slot a sandbox directory holds (its meta.json may predate the claim after a crash). */
export async function detachUplinksOf(sandboxDir: string, net: UplinkNet = DEFAULT_UPLINK_NET): Promise<void> {
  const dir = join(net.netDir, "slots");
  if (!existsSync(dir)) return;
  for (const name of await readdir(dir)) {
    const claim = await readFile(join(dir, name), "utf8").then((t) => JSON.parse(t) as SlotClaim, () => undefined);
    if (claim?.sandboxDir === sandboxDir) await detachUplink(slotAddresses(claim.slot, net.subnet), net);
  }
}
