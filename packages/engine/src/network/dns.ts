/**
 * The embedded DNS server of user-defined networks (Docker's 127.0.0.11). Containers on a user
 * network get `nameserver <the network's gateway>` in /etc/resolv.conf; this server listens there
 * (UDP 53 in the engine's network namespace), answers the names of containers on the network the
 * query came from (name, --network-alias, short id, `name.network`), and forwards everything else to
 * the engine's own nameservers. Docker enters each container's namespace to listen on 127.0.0.11;
 * Node cannot enter a namespace, so the gateway address plays that part.
 */
import dgram from "node:dgram";
import fs from "node:fs";

const TYPE_A = 1;

export interface Question {
  id: number;
  flags: number;
  name: string;
  type: number;
  end: number; // offset just past the question
}

export function parseQuery(msg: Buffer): Question | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    if (off >= msg.length) return undefined;
    const len = msg[off]!;
    off++;
    if (len === 0) break;
    if (len > 63 || off + len > msg.length) return undefined; // compression is not used in questions
    labels.push(msg.toString("latin1", off, off + len));
    off += len;
  }
  if (off + 4 > msg.length) return undefined;
  return { id: msg.readUInt16BE(0), flags: msg.readUInt16BE(2), name: labels.join(".").toLowerCase(), type: msg.readUInt16BE(off), end: off + 4 };
}

/** An answer to `q` with the given IPv4 addresses (for an A query), or none, or an error code. */
export function answer(msg: Buffer, q: Question, ips: string[], rcode = 0): Buffer {
  const records = q.type === TYPE_A && rcode === 0 ? ips : [];
  const head = Buffer.alloc(12);
  head.writeUInt16BE(q.id, 0);
  // QR, the query's opcode and RD, RA, rcode; not AA, as Docker's resolver answers.
  head.writeUInt16BE(0x8000 | (q.flags & 0x7900) | 0x0080 | rcode, 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(records.length, 6);
  const parts = [head, msg.subarray(12, q.end)];
  for (const ip of records) {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
    rr.writeUInt16BE(TYPE_A, 2);
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(600, 6);
    rr.writeUInt16BE(4, 10);
    ip.split(".").forEach((b, i) => (rr[12 + i] = Number(b)));
    parts.push(rr);
  }
  return Buffer.concat(parts);
}

/** The engine's own nameservers (loopback ones included: the engine, unlike a container, can reach them). */
export function upstreamServers(file = "/etc/resolv.conf"): string[] {
  try {
    return fs.readFileSync(file, "utf8").split("\n").map((l) => /^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/.exec(l)?.[1]).filter((x): x is string => !!x);
  } catch {
    return [];
  }
}

/**
 * lookup(name, clientIp) gives the addresses for a name as seen from that client's network, or
 * undefined when the name is not a container's (then the query is forwarded).
 */
export class DnsServer {
  private sock?: dgram.Socket;
  constructor(
    readonly address: string,
    private lookup: (name: string, client: string) => string[] | undefined,
    private upstream = upstreamServers(),
  ) {}

  listen(): Promise<void> {
    const sock = dgram.createSocket("udp4");
    this.sock = sock;
    sock.on("message", (msg, rinfo) => this.onQuery(msg, rinfo));
    return new Promise((resolve, reject) => {
      sock.once("error", reject);
      sock.bind({ address: this.address, port: 53, exclusive: true }, () => {
        sock.off("error", reject);
        sock.on("error", () => {});
        resolve();
      });
    });
  }

  private onQuery(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const q = parseQuery(msg);
    if (!q) return;
    const reply = (b: Buffer) => this.sock?.send(b, rinfo.port, rinfo.address);
    const ips = this.lookup(q.name.replace(/\.$/, ""), rinfo.address);
    if (ips) return reply(answer(msg, q, ips));
    const server = this.upstream[0];
    if (!server) return reply(answer(msg, q, [], 2)); // SERVFAIL: nowhere to ask
    const up = dgram.createSocket("udp4");
    const timer = setTimeout(() => {
      up.close();
      reply(answer(msg, q, [], 2));
    }, 5000);
    up.on("message", (r) => {
      clearTimeout(timer);
      up.close();
      reply(r);
    });
    up.on("error", () => {
      clearTimeout(timer);
      up.close();
      reply(answer(msg, q, [], 2));
    });
    up.send(msg, 53, server);
  }

  close(): void {
    this.sock?.close();
    this.sock = undefined;
  }
}
