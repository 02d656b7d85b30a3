/**
 * /images/...: list (with filters), inspect, history, tag, remove, prune; pull and push against a
 * registry (../registry), with the offline fallbacks (busybox made here, debian built or shared);
 * save/load; /commit, which asks the snapshotter to turn a container's writable layer into a layer.
 */
import { execFileSync } from "node:child_process";
import type { ContainerService } from "../containers/service";
import { EngineError } from "../errors";
import { normalizeReference, type ContainerDefaults, type Image, type ImageStore } from "../images/store";
import { applyChange } from "../images/changes";
import { loadImages, saveImages } from "../images/archive";
import { importImage } from "../images/import";
import type { Builder, RunConfig } from "../build/builder";
import { handleBuild } from "../build/route";
import type { RegistryClient } from "../registry/client";
import { DOCKER_HUB, familiarName, familiarString, parseReference, type Reference } from "../registry/reference";
import { runPull } from "../registry/pull";
import { pullPlan } from "../registry/source";
import { pushImage } from "../registry/push";
import { boolParam, parseFilters, readJson, send, sendJson, startStream, type Ctx, type Router } from "./http";

export function imageRoutes(router: Router, svc: ContainerService, images: ImageStore, registry: RegistryClient, builder: Builder): void {
  /** `docker events` for images, as dockerd's LogImageEvent words them: the name, plus the image's labels. */
  const imageEvent = (id: string, action: string, name: string) => {
    const labels = images.resolve(id)?.config.config?.Labels ?? {};
    svc.events.publish("image", action, id, { ...labels, name });
  };
  const find = (ref: string): Image => {
    const img = images.resolve(ref);
    if (!img) throw new EngineError(404, `No such image: ${ref}`);
    return img;
  };

  router.on("GET", "/images/json", (ctx) => {
    // Intermediate images of a build (untagged parents of other images) show only with -a.
    const all = images.list();
    const parents = new Set(all.map((i) => i.config.parent).filter(Boolean));
    const f = parseFilters(ctx);
    let shown = boolParam(ctx, "all") || f.reference ? all : all.filter((i) => i.tags.length || !parents.has(i.id));
    shown = filterImages(shown, f, images, parents);
    const users = containerCounts(svc);
    sendJson(ctx, 200, shown.map((i) => ({
      Id: i.id,
      ParentId: i.config.parent ?? "",
      // dockerd lists a dangling image with <none> placeholders on old APIs; the CLI shows them either way.
      RepoTags: i.tags.length ? i.tags : ctx.version < "1.43" && !i.digests.length ? ["<none>:<none>"] : [],
      RepoDigests: i.digests.length ? i.digests : ctx.version < "1.43" && !i.tags.length ? ["<none>@<none>"] : [],
      Created: Math.floor(Date.parse(i.config.created) / 1000),
      Size: i.size,
      SharedSize: -1,
      VirtualSize: i.size,
      Labels: i.config.config.Labels ?? {},
      Containers: users.get(i.id) ?? 0,
    })));
  });

  // Pull: from the image's registry (docker.io names from the mirror), streaming dockerd's
  // progress (../registry/source.ts decides). Offline fallbacks for docker.io names: an image that
  // is here is "up to date"; one the engine can make (debian, a shared store's) is made now, its
  // progress streamed as pull progress.

  router.on("POST", "/images/create", async (ctx) => {
    const fromSrc = ctx.query.get("fromSrc");
    if (fromSrc) {
      // docker import (../images/import.ts): the body is a root filesystem tarball.
      const repo = ctx.query.get("repo");
      const tag = ctx.query.get("tag");
      const reference = repo ? (tag ? `${repo}:${tag}` : repo) : undefined; // the CLI sends "name:tag" as repo
      const id = await importImage(images, ctx.req, { source: fromSrc, changes: ctx.query.getAll("changes"), message: ctx.query.get("message") ?? undefined, reference });
      imageEvent(id, "import", id);
      const res = startStream(ctx, "application/json");
      return res.end(`${JSON.stringify({ status: id })}\n`);
    }
    const ref = referenceFromQuery(ctx.query.get("fromImage") ?? "", ctx.query.get("tag") ?? "");
    const familiar = familiarString(ref);
    const plan = await pullPlan(images, registry, ref);
    if (plan) {
      const res = startStream(ctx, "application/json");
      const say = (o: object) => res.write(`${goJson(o)}\n`);
      try {
        await runPull(images, registry, plan, say);
        imageEvent(familiar, "pull", repoOf(familiar));
      } catch (e) {
        const message = (e as Error).message;
        say({ errorDetail: { message }, error: message });
      }
      return res.end();
    }
    if (ref.domain !== DOCKER_HUB) throw new EngineError(500, `cannot pull ${familiar}: no registry for ${ref.domain}`);
    if (!images.resolve(familiar) && !images.canBuildLocally(familiar)) {
      if (registry.mirror) throw new EngineError(404, `manifest for ${familiar} not found: manifest unknown: manifest unknown`);
      const local = images.list().flatMap((i) => i.tags).join(", ") || "none";
      throw new EngineError(500, `cannot pull ${familiar}: docker.io is not reachable from this machine and no registry mirror is configured (start the engine with --registry-mirror http://host:port or BERTH_REGISTRY_MIRROR; local images: ${local})`);
    }
    const res = startStream(ctx, "application/json");
    const say = (o: object) => res.write(`${goJson(o)}\n`);
    const id = ref.tag ?? familiar;
    say({ status: `Pulling from ${ref.path}`, id });
    if (images.resolve(familiar)) {
      imageEvent(familiar, "pull", repoOf(familiar));
      return res.end(`${JSON.stringify({ status: `Status: Image is up to date for ${familiar}` })}\n`);
    }
    say({ status: `Building ${familiar} here (no registry has it); this takes a while once`, id });
    try {
      await images.build(familiar, (line) => say({ status: line, id }));
      imageEvent(familiar, "pull", repoOf(familiar));
      res.end(`${JSON.stringify({ status: `Status: Downloaded newer image for ${familiar}` })}\n`);
    } catch (e) {
      const message = (e as Error).message;
      res.end(`${JSON.stringify({ errorDetail: { message }, error: message })}\n`);
    }
  });

  // Push: every tag of the repository, or the one asked for, to the registry its name names.
  router.on("POST", "/images/:name*/push", async (ctx) => {
    const name = ctx.params[0]!;
    const tag = ctx.query.get("tag") ?? "";
    let ref: Reference;
    try {
      ref = parseReference(tag ? `${name}:${tag}` : name);
    } catch (e) {
      throw new EngineError(400, (e as Error).message);
    }
    const repoName = familiarName(ref);
    if (ref.domain === DOCKER_HUB) {
      throw new EngineError(500, `cannot push ${repoName}: docker.io is not reachable from this machine (and a mirror only serves pulls); tag the image with a registry's address first, e.g. docker tag ${repoName} 127.0.0.1:5000/${repoName}`);
    }
    const tags = tag ? [tag] : [...new Set(images.list().flatMap((i) => i.tags).filter((t) => t.slice(0, t.lastIndexOf(":")) === repoName).map((t) => t.slice(t.lastIndexOf(":") + 1)))].sort();
    const chosen = tags.map((t) => ({ t, image: images.resolve(`${repoName}:${t}`) }));
    if (!chosen.length || chosen.some((c) => !c.image)) throw new EngineError(404, `An image does not exist locally with the tag: ${repoName}${tag ? `:${tag}` : ""}`);
    const res = startStream(ctx, "application/json");
    const say = (o: object) => res.write(`${goJson(o)}\n`);
    say({ status: `The push refers to repository [${ref.domain}/${ref.path}]` });
    try {
      for (const { t, image } of chosen) {
        await pushImage(images, registry, image!, { ...ref, tag: t, digest: undefined }, say);
        imageEvent(`${repoName}:${t}`, "push", repoName);
      }
    } catch (e) {
      const message = (e as Error).message;
      say({ errorDetail: { message }, error: message });
    }
    res.end();
  });

  // docker search: the mirror's catalog (a registry has no search API; the catalog is a list).
  router.on("GET", "/images/search", async (ctx) => {
    const term = (ctx.query.get("term") ?? "").toLowerCase();
    if (!registry.mirror) throw new EngineError(500, "docker search needs a registry: docker.io is not reachable from this machine and no registry mirror is configured");
    const repos = await registry.catalog(parseReference("library/x"));
    const limit = Number(ctx.query.get("limit") || 25);
    sendJson(ctx, 200, repos.filter((r) => r.includes(term)).slice(0, limit).map((r) => ({
      name: r.startsWith("library/") ? r.slice(8) : r, description: "", star_count: 0, is_official: r.startsWith("library/"), is_automated: false,
    })));
  });

  router.on("GET", "/images/:name*/json", (ctx) => {
    const i = find(ctx.params[0]!);
    sendJson(ctx, 200, {
      Id: i.id,
      RepoTags: i.tags,
      RepoDigests: i.digests,
      Parent: i.config.parent ?? "",
      Comment: i.config.comment ?? "",
      Created: i.config.created,
      DockerVersion: "",
      Author: i.config.author ?? "",
      Config: imageConfigView(i.config.config),
      Architecture: i.config.architecture,
      Os: i.config.os,
      Size: i.size,
      GraphDriver: { Name: "overlay2", Data: { LowerDir: images.lowerDirs(i).join(":") } },
      RootFS: { Type: "layers", Layers: i.config.rootfs.diff_ids },
      Metadata: { LastTagTime: "0001-01-01T00:00:00Z" },
    });
  });

  // History: newest first; a step that made a layer has that layer's size; the top line carries
  // the image id, a line where a local parent image ends carries the parent's, the rest <missing>.
  router.on("GET", "/images/:name*/history", (ctx) => {
    const i = find(ctx.params[0]!);
    const steps = i.config.history;
    const ids = new Map<number, { id: string; tags: string[] }>([[steps.length - 1, { id: i.id, tags: i.tags }]]);
    for (let p = i.config.parent ? images.get(i.config.parent) : undefined; p; p = p.config.parent ? images.get(p.config.parent) : undefined) {
      if (p.config.history.length && !ids.has(p.config.history.length - 1)) ids.set(p.config.history.length - 1, { id: p.id, tags: p.tags });
    }
    let layer = 0;
    const rows = steps.map((e, n) => {
      const size = e.empty_layer ? 0 : images.layerSizeOrZero(i.config.rootfs.diff_ids[layer++]);
      const at = ids.get(n);
      return { Id: at?.id ?? "<missing>", Created: Math.floor(Date.parse(e.created) / 1000), CreatedBy: e.created_by ?? "", Tags: at?.tags.length ? at.tags : null, Size: size, Comment: e.comment ?? "" };
    });
    sendJson(ctx, 200, rows.reverse());
  });

  router.on("POST", "/images/:name*/tag", (ctx) => {
    const i = find(ctx.params[0]!);
    const repo = ctx.query.get("repo");
    if (!repo) throw new EngineError(400, "repository name must have at least one component");
    images.tag(i.id, `${repo}:${ctx.query.get("tag") || "latest"}`);
    imageEvent(i.id, "tag", normalizeReference(`${repo}:${ctx.query.get("tag") || "latest"}`));
    send(ctx, 201);
  });

  // rmi, in dockerd's order of checks (daemon/images/image_delete.go): a name untags (and refuses
  // when it is the last name of an image a container uses, unless forced); an id deletes, which
  // a running container or a child image always prevents, and several names or a stopped
  // container prevent unless forced.
  router.on("DELETE", "/images/:name*", (ctx) => {
    const ref = ctx.params[0]!;
    const force = boolParam(ctx, "force");
    const i = find(ref);
    const short = i.id.slice(7, 19);
    const byId = isIdPrefix(ref, i.id);
    const names = [...i.tags, ...i.digests];
    const usedBy = svc.list().filter((c) => c.record.Image === i.id);
    const records: { Untagged?: string; Deleted?: string }[] = [];
    const singleRepo = new Set(names.map(repoOf)).size <= 1 && i.tags.length <= 1;
    if (!byId) {
      if (!force && singleRepo && usedBy.length) {
        throw new EngineError(409, `conflict: unable to remove repository reference "${ref}" (must force) - container ${usedBy[0]!.id.slice(0, 12)} is using its referenced image ${short}`);
      }
      const name = normalizeReference(ref);
      if (ref.includes("@")) images.removeRepoDigest(name);
      else images.untag(name);
      records.push({ Untagged: name });
      let left = names.filter((n) => n !== name);
      // Untagging the last tag of a repository also drops that repository's digests.
      if (!ref.includes("@") && !left.some((n) => !n.includes("@") && repoOf(n) === repoOf(name))) {
        for (const d of left.filter((n) => n.includes("@") && repoOf(n) === repoOf(name))) {
          images.removeRepoDigest(d);
          records.push({ Untagged: d });
        }
        left = left.filter((n) => !(n.includes("@") && repoOf(n) === repoOf(name)));
      }
      if (left.length) return rmiEvents(i.id, records), sendJson(ctx, 200, records);
      // The last name is gone: delete the image too, unless something still needs it (a child
      // image, a container): then, as in dockerd, the untag was the whole answer. A stopped
      // container keeps its image here even with -f (its layers are its root filesystem).
      try {
        deleteConflict(i.id, false);
      } catch {
        return rmiEvents(i.id, records), sendJson(ctx, 200, records);
      }
    } else if (singleRepo || force) {
      deleteConflict(i.id, force, false);
      for (const t of i.tags) images.untag(t);
      for (const d of i.digests) images.removeRepoDigest(d);
      records.push(...names.map((n) => ({ Untagged: n })));
    }
    deleteConflict(i.id, force);
    if (svc.list().some((c) => c.record.Image === i.id)) return rmiEvents(i.id, records), sendJson(ctx, 200, records);
    const layers = images.remove(i.id);
    records.push({ Deleted: i.id }, ...layers.map((d) => ({ Deleted: d })));
    rmiEvents(i.id, records);
    sendJson(ctx, 200, records);
  });

  /** dockerd names an untagged or deleted image by its id in both the actor and "name". */
  const rmiEvents = (id: string, records: { Untagged?: string; Deleted?: string }[]) => {
    for (const r of records) {
      if (r.Untagged) svc.events.publish("image", "untag", id, { name: id });
      else if (r.Deleted === id) svc.events.publish("image", "delete", id, { name: id });
    }
  };

  const deleteConflict = (id: string, force: boolean, checkNames = true) => {
    const short = id.slice(7, 19);
    const fail = (hard: boolean, why: string) => new EngineError(409, `conflict: unable to delete ${short} (${hard ? "cannot be forced" : "must be forced"}) - ${why}`);
    if (images.list().some((o) => o.config.parent === id)) throw fail(true, "image has dependent child images");
    const users = svc.list().filter((c) => c.record.Image === id);
    const running = users.find((c) => c.running);
    if (running) throw fail(true, `image is being used by running container ${running.id.slice(0, 12)}`);
    if (force) return;
    const img = images.get(id)!;
    if (checkNames && img.tags.length + img.digests.length > 0) throw fail(false, "image is referenced in multiple repositories");
    if (users.length) throw fail(false, `image is being used by stopped container ${users[0]!.id.slice(0, 12)}`);
  };

  // docker save: a docker-archive tar of the named images.
  const save = async (ctx: Ctx, names: string[]) => {
    const chosen = names.map((n) => {
      const image = find(n);
      const ref = normalizeReference(n);
      return { image, tags: image.tags.includes(ref) ? [ref] : /^(sha256:)?[0-9a-f]+$/.test(n) ? [] : image.tags };
    });
    // Headers go now: the archive is streamed as it is made (images/archive.ts). A failure past
    // this point can only cut the stream, which the CLI reports as a broken archive.
    const res = startStream(ctx, "application/x-tar");
    await saveImages(images, chosen, res).then(
      () => new Set(chosen.map((c) => c.image.id)).forEach((id) => imageEvent(id, "save", id)),
      (e: Error) => res.destroy(e),
    );
  };
  router.on("GET", "/images/get", (ctx) => save(ctx, ctx.query.getAll("names")));
  router.on("GET", "/images/:name*/get", (ctx) => save(ctx, [ctx.params[0]!]));

  // docker load: read the archive as it arrives (images/archive.ts), then answer
  // {"stream":"Loaded image: x:y\n"}.
  router.on("POST", "/images/load", async (ctx) => {
    let lines: string[];
    try {
      lines = await loadImages(images, ctx.req, (id) => imageEvent(id, "load", id));
    } catch (e) {
      throw new EngineError(400, (e as Error).message);
    }
    const res = startStream(ctx, "application/json");
    for (const l of lines) res.write(`${JSON.stringify({ stream: `${l}\n` })}\n`);
    res.end();
  });

  // docker build (the legacy builder): see ../build/route.ts.
  router.on("POST", "/build", (ctx) => handleBuild(ctx, builder, images));

  // Dangling = untagged and unused (all=false); with dangling=false, every image no container uses.
  // Also `until` and `label` filters, as dockerd.
  router.on("POST", "/images/prune", (ctx) => {
    const f = parseFilters(ctx);
    const danglingOnly = !(f.dangling ?? ["true"]).some((x) => x === "false" || x === "0");
    const used = new Set(svc.list().map((c) => c.record.Image));
    const deleted: { Untagged?: string; Deleted?: string }[] = [];
    let reclaimed = 0;
    const all = images.list();
    // An untagged image another image was built on is an intermediate step, not dangling.
    const parentsAtStart = new Set(all.map((i) => i.config.parent).filter(Boolean));
    const deletedParents = new Set<string>();
    const until = f.until?.[0] ? parseTime(f.until[0]) : undefined;
    const candidate = (i: Image) => {
      if (used.has(i.id) || (danglingOnly && i.tags.length)) return false; // digests only: dangling, as in dockerd
      if (until !== undefined && Date.parse(i.config.created) / 1000 >= until) return false;
      if (f.label && !labelsMatch(i.config.config.Labels ?? {}, f.label)) return false;
      if (f["label!"] && f["label!"].some((l) => labelsMatch(i.config.config.Labels ?? {}, [l]))) return false;
      return true;
    };
    // An image with children waits until they are gone (dockerd deletes a child, then its parent);
    // a dangling intermediate image of a build goes only along with the last child it had.
    for (let progress = true; progress; ) {
      progress = false;
      const now = images.list();
      const parents = new Set(now.map((i) => i.config.parent).filter(Boolean));
      for (const i of now) {
        if (parents.has(i.id) || !candidate(i)) continue;
        if (danglingOnly && !all.some((a) => a.id === i.id && !parentsAtStart.has(i.id)) && !deletedParents.has(i.id)) continue;
        const sizes = new Map(i.config.rootfs.diff_ids.map((d) => [d, images.layerSizeOrZero(d)]));
        const gone = images.remove(i.id);
        for (const d of gone) reclaimed += sizes.get(d) ?? 0;
        deleted.push(...i.tags.map((t) => ({ Untagged: t })), ...i.digests.map((t) => ({ Untagged: t })), { Deleted: i.id }, ...gone.map((d) => ({ Deleted: d })));
        if (i.config.parent) deletedParents.add(i.config.parent);
        progress = true;
      }
    }
    sendJson(ctx, 200, { ImagesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
  });

  // docker commit: the container's writable layer becomes a layer on top of its image.
  router.on("POST", "/commit", async (ctx) => {
    const c = svc.find(ctx.query.get("container") ?? "");
    const overrides = await readJson(ctx);
    const base = images.get(c.record.Image);
    if (!base) throw new EngineError(404, `No such image: ${c.record.Image}`);
    // The snapshotter turns the writable layer into a layer of the store. Nothing changed: like
    // dockerd, no layer, only a history line marked empty.
    const diffId = await svc.snapshots.commit(c.id);
    const cfg = c.record.Config;
    let defaults: ContainerDefaults = { Env: cfg.Env, Cmd: cfg.Cmd, Entrypoint: cfg.Entrypoint, WorkingDir: cfg.WorkingDir, User: cfg.User, Labels: cfg.Labels, ExposedPorts: cfg.ExposedPorts ?? null, Volumes: cfg.Volumes, StopSignal: cfg.StopSignal };
    defaults = { ...defaults, ...(overrides as ContainerDefaults) };
    for (const change of ctx.query.getAll("changes")) for (const line of change.split("\n")) if (line.trim()) defaults = applyChange(defaults, line.trim());
    const created = new Date().toISOString();
    const id = images.addImage({
      architecture: base.config.architecture,
      os: base.config.os,
      created,
      author: ctx.query.get("author") ?? "",
      comment: ctx.query.get("comment") ?? "",
      container: c.id,
      parent: base.id,
      config: defaults,
      rootfs: { type: "layers", diff_ids: [...base.config.rootfs.diff_ids, ...(diffId ? [diffId] : [])] },
      history: [...base.config.history, { created, created_by: commandOf(c.record.Path, c.record.Args), comment: ctx.query.get("comment") ?? "", ...(diffId ? {} : { empty_layer: true }) }],
    });
    const repo = ctx.query.get("repo");
    if (repo) {
      images.tag(id, `${repo}:${ctx.query.get("tag") || "latest"}`);
      imageEvent(id, "tag", normalizeReference(`${repo}:${ctx.query.get("tag") || "latest"}`));
    }
    sendJson(ctx, 201, { Id: id });
  });
}

function commandOf(p: string, args: string[]): string {
  return [p, ...args].join(" ");
}

function imageConfigView(c: ContainerDefaults) {
  return {
    Hostname: "", Domainname: "", User: c.User ?? "", AttachStdin: false, AttachStdout: false, AttachStderr: false,
    ...(c.ExposedPorts ? { ExposedPorts: c.ExposedPorts } : {}),
    Tty: false, OpenStdin: false, StdinOnce: false, Env: c.Env ?? [], Cmd: c.Cmd ?? null, Image: "", Volumes: c.Volumes ?? null,
    WorkingDir: c.WorkingDir ?? "", Entrypoint: c.Entrypoint ?? null, OnBuild: (c as RunConfig).OnBuild ?? null, Labels: c.Labels ?? null,
    ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
    // Set by Dockerfile builds (../build/builder.ts): shown only when present, as dockerd does.
    ...((c as RunConfig).Healthcheck ? { Healthcheck: (c as RunConfig).Healthcheck } : {}),
    ...((c as RunConfig).Shell ? { Shell: (c as RunConfig).Shell } : {}),
  };
}


/** fromImage + tag of POST /images/create as one reference (tag may be a digest). */
function referenceFromQuery(from: string, tag: string): Reference {
  const r = parseReference(from);
  if (!tag) return r;
  if (tag.startsWith("sha256:")) return { ...r, tag: undefined, digest: parseReference(`x@${tag}`).digest };
  return { ...r, tag: parseReference(`x:${tag}`).tag, digest: undefined };
}

function repoOf(name: string): string {
  const at = name.indexOf("@");
  if (at >= 0) return name.slice(0, at);
  return name.slice(0, name.lastIndexOf(":"));
}

function isIdPrefix(ref: string, id: string): boolean {
  const hex = ref.replace(/^sha256:/, "");
  return /^[0-9a-f]{1,64}$/.test(hex) && id.slice(7).startsWith(hex);
}

function containerCounts(svc: ContainerService): Map<string, number> {
  const m = new Map<string, number>();
  for (const c of svc.list()) m.set(c.record.Image, (m.get(c.record.Image) ?? 0) + 1);
  return m;
}

/** "key" or "key=value" filters against labels (all must match). */
function labelsMatch(labels: Record<string, string>, wanted: string[]): boolean {
  return wanted.every((w) => {
    const eq = w.indexOf("=");
    return eq < 0 ? w in labels : labels[w.slice(0, eq)] === w.slice(eq + 1);
  });
}

/** Unix seconds from a filter value: a timestamp, an RFC 3339 date, or a duration ago ("10m"). */
function parseTime(v: string): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const d = /^(\d+)(s|m|h)$/.exec(v);
  if (d) return Date.now() / 1000 - Number(d[1]) * { s: 1, m: 60, h: 3600 }[d[2] as "s" | "m" | "h"];
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new EngineError(400, `invalid filter 'until=${v}'`);
  return t / 1000;
}

/** Go's path.Match for reference filters: "busy*", "user/app:1*". */
function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]")}$`);
  return re.test(s);
}

