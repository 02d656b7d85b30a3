// The pieces of networking that need no namespace: the userland proxy (TCP and UDP, against real
// sockets: busybox has no UDP server to put in a container) and the embedded DNS's wire format.
import dgram from "node:dgram";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { answer, DnsServer, parseQuery } from "../../src/network/dns";
import { formatSubnet, overlaps, parseSubnet } from "../../src/network/ipam";
import { normalizePort } from "../../src/network/manager";
import { tcpProxy, udpProxy, type Proxy } from "../../src/network/proxy";

const closers: (() => void)[] = [];
afterEach(() => {
  while (closers.length) closers.pop()!();
});

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });

describe("userland proxy", () => {
  it("copies TCP both ways, half-close included", async () => {
    const target = net.createServer({ allowHalfOpen: true }, (s) => {
      let got = "";
      s.on("data", (d) => (got += d));
      s.on("end", () => s.end(`got ${got}`));
    });
    await new Promise<void>((r) => target.listen(0, "127.0.0.1", r));
    closers.push(() => target.close());
    const port = await freePort();
    const proxy: Proxy = await tcpProxy("127.0.0.1", port, "127.0.0.1", (target.address() as net.AddressInfo).port);
    closers.push(() => proxy.close());
    const reply = await new Promise<string>((resolve, reject) => {
      const c = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true }, () => c.end("hello"));
      let out = "";
      c.on("data", (d) => (out += d)).on("end", () => resolve(out)).on("error", reject);
    });
    expect(reply).toBe("got hello");
  });

  it("refuses a port that is taken (EADDRINUSE), so the engine can word the error", async () => {
    const port = await freePort();
    const first = await tcpProxy("127.0.0.1", port, "127.0.0.1", 9);
    closers.push(() => first.close());
    await expect(tcpProxy("127.0.0.1", port, "127.0.0.1", 9)).rejects.toMatchObject({ code: "EADDRINUSE" });
  });

  it("relays UDP datagrams and their replies, per client", async () => {
    const target = dgram.createSocket("udp4");
    target.on("message", (m, r) => target.send(`pong ${m}`, r.port, r.address));
    await new Promise<void>((r) => target.bind(0, "127.0.0.1", r));
    closers.push(() => target.close());
    const port = await freePort();
    const proxy = await udpProxy("127.0.0.1", port, "127.0.0.1", target.address().port);
    closers.push(() => proxy.close());
    const ask = (text: string) =>
      new Promise<string>((resolve) => {
        const c = dgram.createSocket("udp4");
        c.on("message", (m) => {
          c.close();
          resolve(m.toString());
        });
        c.send(text, port, "127.0.0.1");
      });
    expect(await Promise.all([ask("a"), ask("b")])).toEqual(["pong a", "pong b"]);
  });
});

describe("embedded DNS", () => {
  const query = (name: string, type = 1) => {
    const labels = name.split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
    const head = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    return Buffer.concat([head, ...labels, Buffer.from([0, 0, type, 0, 1])]);
  };

  it("parses a question and answers A records (none for AAAA)", () => {
    const q = parseQuery(query("DB.app"))!;
    expect(q).toMatchObject({ id: 0x1234, name: "db.app", type: 1 });
    const a = answer(query("db"), parseQuery(query("db"))!, ["172.18.0.2"]);
    expect(a.readUInt16BE(6)).toBe(1); // one answer
    expect([...a.subarray(a.length - 4)]).toEqual([172, 18, 0, 2]);
    const aaaa = answer(query("db", 28), parseQuery(query("db", 28))!, ["172.18.0.2"]);
    expect(aaaa.readUInt16BE(6)).toBe(0);
    expect(parseQuery(Buffer.from([1, 2, 3]))).toBeUndefined();
  });

  it("answers known names over UDP and fails over to SERVFAIL with no upstream", async () => {
    // The server always listens on port 53: give it a loopback address of its own.
    const server = new DnsServer("127.0.0.53", (name) => (name === "db" ? ["172.18.0.2"] : undefined), []);
    try {
      await server.listen();
    } catch {
      return; // 127.0.0.53:53 is taken on this machine (a local resolver): covered by network.test.ts
    }
    closers.push(() => server.close());
    const ask = (name: string) =>
      new Promise<Buffer>((resolve) => {
        const c = dgram.createSocket("udp4");
        c.on("message", (m) => {
          c.close();
          resolve(m);
        });
        c.send(query(name), 53, "127.0.0.53");
      });
    const known = await ask("db");
    expect(known.readUInt16BE(6)).toBe(1);
    const unknown = await ask("example.org");
    expect(unknown.readUInt16BE(2) & 0xf).toBe(2);
  });
});

describe("addresses and ports", () => {
  it("parses subnets and sees overlaps", () => {
    expect(formatSubnet(parseSubnet("172.18.5.9/16"))).toBe("172.18.0.0/16");
    expect(overlaps(parseSubnet("172.18.0.0/16"), parseSubnet("172.18.5.0/24"))).toBe(true);
    expect(overlaps(parseSubnet("172.18.0.0/16"), parseSubnet("172.19.0.0/16"))).toBe(false);
    expect(() => parseSubnet("10.0.0.0/33")).toThrow("invalid CIDR address: 10.0.0.0/33");
  });

  it("normalizes port keys and refuses what Docker refuses", () => {
    expect(normalizePort("80")).toBe("80/tcp");
    expect(normalizePort("53/udp")).toBe("53/udp");
    expect(() => normalizePort("0")).toThrow('invalid port specification: "0"');
    expect(() => normalizePort("80/icmp")).toThrow('invalid port specification: "80/icmp"');
  });
});
