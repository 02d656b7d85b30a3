/**
 * Image references resolved the way Docker resolves them:
 *   busybox                      -> docker.io / library/busybox : latest
 *   user/app:1                   -> docker.io / user/app : 1
 *   127.0.0.1:5000/x, a.b/x      -> that registry / x          (a first part with "." or ":", or "localhost")
 *   x@sha256:<hex>               -> by digest
 * The "familiar" form (what `docker images` shows and tags are stored under) drops
 * `docker.io/library/` and `docker.io/`.
 */
import { EngineError } from "../errors";

export const DOCKER_HUB = "docker.io";

export interface Reference {
  domain: string; // "docker.io", "127.0.0.1:5000"
  path: string; // "library/busybox"
  tag?: string; // "latest" unless a digest was given without a tag
  digest?: string; // "sha256:<hex>"
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function parseReference(input: string, defaultTag = "latest"): Reference {
  let rest = input.trim();
  if (!rest) throw new EngineError(400, "invalid reference format");
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new EngineError(400, `invalid reference format: invalid digest ${digest}`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new EngineError(400, `invalid reference format: invalid tag ${tag}`);
  }
  let domain = DOCKER_HUB;
  let path = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      domain = first === "index.docker.io" ? DOCKER_HUB : first;
      path = rest.slice(slash + 1);
    }
  }
  if (domain === DOCKER_HUB && !path.includes("/")) path = `library/${path}`;
  if (path !== path.toLowerCase()) throw new EngineError(400, "invalid reference format: repository name must be lowercase");
  if (!path.split("/").every((c) => COMPONENT.test(c))) throw new EngineError(400, `invalid reference format: ${input}`);
  if (!tag && !digest) tag = defaultTag;
  return { domain, path, tag, digest };
}

/** The repository as Docker shows it: "busybox", "user/app", "127.0.0.1:5000/x". */
export function familiarName(r: Reference): string {
  if (r.domain !== DOCKER_HUB) return `${r.domain}/${r.path}`;
  return r.path.startsWith("library/") ? r.path.slice("library/".length) : r.path;
}

/** "busybox:latest", "busybox@sha256:..", "127.0.0.1:5000/x:1". */
export function familiarString(r: Reference): string {
  return `${familiarName(r)}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
}

/** "docker.io/library/busybox:latest": what the CLI prints after a pull. */
export function fullString(r: Reference): string {
  return `${r.domain}/${r.path}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
}