/** dockerd's image list filters: dangling, label, reference, before, since. */
function filterImages(list: Image[], f: Record<string, string[]>, images: ImageStore, parents: Set<string | undefined>): Image[] {
  const known = new Set(["dangling", "label", "reference", "before", "since", "until"]);
  for (const k of Object.keys(f)) if (!known.has(k)) throw new EngineError(400, `invalid filter '${k}'`);
  let out = list;
  if (f.dangling) {
    const v = f.dangling[0];
    if (v !== "true" && v !== "false" && v !== "1" && v !== "0") throw new EngineError(400, `invalid filter 'dangling=${v}'`);
    const want = v === "true" || v === "1";
    // As dockerd: an image with digests but no tag counts as dangling too.
    out = out.filter((i) => (!i.tags.length && !parents.has(i.id)) === want);
  }
  if (f.label) out = out.filter((i) => labelsMatch(i.config.config.Labels ?? {}, f.label!));
  const createdOf = (ref: string) => {
    const i = images.resolve(ref);
    if (!i) throw new EngineError(404, `No such image: ${ref}`);
    return Date.parse(i.config.created);
  };
  if (f.before) {
    const t = createdOf(f.before[0]!);
    out = out.filter((i) => Date.parse(i.config.created) < t);
  }
  if (f.since) {
    const t = createdOf(f.since[0]!);
    out = out.filter((i) => Date.parse(i.config.created) > t);
  }
  if (f.until) {
    const t = parseTime(f.until[0]!) * 1000;
    out = out.filter((i) => Date.parse(i.config.created) < t);
  }
  if (f.reference) {
    // Like dockerd, an image shows with only the names that matched.
    const matches = (t: string) => f.reference!.some((p) => {
      const repo = t.slice(0, t.lastIndexOf(":"));
      return globMatch(p, t) || globMatch(p, repo) || globMatch(p, `docker.io/${repo.includes("/") ? repo : `library/${repo}`}`);
    });
    out = out.map((i) => ({ ...i, tags: i.tags.filter(matches) })).filter((i) => i.tags.length);
  }
  return out;
}

/** JSON as Go's encoder writes it (<, > and & escaped), so progress streams match dockerd's bytes. */
function goJson(o: object): string {
  return JSON.stringify(o).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
}
