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
import { boolParam, parseFilters, readJson, send, sendJson, startStream, type Router } from "./http";

export function imageRoutes(router: Router, svc: ContainerService, images: ImageStore): void {
  const find = (ref: string): Image => {
    const img = images.resolve(ref);
    if (!img) throw new EngineError(404, `No such image: ${ref}`);
    return img;
  };

  router.on("GET", "/images/json", (ctx) => {
    sendJson(ctx, 200, images.list().map((i) => ({
      Id: i.id,
      ParentId: "",
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

  // Dangling = untagged and unused (all=false); with dangling=false, every image no container uses.
  router.on("POST", "/images/prune", (ctx) => {
    const f = parseFilters(ctx);
    const danglingOnly = !(f.dangling ?? ["true"]).some((x) => x === "false" || x === "0");
    const used = new Set(svc.list().map((c) => c.record.Image));
    const deleted: { Untagged?: string; Deleted?: string }[] = [];
    for (const i of images.list()) {
      if (used.has(i.id) || (danglingOnly && i.tags.length)) continue;
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
    WorkingDir: c.WorkingDir ?? "", Entrypoint: c.Entrypoint ?? null, OnBuild: null, Labels: c.Labels ?? null,
    ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
  };
}

/** `--change 'CMD ["x"]'`: the Dockerfile instructions commit accepts. */
export function applyChange(d: ContainerDefaults, line: string): ContainerDefaults {
  const m = /^(\w+)\s+([\s\S]*)$/.exec(line);
  if (!m) throw new EngineError(400, `dockerfile parse error: ${line}`);
  const [, word, rest] = m;
  const listOrShell = (s: string): string[] => {
    try {
      const v = JSON.parse(s) as unknown;
      if (Array.isArray(v)) return v.map(String);
    } catch {
      /* shell form */
    }
    return ["/bin/sh", "-c", s];
  };
  const pairs = (s: string): [string, string][] => {
    if (!s.includes("=")) {
      const [k, ...v] = s.split(/\s+/);
      return [[k!, v.join(" ")]];
    }
    return (s.match(/(?:[^\s"]+|"[^"]*")+/g) ?? []).map((p) => {
      const i = p.indexOf("=");
      return [p.slice(0, i), p.slice(i + 1).replace(/^"(.*)"$/, "$1")];
    });
  };
  switch (word!.toUpperCase()) {
    case "CMD":
      return { ...d, Cmd: listOrShell(rest!) };
    case "ENTRYPOINT":
      return { ...d, Entrypoint: listOrShell(rest!) };
    case "WORKDIR":
      return { ...d, WorkingDir: rest!.trim() };
    case "USER":
      return { ...d, User: rest!.trim() };
    case "STOPSIGNAL":
      return { ...d, StopSignal: rest!.trim() };
    case "ENV": {
      const env = [...(d.Env ?? [])];
      for (const [k, v] of pairs(rest!)) {
        const i = env.findIndex((e) => e.startsWith(`${k}=`));
        if (i >= 0) env[i] = `${k}=${v}`;
        else env.push(`${k}=${v}`);
      }
      return { ...d, Env: env };
    }
    case "LABEL":
      return { ...d, Labels: { ...(d.Labels ?? {}), ...Object.fromEntries(pairs(rest!)) } };
    case "EXPOSE": {
      const ports = { ...(d.ExposedPorts ?? {}) };
      for (const p of rest!.split(/\s+/)) ports[p.includes("/") ? p : `${p}/tcp`] = {};
      return { ...d, ExposedPorts: ports };
    }
    case "VOLUME": {
      const vols = { ...(d.Volumes ?? {}) };
      for (const v of listOrShell(rest!)[0] === "/bin/sh" ? rest!.split(/\s+/) : (JSON.parse(rest!) as string[])) vols[v] = {};
      return { ...d, Volumes: vols };
    }
    default:
      throw new EngineError(400, `${word} is not a valid change command`);
  }
}
