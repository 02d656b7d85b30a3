/**
 * IPv4 address management: subnets as (base, prefix) pairs of plain numbers, the pool user networks
 * are carved from (Docker's default: 172.17.0.0/16 ... 172.31.0.0/16, then 192.168.0.0/20 ...), and
 * the routes of the engine's network namespace (so a new subnet never hides one that is in use, e.g.
 * a sandbox's uplink).
 */
import fs from "node:fs";

export interface Subnet {
  base: number; // network address as an unsigned 32-bit number
  prefix: number;
}

export function ipToNum(ip: string): number {
  const p = ip.split(".");
  if (p.length !== 4 || p.some((x) => !/^\d{1,3}$/.test(x) || Number(x) > 255)) throw new Error(`invalid IP address: ${ip}`);
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

export function numToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

const mask = (prefix: number) => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

/** "172.18.0.0/16" -> subnet; the message is Docker's for a CIDR it cannot parse. */
export function parseSubnet(cidr: string): Subnet {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(cidr);
  if (!m || Number(m[2]) > 32) throw new Error(`invalid CIDR address: ${cidr}`);
  const prefix = Number(m[2]);
  return { base: (ipToNum(m[1]!) & mask(prefix)) >>> 0, prefix };
}

export const formatSubnet = (s: Subnet) => `${numToIp(s.base)}/${s.prefix}`;
export const size = (s: Subnet) => 2 ** (32 - s.prefix);
export const contains = (s: Subnet, ip: number) => ((ip & mask(s.prefix)) >>> 0) === s.base;
export const overlaps = (a: Subnet, b: Subnet) => contains(a, b.base) || contains(b, a.base);
/** The first usable address: Docker's default gateway. */
export const firstHost = (s: Subnet) => s.base + 1;

/** The IPv4 routes of this network namespace (/proc/net/route: little-endian hex), default route left out. */
export function routedSubnets(): Subnet[] {
  let text = "";
  try {
    text = fs.readFileSync("/proc/net/route", "utf8");
  } catch {
    return [];
  }
  const le = (hex: string) => {
    const n = parseInt(hex, 16);
    return (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) | ((n >>> 24) & 255)) >>> 0;
  };
  const out: Subnet[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const m = le(f[7]!);
    if (m === 0) continue;
    const prefix = Math.clz32(~m >>> 0); // leading ones of the mask
    out.push({ base: le(f[1]!) & m, prefix });
  }
  return out;
}

/** Docker's default address pools, in the order Docker hands them out. */
export function* defaultPool(): Generator<Subnet> {
  for (let b = 17; b <= 31; b++) yield { base: ipToNum(`172.${b}.0.0`), prefix: 16 };
  for (let c = 0; c < 256; c += 16) yield { base: ipToNum(`192.168.${c}.0`), prefix: 20 };
}

/** Addresses handed out in one subnet: the network, broadcast and gateway addresses are never given. */
export class AddressSpace {
  private used = new Set<number>();
  constructor(
    readonly subnet: Subnet,
    readonly gateway: number,
  ) {}

  reserve(ip: number): void {
    this.used.add(ip);
  }

  allocate(wanted?: string): number {
    if (wanted) {
      const ip = ipToNum(wanted);
      if (!contains(this.subnet, ip)) throw new Error(`no configured subnet or ip-range contain the IP address ${wanted}`);
      if (this.used.has(ip) || ip === this.gateway) throw new Error(`Address already in use`);
      this.used.add(ip);
      return ip;
    }
    const last = this.subnet.base + size(this.subnet) - 1;
    for (let ip = this.subnet.base + 1; ip < last; ip++) {
      if (ip === this.gateway || this.used.has(ip)) continue;
      this.used.add(ip);
      return ip;
    }
    throw new Error(`no available IPv4 addresses on this network's address pools: ${formatSubnet(this.subnet)}`);
  }

  release(ip: number): void {
    this.used.delete(ip);
  }
}
