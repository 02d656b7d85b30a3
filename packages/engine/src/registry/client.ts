/**
 * A client of the Docker Registry HTTP API v2 (the distribution API): manifests, blobs, uploads,
 * the anonymous token dance, and the registry's errors in dockerd's words.
 *
 * Where a reference goes: docker.io names go to the configured mirror (docker.io itself is not
 * reachable from a Berth machine); any other domain is itself a registry. Plain HTTP is used for
 * loopback registries and for the mirror (Docker's insecure-registry rule), HTTPS otherwise.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { EngineError } from "../errors";
import { DOCKER_HUB, familiarName, familiarString, type Reference } from "./reference";

export const MT = {
  list: "application/vnd.docker.distribution.manifest.list.v2+json",
  index: "application/vnd.oci.image.index.v1+json",
  schema2: "application/vnd.docker.distribution.manifest.v2+json",
  oci: "application/vnd.oci.image.manifest.v1+json",
  schema1: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  config: "application/vnd.docker.container.image.v1+json",
  layerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  urls?: string[];
}

export interface Manifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface RegistryClientOptions {
  /** Where docker.io names are fetched from, e.g. http://127.0.0.1:5000 (a registry mirror). */
  mirror?: string;
}


interface RegistryErrorBody {
  errors?: { code?: string; message?: string }[];
}

export class RegistryClient {
  readonly mirror?: URL;
  private tokens = new Map<string, string>();

  constructor(opts: RegistryClientOptions = {}) {
    if (opts.mirror) {
      try {
        this.mirror = new URL(opts.mirror);
      } catch {
        throw new Error(`invalid registry mirror ${JSON.stringify(opts.mirror)}: expected a URL like http://127.0.0.1:5000`);
      }
      if (!/^https?:$/.test(this.mirror.protocol)) throw new Error(`invalid registry mirror ${opts.mirror}: only http:// and https:// are understood`);
    }
  }

  /** True when this engine can reach a registry for the reference (docker.io only via a mirror). */
  canReach(r: Reference): boolean {
    return r.domain !== DOCKER_HUB || !!this.mirror;
  }

  /** The base URL for a reference's registry ("http://127.0.0.1:5000"). */
  base(r: Reference): string {
    if (r.domain === DOCKER_HUB) {
      if (!this.mirror) {
        throw new EngineError(500, `cannot pull ${familiarString(r)}: docker.io is not reachable from this machine and no registry mirror is configured (start the engine with --registry-mirror http://host:port or BERTH_REGISTRY_MIRROR)`);
      }
      return this.mirror.origin + this.mirror.pathname.replace(/\/+$/, "");
    }
    return `${this.insecure(r.domain) ? "http" : "https"}://${r.domain}`;
  }

  /** Docker's rule: plain HTTP for loopback registries (and the mirror, configured on purpose). */
  private insecure(domain: string): boolean {
    const host = domain.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
    if (host === "localhost" || host === "::1" || /^127\./.test(host)) return true;
    return !!this.mirror && this.mirror.protocol === "http:" && this.mirror.host === domain;
  }

  /** A request to the registry, retried once with a bearer token if the registry asks for one. */
  async request(r: Reference, method: string, pathOrUrl: string, init: { headers?: Record<string, string>; body?: Buffer; scope?: string } = {}): Promise<Response> {
    const url = /^https?:/.test(pathOrUrl) ? pathOrUrl : `${this.base(r)}${pathOrUrl}`;
    const scope = init.scope ?? `repository:${r.path}:${method === "GET" || method === "HEAD" ? "pull" : "pull,push"}`;
    const send = async (token?: string): Promise<Response> => {
      const headers: Record<string, string> = { ...init.headers };
      if (token) headers.Authorization = `Bearer ${token}`;
      try {
        return await fetch(url, { method, headers, body: init.body ? new Uint8Array(init.body) : undefined, redirect: "follow" });
      } catch (e) {
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        throw new EngineError(500, `Get "${url}": ${cause?.code === "ECONNREFUSED" ? `dial tcp ${new URL(url).host}: connect: connection refused` : (cause?.message ?? (e as Error).message)}`);
      }
    };
    const key = `${new URL(url).host} ${scope}`;
    let res = await send(this.tokens.get(key));
    if (res.status === 401) {
      const challenge = res.headers.get("www-authenticate") ?? "";
      await res.arrayBuffer().catch(() => undefined);
      const token = await this.fetchToken(challenge, scope);
      if (!token) throw new EngineError(401, `pull access denied for ${familiarName(r)}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`);
      this.tokens.set(key, token);
      res = await send(token);
    }
    return res;
  }

