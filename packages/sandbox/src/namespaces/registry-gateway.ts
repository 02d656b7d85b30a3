// A sandbox's path to the lab registry: an HTTP proxy on a UNIX socket that only that sandbox can
// reach (bound into it read-only), in front of the registry Berth runs on the host. The socket is
// per sandbox, so the proxy knows whom it serves without trusting anything the sandbox says.
//
// Names (the distribution API's repository names):
//   library/<x>, berth/<x>   the lab's images: GET and HEAD only (a push gets 403 DENIED)
//   anything else, <name>    learners/<owner>/<name> upstream, in request paths, mount sources,
//                            Location and Link headers, tag lists and the catalog
// so a learner pushes and pulls `localhost:5000/app` and never sees or overwrites anyone else's.
// Blob reads are repository-scoped in the registry itself: knowing another learner's digest does
// not make it readable through one's own repository.
import { createHash } from "node:crypto";
import { chmod, rm } from "node:fs/promises";
import http from "node:http";
import type { Duplex, Readable } from "node:stream";
import { removeUpload, uploadWithinQuota, type RegistryQuota } from "./registry-quota.js";

/** One path component of a repository name (the distribution spec's grammar). */
const COMPONENT = "[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
const NAME = `${COMPONENT}(?:/${COMPONENT})*`;
const NAME_RE = new RegExp(`^${NAME}$`);
const TAG = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
const DIGEST = "[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[A-Za-z0-9=_-]+";
const UPLOAD_ID = "[A-Za-z0-9_.=-]+";
// /v2/<name>/<what>, where <what> is one of the registry's per-repository endpoints.
const REPO_PATH = new RegExp(`^/v2/(${NAME})/(manifests/(?:${TAG}|${DIGEST})|blobs/uploads/(?:${UPLOAD_ID})?|blobs/${DIGEST}|tags/list)$`);

/** Read-only for learners: images the lab provides. */
export const LAB_NAMESPACES = ["library/", "berth/"];
export const LEARNER_PREFIX = "learners/";

/** Concurrent connections per sandbox (the docker CLI uses a handful: 3 layers at a time, plus one). */
export const MAX_CONNECTIONS = 64;

/** Names upstream are limited to 255 characters; ours gain a prefix, so the learner's get less. */
const MAX_NAME = 255;

/**
 * An owner name usable as one repository component: a valid one is kept; anything else (sandbox
 * ids may have capitals or a leading digit-dot) is lowered, cleaned and given a short hash of the
 * original so two ids never share a namespace.
 */
export function registryOwner(raw: string): string {
  if (raw.length <= 64 && new RegExp(`^${COMPONENT}$`).test(raw)) return raw;
  const cleaned = raw.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40) || "owner";
  return `${cleaned}-${createHash("sha256").update(raw).digest("hex").slice(0, 8)}`;
}

export interface MappedName {
  upstream: string;
  readOnly: boolean;
}

/** A learner's repository name → the name upstream (or an error message). */
export function mapRepository(name: string, owner: string): MappedName | { error: string } {
  if (!NAME_RE.test(name)) return { error: `invalid repository name ${JSON.stringify(name)}` };
  if (LAB_NAMESPACES.some((p) => name.startsWith(p))) return { upstream: name, readOnly: true };
  const upstream = `${LEARNER_PREFIX}${owner}/${name}`;
  if (upstream.length > MAX_NAME) return { error: `repository name too long (at most ${MAX_NAME - LEARNER_PREFIX.length - owner.length - 1} characters here)` };
  return { upstream, readOnly: false };
}

/** An upstream name → what this owner calls it, or undefined when it is not theirs to see. */
export function unmapRepository(upstream: string, owner: string): string | undefined {
  if (LAB_NAMESPACES.some((p) => upstream.startsWith(p))) return upstream;
  const mine = `${LEARNER_PREFIX}${owner}/`;
  return upstream.startsWith(mine) ? upstream.slice(mine.length) : undefined;
}

export interface RegistryGatewayOptions {
  /** The UNIX socket to serve (its directory is bound into the sandbox). */
  socketPath: string;
  /** The lab registry, e.g. http://127.0.0.1:5000. */
  upstream: string;
  /** Whose namespace this sandbox's pushes go to (see registryOwner). */
  owner: string;
  /** Each owner's storage quota (registry-quota.ts); without it, pushes are not limited. */
  quota?: RegistryQuota;
  log?: (line: string) => void;
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host"]);

function registryError(res: http.ServerResponse, status: number, code: string, message: string, detail?: unknown): void {
  const body = JSON.stringify({ errors: [{ code, message, detail: detail ?? null }] });
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body), "docker-distribution-api-version": "registry/2.0" });
  res.end(body);
}

export class RegistryGateway {
  private constructor(
    private readonly server: http.Server,
    readonly socketPath: string,
    private readonly whose: { owner: string },
  ) {}

  /** Whose namespace this gateway serves now (a warm sandbox learns its learner when claimed). */
  get owner(): string {
    return this.whose.owner;
  }

  /** Hands the sandbox to another owner: requests from now on map into their namespace. */
  setOwner(owner: string): void {
    this.whose.owner = registryOwner(owner);
  }

