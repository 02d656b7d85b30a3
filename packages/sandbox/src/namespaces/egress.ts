// What a sandbox may reach outside: its egress policy and the host-side HTTP proxy that enforces it.
//
// Default deny. A sandbox reaches the host's nameservers (DNS, in network.ts's firewall) and plain
// HTTP to the hosts on the allow-list below, nothing else. Port 80 from a sandbox is redirected on
// the host (nat BERTH-PREROUTING) to this proxy, which listens on that sandbox's gateway address
// (its host end of the veth, so which proxy answered says which sandbox asked), reads each
// request's Host header, and forwards only allowed names, resolved on the host at that moment.
//
// Why names and not addresses: the archive sits on a CDN, whose addresses are shared with other
// sites and change. On the machine this was built on, deb.debian.org, security.debian.org and
// registry.npmjs.org all resolve to one address, so an address allow-list would have opened npm
// too. The proxy checks every request on a kept-alive connection, not just the first, and refuses
// CONNECT and upgrades. HTTPS is not forwarded (an SNI check alone would allow domain fronting);
// apt's default sources are plain HTTP (and signed).
import dns from "node:dns/promises";
import http from "node:http";
import { isIP } from "node:net";
import { BLOCKED_RANGES, EGRESS_PROXY_PORT, inRange } from "./network.js";

/** The names a sandbox may reach over HTTP (port 80): Debian's archive. The one place to change it. */
export const DEFAULT_EGRESS_ALLOW = ["deb.debian.org", "security.debian.org"];

/** Connections one sandbox may hold through its proxy at once. */
export const EGRESS_MAX_CONNECTIONS = 32;

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]);

export interface EgressProxyOptions {
  /** The sandbox's gateway (host end of its veth): where the proxy listens. */
  gateway: string;
  /** The sandbox's own address: the only client it serves. */
  client: string;
  /** Names it forwards (exact, case-insensitive). */
  allow: string[];
  log?: (line: string) => void;
}

function refuse(res: http.ServerResponse, status: number, message: string): void {
  const body = `[Berth] ${message}\n`;
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body), connection: "close" });
  res.end(body);
}

/** The host name a request is for (Host header, or an absolute-form target that must agree with it). */
function requestHost(req: http.IncomingMessage): string | { error: string } {
  const host = (req.headers.host ?? "").trim().toLowerCase();
  const m = /^([a-z0-9.-]+)(?::(\d+))?$/.exec(host);
  if (!m) return { error: `a request without a valid Host header (${JSON.stringify(host.slice(0, 100))})` };
  if (m[2] && m[2] !== "80") return { error: `only port 80 is forwarded (Host ${host})` };
  const url = req.url ?? "";
  if (!url.startsWith("/")) {
    // absolute-form (a client configured to use a proxy): it must name the same host.
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return { error: `a request target that is neither a path nor a URL` };
    }
    if (target.protocol !== "http:" || target.hostname.toLowerCase() !== m[1] || (target.port && target.port !== "80")) return { error: `the request target ${url.slice(0, 100)} does not match its Host header` };
  }
  return m[1]!;
}

export class EgressProxy {
  private constructor(
    private readonly server: http.Server,
    readonly gateway: string,
  ) {}

  /** Listens on gateway:EGRESS_PROXY_PORT. EADDRINUSE means another process serves this sandbox already. */
  static async listen(opts: EgressProxyOptions): Promise<EgressProxy> {
    const allow = new Set(opts.allow.map((h) => h.toLowerCase()));
    const list = [...allow].join(", ") || "nothing";
    const server = http.createServer((req, res) => {
      // Only this sandbox: another one's traffic never arrives here (the firewall), but say it twice.
      if (req.socket.remoteAddress?.replace(/^::ffff:/, "") !== opts.client) return refuse(res, 403, "this proxy serves another sandbox");
      const host = requestHost(req);
      if (typeof host !== "string") return refuse(res, 400, host.error);
      if (!allow.has(host)) return refuse(res, 403, `${host} is not on this sandbox's egress allow-list (${list}): the connection was refused.`);
      forward(req, res, host).catch((err: Error) => {
        opts.log?.(`egress proxy ${opts.gateway}: ${host}: ${err.message}`);
        if (!res.headersSent) refuse(res, 502, `${host} could not be reached: ${err.message}`);
        else res.destroy();
      });
    });
    server.on("connect", (_req, socket) => socket.end("HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n"));
    server.on("upgrade", (_req, socket) => socket.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"));
    // In the orchestrator's process: bounded in connections and time.
    server.maxConnections = EGRESS_MAX_CONNECTIONS;
    server.headersTimeout = 30_000;
    server.requestTimeout = 0; // a large package takes as long as it takes, while bytes move:
    server.timeout = 120_000; // an idle socket is closed after 2 minutes
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(EGRESS_PROXY_PORT, opts.gateway, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.unref();
    return new EgressProxy(server, opts.gateway);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/** Resolves an allowed name on the host now; a name that points into a private range is refused. */
async function resolveAllowed(host: string): Promise<string> {
  const addresses = isIP(host) ? [{ address: host }] : await dns.lookup(host, { all: true, family: 4 });
  const ok = addresses.map((a) => a.address).filter((a) => !BLOCKED_RANGES.some((r) => inRange(a, r)));
  if (!ok.length) throw new Error(`${host} resolves to no public IPv4 address`);
  return ok[Math.floor(Math.random() * ok.length)]!;
}

async function forward(req: http.IncomingMessage, res: http.ServerResponse, host: string): Promise<void> {
  const address = await resolveAllowed(host);
  const headers: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
  headers.host = host;
  if (req.headers["transfer-encoding"]) headers["transfer-encoding"] = req.headers["transfer-encoding"];
  const path = (req.url ?? "/").startsWith("/") ? req.url! : new URL(req.url!).pathname + new URL(req.url!).search;
  await new Promise<void>((resolve, reject) => {
    const up = http.request({ host: address, port: 80, method: req.method, path, headers, setHost: false, timeout: 30_000 }, (ur) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(ur.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) out[k] = v;
      res.writeHead(ur.statusCode ?? 502, out);
      ur.pipe(res);
      ur.on("error", reject);
      ur.on("end", resolve);
      res.on("close", () => {
        ur.destroy();
        resolve();
      });
    });
    up.on("timeout", () => up.destroy(new Error("no answer within 30 s")));
    up.on("error", reject);
    req.pipe(up);
    req.on("aborted", () => up.destroy());
  });
}