  /** The anonymous bearer token flow (a registry with `auth: token`); undefined if not offered. */
  private async fetchToken(challenge: string, scope: string): Promise<string | undefined> {
    const m = /^Bearer\s+(.*)$/i.exec(challenge);
    if (!m) return undefined;
    const params = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (!params.realm) return undefined;
    const u = new URL(params.realm);
    if (params.service) u.searchParams.set("service", params.service);
    u.searchParams.set("scope", params.scope ?? scope);
    const res = await fetch(u);
    if (!res.ok) return undefined;
    const body = (await res.json()) as { token?: string; access_token?: string };
    return body.token ?? body.access_token;
  }

  /** Turn a failed response into dockerd's message for it. */
  async fail(r: Reference, res: Response, what: "manifest" | "blob" | "push"): Promise<never> {
    let body: RegistryErrorBody = {};
    const text = await res.text().catch(() => "");
    try {
      body = JSON.parse(text) as RegistryErrorBody;
    } catch {
      /* not JSON */
    }
    const e = body.errors?.[0];
    const cause = e?.code ? `${e.code.toLowerCase().replace(/_/g, " ")}: ${e.message ?? ""}` : `unexpected status ${res.status} ${res.statusText}${text ? `: ${text.trim().slice(0, 200)}` : ""}`;
    if (what !== "push") {
      if (e?.code === "MANIFEST_UNKNOWN") throw new EngineError(404, `manifest for ${familiarString(r)} not found: ${cause}`);
      if (e?.code === "NAME_UNKNOWN") throw new EngineError(404, `repository ${familiarName(r)} not found: ${cause}`);
      if (e?.code === "DENIED" || res.status === 401) throw new EngineError(404, `pull access denied for ${familiarName(r)}, repository does not exist or may require 'docker login': ${cause}`);
      if (res.status === 404) throw new EngineError(404, `manifest for ${familiarString(r)} not found: manifest unknown: manifest unknown`);
    }
    throw new EngineError(500, cause);
  }

  /** GET a manifest (by tag or digest), with the bytes it came as and their digest. */
  async getManifest(r: Reference, tagOrDigest: string): Promise<{ bytes: Buffer; mediaType: string; digest: string }> {
    const res = await this.request(r, "GET", `/v2/${r.path}/manifests/${tagOrDigest}`, { headers: { Accept: [MT.list, MT.index, MT.schema2, MT.oci, MT.schema1].join(", ") } });
    if (!res.ok) return this.fail(r, res, "manifest");
    const bytes = Buffer.from(await res.arrayBuffer());
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if (tagOrDigest.startsWith("sha256:") && digest !== tagOrDigest) throw new EngineError(500, `manifest verification failed for digest ${tagOrDigest}`);
    let mediaType = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
    try {
      mediaType = (JSON.parse(bytes.toString("utf8")) as { mediaType?: string }).mediaType ?? mediaType;
    } catch {
      throw new EngineError(500, `the registry sent a manifest that is not JSON`);
    }
    return { bytes, mediaType, digest };
  }