  static async listen(opts: RegistryGatewayOptions): Promise<RegistryGateway> {
    const upstream = new URL(opts.upstream);
    if (upstream.protocol !== "http:") throw new Error(`registry upstream ${opts.upstream}: only http:// (a registry on this host) is supported`);
    // Read per request, so setOwner() applies to the next request without re-listening.
    const whose = { owner: registryOwner(opts.owner) };
    const server = http.createServer((req, res) => {
      handle(req, res, upstream, whose.owner, opts.quota).catch((err: Error) => {
        opts.log?.(`registry gateway: ${err.message}`);
        if (!res.headersSent) registryError(res, 502, "UNAVAILABLE", `the lab registry is not reachable: ${err.message}`);
        else res.destroy();
      });
    });
    // A CONNECT or an upgrade through here would be a tunnel to the host: refuse both. Node hands
    // such a socket over without its own error listener: a reset from the sandbox would otherwise
    // be an uncaught error in the orchestrator's process.
    const refuse = (socket: Duplex, answer: string) => {
      socket.on("error", () => socket.destroy());
      socket.end(answer);
    };
    server.on("connect", (_req, socket: Duplex) => refuse(socket, "HTTP/1.1 405 Method Not Allowed\r\n\r\n"));
    server.on("upgrade", (_req, socket: Duplex) => refuse(socket, "HTTP/1.1 400 Bad Request\r\n\r\n"));
    // The gateway runs in the orchestrator's process: a sandbox must not be able to eat its file
    // descriptors (connections beyond this are closed at once) or hold sockets open forever.
    server.maxConnections = MAX_CONNECTIONS;
    server.headersTimeout = 30_000;
    server.requestTimeout = 0; // a big layer takes as long as it takes, as long as bytes move:
    server.timeout = 120_000; // a socket idle for 2 minutes is closed
    server.keepAliveTimeout = 30_000;
    await rm(opts.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.socketPath, () => {
        server.off("error", reject);
        resolve();
      });
    });
    // The sandbox's root is an unprivileged host uid: it must be able to connect.
    await chmod(opts.socketPath, 0o666);
    // Never what keeps a process alive (the orchestrator has its own servers; a script may not).
    server.unref();
    return new RegistryGateway(server, opts.socketPath, whose);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, upstream: URL, owner: string, quota?: RegistryQuota): Promise<void> {
  const raw = req.url ?? "/";
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = q < 0 ? "" : raw.slice(q + 1);
  const method = req.method ?? "GET";

  if (path === "/v2/" || path === "/v2") {
    if (method !== "GET" && method !== "HEAD") return registryError(res, 405, "UNSUPPORTED", `${method} ${path} is not supported`);
    return proxy(req, res, upstream, "/v2/", "", owner, undefined);
  }
  if (path === "/v2/_catalog") {
    if (method !== "GET") return registryError(res, 405, "UNSUPPORTED", `${method} ${path} is not supported`);
    return catalog(res, upstream, owner, new URLSearchParams(query));
  }
  const m = REPO_PATH.exec(path);
  if (!m) {
    if (/^\/v2\//.test(path)) return registryError(res, 404, "NAME_INVALID", `not a registry path this gateway serves: ${path.slice(0, 200)}`);
    return registryError(res, 404, "UNSUPPORTED", "not found");
  }
  const name = m[1]!;
  const rest = m[2]!;
  const mapped = mapRepository(name, owner);
  if ("error" in mapped) return registryError(res, 400, "NAME_INVALID", mapped.error, { name });
  if (mapped.readOnly && method !== "GET" && method !== "HEAD") {
    const ns = name.split("/")[0];
    return registryError(res, 403, "DENIED", `${ns}/ holds the lab's images and is read-only: push under another name (e.g. localhost:5000/${name.split("/").pop()})`, { name });
  }
  let upstreamQuery = query;
  if (query && /(^|&)from=/.test(query)) {
    // A cross-repository mount reads the source: the learner's own name or a lab image, mapped the same way.
    const params = new URLSearchParams(query);
    const from = params.get("from") ?? "";
    const source = mapRepository(from, owner);
    if ("error" in source) params.delete("from");
    else params.set("from", source.upstream);
    if ("error" in source) params.delete("mount");
    upstreamQuery = params.toString();
  }
  const repo = { name, upstream: mapped.upstream, tagsList: rest === "tags/list" };
  if (quota && !mapped.readOnly && rest.startsWith("blobs/uploads/") && (method === "POST" || method === "PATCH" || method === "PUT")) {
    // An upload: within the owner's quota, or refused as the registry refuses (DENIED).
    const refused = await uploadWithinQuota(
      req,
      quota,
      owner,
      (body, signal) => proxy(req, res, upstream, `/v2/${mapped.upstream}/${rest}`, upstreamQuery, owner, repo, { body, signal }),
      () => removeUpload(quota.storageDir, mapped.upstream, rest),
    );
    if (refused) return registryError(res, 403, "DENIED", refused, { name });
    return;
  }
  return proxy(req, res, upstream, `/v2/${mapped.upstream}/${rest}`, upstreamQuery, owner, repo);
}

/** Upstream header values that name upstream paths, made relative and back into the learner's names. */
function rewriteLocation(value: string, upstream: URL, repo: { name: string; upstream: string } | undefined): string {
  let v = value;
  if (/^https?:\/\//.test(v)) {
    const u = new URL(v);
    // Only ever point the client back at us: the upstream's address means nothing in the sandbox.
    if (u.host === upstream.host || u.hostname === "127.0.0.1" || u.hostname === "localhost") v = u.pathname + u.search;
  }
  if (repo) v = v.split(`/v2/${repo.upstream}/`).join(`/v2/${repo.name}/`);
  return v;
}

function proxy(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  upstream: URL,
  path: string,
  query: string,
  owner: string,
  repo: { name: string; upstream: string; tagsList: boolean } | undefined,
  /** The request body to send (default the request itself) and what aborts the upstream request. */
  opts: { body?: Readable; signal?: AbortSignal } = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && k !== "authorization" && v !== undefined) headers[k] = v;
    headers.host = upstream.host;
    if (req.headers["transfer-encoding"]) headers["transfer-encoding"] = req.headers["transfer-encoding"];
    const respond = (ur: http.IncomingMessage): void => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(ur.headers)) {
        if (HOP_BY_HOP.has(k) || v === undefined) continue;
        out[k] = k === "location" || k === "link" ? rewriteLocation(String(v), upstream, repo) : v;
      }
      const status = ur.statusCode ?? 502;
      // Bodies that name repositories (a tag list, an error's detail) are small JSON: rewrite them.
      const isJson = /json/.test(String(ur.headers["content-type"] ?? ""));
      if (repo && isJson && (repo.tagsList || status >= 400) && req.method !== "HEAD") {
        const parts: Buffer[] = [];
        ur.on("data", (b: Buffer) => parts.push(b));
        ur.on("error", reject);
        ur.on("end", () => {
          try {
            let text = Buffer.concat(parts).toString("utf8");
            text = text.split(repo.upstream).join(repo.name);
            // Never leak the namespace prefix, even in a message about some other name.
            text = text.split(`${LEARNER_PREFIX}${owner}/`).join("");
            delete out["content-length"];
            out["content-length"] = Buffer.byteLength(text);
            res.writeHead(status, out);
            res.end(text);
            resolve();
          } catch (err) {
            reject(err as Error);
          }
        });
        return;
      }
      res.writeHead(status, out);
      ur.pipe(res);
      ur.on("error", reject);
      res.on("close", () => {
        ur.destroy();
        resolve();
      });
    };
    const up = http.request({ host: upstream.hostname, port: upstream.port || 80, method: req.method, path: path + (query ? `?${query}` : ""), headers, signal: opts.signal }, (ur) => {
      // (a listener: nothing may throw out of it; handle()'s caller answers the error)
      try {
        respond(ur);
      } catch (err) {
        ur.destroy();
        reject(err as Error);
      }
    });
    up.on("error", reject);
    (opts.body ?? req).pipe(up);
    // The sandbox hung up mid-request: drop the upstream request, never throw.
    req.on("error", () => up.destroy());
    req.on("aborted", () => up.destroy());
  });
}

