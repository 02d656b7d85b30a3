/**
 * /images/...: list, inspect, history, tag, remove; "pull" of what is already here (no registry
 * yet); /commit, which turns a container's upper dir into a new layer.
 */
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import type { ContainerService } from "../containers/service";
import { EngineError } from "../containers/service";
import { normalizeReference, type ContainerDefaults, type Image, type ImageStore } from "../images/store";
import { applyChange } from "../images/changes";
import { exportImages, importImages } from "../images/archive";
import { Builder, type RunConfig } from "../build/builder";
import { handleBuild } from "../build/route";
import { spawn } from "node:child_process";
import { boolParam, parseFilters, readJson, send, sendJson, startStream, type Ctx, type Router } from "./http";

export function imageRoutes(router: Router, svc: ContainerService, images: ImageStore): void {
  const builder = new Builder(svc, images);
  const find = (ref: string): Image => {
    const img = images.resolve(ref);
    if (!img) throw new EngineError(404, `No such image: ${ref}`);
    return img;
  };

  router.on("GET", "/images/json", (ctx) => {
    // Intermediate images of a build (untagged parents of other images) show only with -a.
    const all = images.list();
    const parents = new Set(all.map((i) => i.config.parent).filter(Boolean));
    const shown = boolParam(ctx, "all") ? all : all.filter((i) => i.tags.length || !parents.has(i.id));
    sendJson(ctx, 200, shown.map((i) => ({
      Id: i.id,
      ParentId: i.config.parent ?? "",
      RepoTags: i.tags,
      RepoDigests: [],
      Created: Math.floor(Date.parse(i.config.created) / 1000),
      Size: i.size,
      SharedSize: -1,
      VirtualSize: i.size,
      Labels: i.config.config.Labels ?? {},
      Containers: -1,
    })));
  });

  // Offline: an image that is here is "up to date"; one the engine knows how to make (debian) is
  // built now, its progress streamed as pull progress; anything else fails the way a pull would.
  router.on("POST", "/images/create", async (ctx) => {
    const from = ctx.query.get("fromImage") ?? "";
    const tag = ctx.query.get("tag") || "latest";
    const ref = normalizeReference(from.includes(":") && !from.includes("@") ? from : `${from}:${tag}`);
    const res = startStream(ctx, "application/json");
    const say = (o: object) => res.write(`${JSON.stringify(o)}\n`);
    say({ status: `Pulling from ${ref.split(":")[0]!.includes("/") ? ref.split(":")[0] : `library/${ref.split(":")[0]}`}`, id: ref.split(":")[1] });
    if (images.resolve(ref)) return res.end(`${JSON.stringify({ status: `Status: Image is up to date for ${ref}` })}\n`);
    if (images.canBuild(ref)) {
      say({ status: `Building ${ref} from Debian's archive (no registry here); this takes a while once`, id: ref.split(":")[1] });
      try {
        await images.build(ref, (line) => say({ status: line, id: ref.split(":")[1] }));
        return res.end(`${JSON.stringify({ status: `Status: Downloaded newer image for ${ref}` })}\n`);
      } catch (e) {
        const message = (e as Error).message;
        return res.end(`${JSON.stringify({ errorDetail: { message }, error: message })}\n`);
      }
    }
    const message = `pull access denied for ${ref.split(":")[0]}, repository does not exist or may require 'docker login': this engine has no registry configured (local images: ${images.list().flatMap((i) => i.tags).join(", ") || "none"})`;
    res.end(`${JSON.stringify({ errorDetail: { message }, error: message })}\n`);
  });

  router.on("GET", "/images/:name*/json", (ctx) => {
    const i = find(ctx.params[0]!);
    sendJson(ctx, 200, {
      Id: i.id,
      RepoTags: i.tags,
      RepoDigests: [],
      Parent: "",
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

  router.on("GET", "/images/:name*/history", (ctx) => {
    const i = find(ctx.params[0]!);
    const h = [...i.config.history].reverse();
    sendJson(ctx, 200, h.map((e, n) => ({ Id: n === 0 ? i.id : "<missing>", Created: Math.floor(Date.parse(e.created) / 1000), CreatedBy: e.created_by ?? "", Tags: n === 0 ? i.tags : null, Size: 0, Comment: e.comment ?? "" })));
  });

  router.on("POST", "/images/:name*/tag", (ctx) => {
    const i = find(ctx.params[0]!);
    const repo = ctx.query.get("repo");
    if (!repo) throw new EngineError(400, "repository name must have at least one component");
    images.tag(i.id, `${repo}:${ctx.query.get("tag") || "latest"}`);
    send(ctx, 201);
  });

  router.on("DELETE", "/images/:name*", (ctx) => {
    const ref = ctx.params[0]!;
    const i = find(ref);
    const users = svc.list().filter((c) => c.record.Image === i.id);
    const byName = i.tags.includes(normalizeReference(ref));
    if (byName && i.tags.length > 1) {
      images.untag(ref);
      return sendJson(ctx, 200, [{ Untagged: normalizeReference(ref) }]);
    }
    if (users.length && !boolParam(ctx, "force")) {
      throw new EngineError(409, `conflict: unable to remove repository reference "${ref}" (must force) - container ${users[0]!.id.slice(0, 12)} is using its referenced image ${i.id.slice(7, 19)}`);
    }
    const untagged = i.tags.map((t) => ({ Untagged: t }));
    const layers = images.remove(i.id);
    sendJson(ctx, 200, [...untagged, { Deleted: i.id }, ...layers.map((d) => ({ Deleted: d }))]);
  });

  // docker save: a docker-archive tar of the named images.
  const save = async (ctx: Ctx, names: string[]) => {
    const chosen = names.map((n) => {
      const image = find(n);
      const ref = normalizeReference(n);
      return { image, tags: image.tags.includes(ref) ? [ref] : /^(sha256:)?[0-9a-f]+$/.test(n) ? [] : image.tags };
    });
    const dir = path.join(images.root, "tmp", `save-${Date.now()}-${Math.random().toString(16).slice(2)}`);
    fs.mkdirSync(dir, { recursive: true });
    try {
      exportImages(images, chosen, dir);
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    const res = startStream(ctx, "application/x-tar");
    const t = spawn("tar", ["--sort=name", "--numeric-owner", "-C", dir, "-cf", "-", "."], { stdio: ["ignore", "pipe", "ignore"] });
    t.stdout.pipe(res);
    t.on("close", () => fs.rmSync(dir, { recursive: true, force: true }));
    res.on("close", () => t.kill());
  };
  router.on("GET", "/images/get", (ctx) => save(ctx, ctx.query.getAll("names")));
  router.on("GET", "/images/:name*/get", (ctx) => save(ctx, [ctx.params[0]!]));

  // docker load: read the whole archive, then answer {"stream":"Loaded image: x:y\n"}.
  router.on("POST", "/images/load", async (ctx) => {
    const dir = path.join(images.root, "tmp", `load-${Date.now()}-${Math.random().toString(16).slice(2)}`);
    fs.mkdirSync(dir, { recursive: true });
    try {
      await untarRequest(ctx, dir);
      let lines: string[];
      try {
        lines = importImages(images, dir);
      } catch (e) {
        throw new EngineError(400, (e as Error).message);
      }
      const res = startStream(ctx, "application/json");
      for (const l of lines) res.write(`${JSON.stringify({ stream: `${l}\n` })}\n`);
      res.end();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // docker build (the legacy builder): see ../build/route.ts.
  router.on("POST", "/build", (ctx) => handleBuild(ctx, builder, images));

  // Dangling = untagged and unused (all=false); with dangling=false, every image no container uses.
  router.on("POST", "/images/prune", (ctx) => {
    const f = parseFilters(ctx);
    const danglingOnly = !(f.dangling ?? ["true"]).some((x) => x === "false" || x === "0");
    const used = new Set(svc.list().map((c) => c.record.Image));
    const deleted: { Untagged?: string; Deleted?: string }[] = [];
    const all = images.list();
    // An untagged image another image was built on is an intermediate step, not dangling.
    const parents = new Set(all.map((i) => i.config.parent).filter(Boolean));
    for (const i of all) {
      if (used.has(i.id) || parents.has(i.id) || (danglingOnly && i.tags.length)) continue;
      deleted.push(...i.tags.map((t) => ({ Untagged: t })), { Deleted: i.id }, ...images.remove(i.id).map((d) => ({ Deleted: d })));
    }
    sendJson(ctx, 200, { ImagesDeleted: deleted, SpaceReclaimed: 0 });
  });

  // docker commit: the upper dir becomes a layer on top of the container's image.
  router.on("POST", "/commit", async (ctx) => {
    const c = svc.find(ctx.query.get("container") ?? "");
    const overrides = await readJson(ctx);
    const base = images.get(c.record.Image);
    if (!base) throw new EngineError(404, `No such image: ${c.record.Image}`);
    const dir = path.join(images.root, "tmp", `commit-${c.id.slice(0, 12)}-${Date.now()}`);
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    execFileSync("cp", ["-a", path.join(c.dir, "upper"), dir]);
    const diffId = images.addLayer(dir);
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
      config: defaults,
      rootfs: { type: "layers", diff_ids: [...base.config.rootfs.diff_ids, diffId] },
      history: [...base.config.history, { created, created_by: commandOf(c.record.Path, c.record.Args), comment: ctx.query.get("comment") ?? "" }],
    });
    const repo = ctx.query.get("repo");
    if (repo) images.tag(id, `${repo}:${ctx.query.get("tag") || "latest"}`);
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


/** Unpack a request's tar (a build context) into dir with tar itself, reading it all first. */
function untarRequest(ctx: Ctx, dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = spawn("tar", ["-x", "--no-same-owner", "-C", dir], { stdio: ["pipe", "ignore", "pipe"] });
    let err = "";
    t.stderr.on("data", (d: Buffer) => (err += d.toString()));
    ctx.req.pipe(t.stdin);
    t.on("close", (code) => (code === 0 ? resolve() : reject(new EngineError(400, `invalid build context: ${err.trim()}`))));
  });
}