  /**
   * A request whose body or answer is a blob: node's http straight to and from files (fetch's web
   * streams cost several times more CPU per byte). A 401 gets the token through request() and
   * one retry; redirects (a registry in front of object storage) are followed.
   */
  private async stream(r: Reference, method: string, url: string, headers: Record<string, string>, body?: () => Readable, depth = 0): Promise<http.IncomingMessage> {
    const u = new URL(url);
    const scope = `repository:${r.path}:${method === "GET" ? "pull" : "pull,push"}`;
    const token = this.tokens.get(`${u.host} ${scope}`);
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = (u.protocol === "https:" ? https : http).request(u, { method, headers: { ...headers, ...(token ? { Authorization: `Bearer ${token}` } : {}) } }, resolve);
      req.on("error", (e) => reject(new EngineError(500, `${method} "${url}": ${e.message}`)));
      if (body) pipeline(body(), req).catch((e: Error) => req.destroy(e));
      else req.end();
    });
    if (res.statusCode === 401 && depth === 0) {
      res.resume();
      const probe = await this.request(r, method === "GET" ? "HEAD" : "POST", method === "GET" ? u.pathname : `/v2/${r.path}/blobs/uploads/`, { scope, headers: { "Content-Length": "0" } });
      await probe.arrayBuffer().catch(() => undefined);
      return this.stream(r, method, url, headers, body, 1);
    }
    if ([301, 302, 303, 307, 308].includes(res.statusCode ?? 0) && res.headers.location && depth < 5) {
      res.resume();
      return this.stream(r, method, new URL(res.headers.location, url).toString(), headers, body, depth + 1);
    }
    return res;
  }

  private async failStream(r: Reference, res: http.IncomingMessage, what: "blob" | "push"): Promise<never> {
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    return this.fail(r, new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500, statusText: res.statusMessage ?? "" }), what);
  }

  /** Download a blob to a file, checking its digest; `onBytes` sees the running count. */
  async downloadBlob(r: Reference, d: Descriptor, file: string, onBytes?: (n: number) => void): Promise<void> {
    const res = await this.openBlob(r, d);
    const hash = createHash("sha256");
    let n = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        n += chunk.length;
        onBytes?.(n);
        cb(null, chunk);
      },
    });
    await pipeline(res, count, fs.createWriteStream(file));
    const got = `sha256:${hash.digest("hex")}`;
    if (got !== d.digest) throw new EngineError(500, `filesystem layer verification failed for digest ${d.digest}`);
  }

  /** GET a blob: the response to read it from (the caller checks its digest). */
  async openBlob(r: Reference, d: Descriptor): Promise<http.IncomingMessage> {
    const res = await this.stream(r, "GET", `${this.base(r)}/v2/${r.path}/blobs/${d.digest}`, {});
    if (res.statusCode !== 200) return this.failStream(r, res, "blob");
    return res;
  }

  async blobExists(r: Reference, digest: string): Promise<boolean> {
    const res = await this.request(r, "HEAD", `/v2/${r.path}/blobs/${digest}`, { scope: `repository:${r.path}:pull,push` });
    await res.arrayBuffer().catch(() => undefined);
    return res.status === 200;
  }

  /** Try a cross-repository mount; true if the registry mounted it (no upload needed). */
  async mountBlob(r: Reference, digest: string, fromPath: string): Promise<{ mounted: true } | { mounted: false; location?: string }> {
    const res = await this.request(r, "POST", `/v2/${r.path}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromPath)}`, { headers: { "Content-Length": "0" } });
    await res.arrayBuffer().catch(() => undefined);
    if (res.status === 201) return { mounted: true };
    return { mounted: false, location: res.status === 202 ? (res.headers.get("location") ?? undefined) : undefined };
  }

  /** Upload a blob from a file (POST a session, then one monolithic PUT). */
  async uploadBlob(r: Reference, digest: string, file: string, onBytes?: (n: number) => void, location?: string): Promise<void> {
    if (!location) {
      const start = await this.request(r, "POST", `/v2/${r.path}/blobs/uploads/`, { headers: { "Content-Length": "0" } });
      if (start.status !== 202) return this.fail(r, start, "push");
      await start.arrayBuffer().catch(() => undefined);
      location = start.headers.get("location") ?? undefined;
      if (!location) throw new EngineError(500, "the registry started an upload without a Location");
    }
    const url = new URL(location, this.base(r));
    url.searchParams.set("digest", digest);
    const size = fs.statSync(file).size;
    const res = await this.stream(r, "PUT", url.toString(), { "Content-Type": "application/octet-stream", "Content-Length": String(size) }, () => {
      let n = 0;
      return fs.createReadStream(file, { highWaterMark: 1 << 20 }).pipe(
        new Transform({
          transform(chunk: Buffer, _e, cb) {
            n += chunk.length;
            onBytes?.(n);
            cb(null, chunk);
          },
        }),
      );
    });
    if (res.statusCode !== 201) return this.failStream(r, res, "push");
    res.resume();
  }

  /**
   * Upload a blob as it is being made (a layer compressed on the way): one PATCH with a chunked
   * body, then the PUT that names its digest, known only once the body has ended. The body
   * cannot be sent twice: the session's token is taken by the POST that opens it.
   */
  async uploadStream(r: Reference, body: Readable, digest: () => string): Promise<void> {
    const start = await this.request(r, "POST", `/v2/${r.path}/blobs/uploads/`, { headers: { "Content-Length": "0" } });
    if (start.status !== 202) return this.fail(r, start, "push");
    await start.arrayBuffer().catch(() => undefined);
    const location = start.headers.get("location");
    if (!location) throw new EngineError(500, "the registry started an upload without a Location");
    let sent = false;
    const once = () => {
      if (sent) throw new EngineError(500, "the registry asked for a streamed layer twice");
      sent = true;
      return body;
    };
    const patch = await this.stream(r, "PATCH", new URL(location, this.base(r)).toString(), { "Content-Type": "application/octet-stream" }, once);
    if (patch.statusCode !== 202) return this.failStream(r, patch, "push");
    patch.resume();
    const done = new URL(patch.headers.location ?? location, this.base(r));
    done.searchParams.set("digest", digest());
    const put = await this.stream(r, "PUT", done.toString(), { "Content-Length": "0" });
    if (put.statusCode !== 201) return this.failStream(r, put, "push");
    put.resume();
  }

  async uploadBytes(r: Reference, digest: string, bytes: Buffer): Promise<void> {
    const start = await this.request(r, "POST", `/v2/${r.path}/blobs/uploads/`, { headers: { "Content-Length": "0" } });
    if (start.status !== 202) return this.fail(r, start, "push");
    await start.arrayBuffer().catch(() => undefined);
    const url = new URL(start.headers.get("location") ?? "", this.base(r));
    url.searchParams.set("digest", digest);
    const res = await this.request(r, "PUT", url.toString(), { headers: { "Content-Type": "application/octet-stream" }, body: bytes });
    if (res.status !== 201) return this.fail(r, res, "push");
    await res.arrayBuffer().catch(() => undefined);
  }

  async putManifest(r: Reference, tag: string, bytes: Buffer, mediaType: string): Promise<string> {
    const res = await this.request(r, "PUT", `/v2/${r.path}/manifests/${tag}`, { headers: { "Content-Type": mediaType }, body: bytes });
    if (res.status !== 201) return this.fail(r, res, "push");
    await res.arrayBuffer().catch(() => undefined);
    return res.headers.get("docker-content-digest") ?? `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  }

  /** The repositories of a registry (`GET /v2/_catalog`), for `docker search`. */
  async catalog(r: Reference): Promise<string[]> {
    const res = await this.request(r, "GET", "/v2/_catalog?n=1000", { scope: "registry:catalog:*" });
    if (!res.ok) return this.fail(r, res, "blob");
    return ((await res.json()) as { repositories?: string[] }).repositories ?? [];
  }
}
