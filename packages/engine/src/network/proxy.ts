/**
 * The userland proxy behind `-p`: a listening socket in the engine's network namespace that copies
 * bytes to the container's address (docker-proxy does the same when iptables DNAT is not used). It
 * works for loopback too (DNAT cannot catch 127.0.0.1 without route_localnet), and it needs no
 * kernel support beyond sockets, so it behaves the same on a host and nested in a sandbox.
 */
import dgram from "node:dgram";
import net from "node:net";

export interface Proxy {
  close(): void;
}

/** Listen (resolves once bound; rejects with the listen error, e.g. EADDRINUSE). */
export function tcpProxy(host: string, port: number, targetIp: string, targetPort: number): Promise<Proxy> {
  const conns = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ host: targetIp, port: targetPort, allowHalfOpen: true });
    conns.add(client).add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
    const done = () => {
      client.destroy();
      upstream.destroy();
      conns.delete(client);
      conns.delete(upstream);
    };
    client.on("error", done).on("close", done);
    upstream.on("error", done).on("close", done);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port, ipv6Only: false, exclusive: true }, () => {
      server.off("error", reject);
      resolve({
        close() {
          server.close();
          for (const s of conns) s.destroy();
        },
      });
    });
  });
}

/**
 * UDP: one upstream socket per client address, so replies find their way back; a flow is
 * forgotten after 90 s of silence (docker-proxy's UDP timeout).
 */
export function udpProxy(host: string, port: number, targetIp: string, targetPort: number): Promise<Proxy> {
  const v6 = host.includes(":");
  const sock = dgram.createSocket({ type: v6 ? "udp6" : "udp4", ipv6Only: false });
  const flows = new Map<string, { up: dgram.Socket; timer: NodeJS.Timeout }>();
  const forget = (key: string) => {
    const f = flows.get(key);
    if (!f) return;
    clearTimeout(f.timer);
    f.up.close();
    flows.delete(key);
  };
  sock.on("message", (msg, rinfo) => {
    const key = `${rinfo.address}|${rinfo.port}`;
    let f = flows.get(key);
    if (!f) {
      const up = dgram.createSocket("udp4");
      up.on("message", (reply) => sock.send(reply, rinfo.port, rinfo.address));
      up.on("error", () => forget(key));
      f = { up, timer: setTimeout(() => forget(key), 90_000) };
      flows.set(key, f);
    }
    f.timer.refresh();
    f.up.send(msg, targetPort, targetIp);
  });
  return new Promise((resolve, reject) => {
    sock.once("error", reject);
    sock.bind({ address: host, port, exclusive: true }, () => {
      sock.off("error", reject);
      sock.on("error", () => {});
      resolve({
        close() {
          for (const k of [...flows.keys()]) forget(k);
          sock.close();
        },
      });
    });
  });
}
