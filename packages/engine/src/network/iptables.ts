/**
 * The engine's iptables rules, in chains of its own named after its default bridge (which it owns
 * in its network namespace, see manager.ts): so two engines on one host never touch each other's.
 *
 *   filter FORWARD     -> BERTH-FWD-<B>: ACCEPT our bridges' traffic, after BERTH-ISO1-<B>/ISO2-<B>
 *                         (Docker's two-stage isolation: one of our bridges to another is dropped)
 *   nat POSTROUTING    -> BERTH-NAT-<B>: MASQUERADE what leaves a subnet
 *   nat PREROUTING, OUTPUT (to a local address) -> BERTH-DNAT-<B>: one DNAT rule per published port
 */
import fs from "node:fs";
import { run } from "./ip";

export class Tables {
  readonly chains: { fwd: string; iso1: string; iso2: string; nat: string; dnat: string };
  /** DNAT for published ports could be set up: otherwise the userland proxy carries everything. */
  dnatReady = false;
  private ready?: Promise<void>;

  constructor(
    suffix: string,
    private warn: (m: string) => void,
  ) {
    this.chains = { fwd: `BERTH-FWD-${suffix}`, iso1: `BERTH-ISO1-${suffix}`, iso2: `BERTH-ISO2-${suffix}`, nat: `BERTH-NAT-${suffix}`, dnat: `BERTH-DNAT-${suffix}` };
  }

  /** One iptables command; false (and a warning unless quiet) when it fails. */
  async run(args: string[], quiet = false): Promise<boolean> {
    const r = await run("iptables", ["-w", ...args]);
    if (r.code !== 0 && !quiet) this.warn(`iptables ${args.join(" ")}: ${r.stderr.trim() || `exit code ${r.code}`}`);
    return r.code === 0;
  }

  /** Our chains, hooked into FORWARD, POSTROUTING, PREROUTING and OUTPUT once; ip_forward on. */
  setup(): Promise<void> {
    return (this.ready ??= this.create());
  }

  private async create(): Promise<void> {
    try {
      fs.writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
    } catch (e) {
      this.warn(`cannot enable IPv4 forwarding: ${(e as Error).message}`);
    }
    const { fwd, iso1, iso2, nat, dnat } = this.chains;
    for (const [table, chain] of [["filter", fwd], ["filter", iso1], ["filter", iso2], ["nat", nat], ["nat", dnat]] as const) {
      if (!(await this.run(["-t", table, "-N", chain], true))) await this.run(["-t", table, "-F", chain]);
    }
    await this.run(["-A", fwd, "-j", iso1]);
    if (!(await this.run(["-C", "FORWARD", "-j", fwd], true))) await this.run(["-I", "FORWARD", "1", "-j", fwd]);
    if (!(await this.run(["-t", "nat", "-C", "POSTROUTING", "-j", nat], true))) await this.run(["-t", "nat", "-A", "POSTROUTING", "-j", nat]);
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
    const jump = async (chain: string, extra: string[]) => {
      const rule = [chain, "-m", "addrtype", "--dst-type", "LOCAL", ...extra, "-j", dnat];
      return (await this.run(["-t", "nat", "-C", ...rule], true)) || (await this.run(["-t", "nat", "-A", ...rule]));
    };
    this.dnatReady = (await jump("PREROUTING", [])) && (await jump("OUTPUT", localnet ? [] : ["!", "-d", "127.0.0.0/8"]));
    if (localnet) await this.run(["-t", "nat", "-A", nat, "-s", "127.0.0.0/8", "!", "-o", "lo", "-j", "MASQUERADE"]);
  }

  /** A bridge's rules: accept its traffic, isolate it from our other bridges, masquerade what leaves. */
  async bridge(br: string, subnet: string, internal: boolean, op: "-A" | "-D"): Promise<void> {
    const { fwd, iso1, iso2, nat, dnat } = this.chains;
    const quiet = op === "-D";
    await this.run(["-t", "nat", op === "-A" ? "-I" : "-D", dnat, "-i", br, "-j", "RETURN"], quiet);
    await this.run([op, iso1, "-i", br, "!", "-o", br, "-j", iso2], quiet);
    await this.run([op, iso2, "-o", br, "-j", "DROP"], quiet);
    await this.run([op, fwd, "-i", br, "-j", "ACCEPT"], quiet);
    await this.run([op, fwd, "-o", br, "-j", "ACCEPT"], quiet);
    if (!internal) await this.run(["-t", "nat", op, nat, "-s", subnet, "!", "-o", br, "-j", "MASQUERADE"], quiet);
  }

  /** The nat rule that carries one published port in the kernel (hostIp "0.0.0.0": every address). */
  dnatRule(proto: string, hostIp: string, port: number, target: string, containerPort: number): string[] {
    return [this.chains.dnat, "-p", proto, ...(hostIp === "0.0.0.0" ? [] : ["-d", hostIp]), "--dport", String(port), "-j", "DNAT", "--to-destination", `${target}:${containerPort}`];
  }

  addDnat(rule: string[]): Promise<boolean> {
    return this.run(["-t", "nat", "-A", ...rule]);
  }

  async deleteDnat(rule: string[]): Promise<void> {
    await this.run(["-t", "nat", "-D", ...rule], true);
  }

  /** Engine shutdown: the jumps to our chains, then the chains. Only what setup() made. */
  async close(): Promise<void> {
    if (!this.ready) return;
    await this.ready;
    const { fwd, iso1, iso2, nat, dnat } = this.chains;
    await this.run(["-D", "FORWARD", "-j", fwd], true);
    await this.run(["-t", "nat", "-D", "POSTROUTING", "-j", nat], true);
    for (const chain of ["PREROUTING", "OUTPUT"]) {
      for (const extra of [[], ["!", "-d", "127.0.0.0/8"]]) await this.run(["-t", "nat", "-D", chain, "-m", "addrtype", "--dst-type", "LOCAL", ...extra, "-j", dnat], true);
    }
    // Flush all before deleting any: a chain still jumped to from another cannot be deleted.
    const all = [["filter", fwd], ["filter", iso1], ["filter", iso2], ["nat", nat], ["nat", dnat]] as const;
    for (const [table, chain] of all) await this.run(["-t", table, "-F", chain], true);
    for (const [table, chain] of all) await this.run(["-t", table, "-X", chain], true);
    this.ready = undefined;
    this.dnatReady = false;
  }
}