/** Fetches the upstream catalog (all pages) and keeps what this owner may see, under their names. */
async function catalog(res: http.ServerResponse, upstream: URL, owner: string, params: URLSearchParams): Promise<void> {
  const names: string[] = [];
  let next: string | undefined = "/v2/_catalog?n=1000";
  for (let pages = 0; next && pages < 1000; pages++) {
    const r: Response = await fetch(new URL(next, upstream), { signal: AbortSignal.timeout(30_000) });
    if (r.status !== 200) throw new Error(`catalog: upstream answered ${r.status}`);
    const body = (await r.json()) as { repositories?: string[] };
    for (const n of body.repositories ?? []) {
      const mine = unmapRepository(n, owner);
      if (mine !== undefined) names.push(mine);
    }
    const link: string | null = r.headers.get("link");
    next = link ? /<([^>]+)>/.exec(link)?.[1] : undefined;
  }
  names.sort();
  const nRaw = params.get("n");
  const n = nRaw === null ? undefined : Number(nRaw);
  if (n !== undefined && !(Number.isInteger(n) && n >= 0)) return registryError(res, 400, "PAGINATION_NUMBER_INVALID", `invalid n ${JSON.stringify(nRaw)}`);
  const last = params.get("last");
  let list = last ? names.filter((x) => x > last) : names;
  const headers: http.OutgoingHttpHeaders = { "content-type": "application/json; charset=utf-8", "docker-distribution-api-version": "registry/2.0" };
  if (n !== undefined && list.length > n) {
    list = list.slice(0, n);
    if (n > 0) headers.link = `</v2/_catalog?last=${encodeURIComponent(list[list.length - 1]!)}&n=${n}>; rel="next"`;
  }
  const body = JSON.stringify({ repositories: list });
  headers["content-length"] = Buffer.byteLength(body);
  res.writeHead(200, headers);
  res.end(body);
}
