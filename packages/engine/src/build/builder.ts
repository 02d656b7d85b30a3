/**
 * The builder (Docker's legacy builder, which the CLI uses when BuildKit is absent): read the
 * Dockerfile, and for each instruction make a new image from the previous one.
 *   FROM         start from an image (or an earlier stage, or scratch)
 *   RUN          run a container from the current image, commit its upper dir as a layer
 *   COPY / ADD   copy files from the context (or --from a stage) into a new layer
 *   the others   change the config only (CMD, ENV, WORKDIR ...; see images/changes.ts)
 * Every step is cached: same parent image + same instruction (+ same files for COPY) = same image.
 */
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { ContainerService } from "../containers/service";
import { applyChange } from "../images/changes";
import type { ContainerDefaults, ImageConfig, ImageStore } from "../images/store";

export interface BuildOptions {
  context: string; // an unpacked directory
  dockerfile: string; // path inside the context
  tags: string[];
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  noCache: boolean;
  target?: string;
  quiet?: boolean;
}

export class BuildError extends Error {
  constructor(
    message: string,
    readonly code = 1,
  ) {
    super(message);
  }
}

interface Instruction {
  word: string;
  args: string;
  text: string; // as written, for "Step n/m : ..."
}

/** Lines joined at trailing backslashes, comments and blanks dropped. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    if (!current && /^\s*(#|$)/.test(line)) continue;
    if (current && /^\s*#/.test(line)) continue;
    if (/\\\s*$/.test(line)) {
      current += `${line.replace(/\\\s*$/, "")} `;
      continue;
    }
    current += line;
    const m = /^\s*(\w+)\s*([\s\S]*)$/.exec(current);
    if (m) out.push({ word: m[1]!.toUpperCase(), args: m[2]!.trim(), text: `${m[1]!.toUpperCase()} ${m[2]!.trim()}` });
    current = "";
  }
  if (current.trim()) {
    const m = /^\s*(\w+)\s*([\s\S]*)$/.exec(current);
    if (m) out.push({ word: m[1]!.toUpperCase(), args: m[2]!.trim(), text: `${m[1]!.toUpperCase()} ${m[2]!.trim()}` });
  }
  return out;
}

/** $VAR and ${VAR} (and ${VAR:-default}) from the build's variables. */
function substitute(s: string, vars: Record<string, string>): string {
  return s.replace(/\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)/g, (_m, a: string | undefined, def: string | undefined, b: string | undefined) => vars[(a ?? b)!] ?? def ?? "");
}

function jsonOrShell(args: string): string[] {
  if (args.startsWith("[")) {
    try {
      const v = JSON.parse(args) as unknown;
      if (Array.isArray(v)) return v.map(String);
    } catch {
      /* shell form after all */
    }
  }
  return ["/bin/sh", "-c", args];
}

const short = (id: string) => id.replace(/^sha256:/, "").slice(0, 12);

export class Builder {
  private cacheFile: string;
  private cache: Record<string, string>;

  constructor(
    private svc: ContainerService,
    private images: ImageStore,
  ) {
    this.cacheFile = path.join(images.root, "image", "build-cache.json");
    this.cache = fs.existsSync(this.cacheFile) ? JSON.parse(fs.readFileSync(this.cacheFile, "utf8")) : {};
  }

  private remember(key: string, id: string): void {
    this.cache[key] = id;
    fs.writeFileSync(this.cacheFile, JSON.stringify(this.cache));
  }

  async build(o: BuildOptions, say: (text: string) => void): Promise<string> {
    const dfPath = path.join(o.context, o.dockerfile);
    if (!fs.existsSync(dfPath)) throw new BuildError(`Cannot locate specified Dockerfile: ${o.dockerfile}`);
    let instructions = parseDockerfile(fs.readFileSync(dfPath, "utf8"));
    if (!instructions.some((i) => i.word === "FROM")) throw new BuildError("Dockerfile has no FROM instruction");
    if (o.target) {
      const end = instructions.findIndex((i, n) => n > 0 && i.word === "FROM" && instructions.slice(0, n).some((p) => p.word === "FROM" && new RegExp(`\\s+as\\s+${o.target}$`, "i").test(p.args)));
      if (end > 0) instructions = instructions.slice(0, end);
    }
    const globalArgs: Record<string, string> = {};
    const stages = new Map<string, string>(); // "name:<stage>" or "<index>" -> image id
    let image: { id: string; config: ImageConfig } | undefined;
    let vars: Record<string, string> = {};
    let stageIndex = -1;
    let stageName: string | undefined;
    const endStage = () => {
      if (!image) return;
      stages.set(String(stageIndex), image.id);
      if (stageName) stages.set(`name:${stageName}`, image.id);
    };
    const total = instructions.length;
    for (const [n, ins] of instructions.entries()) {
      say(`Step ${n + 1}/${total} : ${ins.text}\n`);
      if (ins.word === "ARG" && !image) {
        const [k, v] = ins.args.split("=");
        globalArgs[k!] = o.buildArgs[k!] ?? v ?? "";
        continue;
      }
      if (ins.word === "FROM") {
        endStage();
        stageIndex++;
        const m = /^(\S+)(?:\s+as\s+(\S+))?$/i.exec(substitute(ins.args, globalArgs));
        if (!m) throw new BuildError("FROM requires one argument");
        image = await this.from(m[1]!, stages);
        stageName = m[2]?.toLowerCase();
        vars = { ...globalArgs };
        for (const e of image.config.config.Env ?? []) vars[e.split("=")[0]!] = e.slice(e.indexOf("=") + 1);
        say(` ---> ${short(image.id)}\n`);
        continue;
      }
      if (!image) throw new BuildError(`${ins.word} before FROM`);
      image = await this.step(image, ins, vars, o, stages, say);
      say(` ---> ${short(image.id)}\n`);
    }
    if (!image) throw new BuildError("nothing to build");
    let finalId = image.id;
    if (Object.keys(o.labels).length) {
      const cfg: ImageConfig = { ...image.config, config: { ...image.config.config, Labels: { ...(image.config.config.Labels ?? {}), ...o.labels } }, parent: image.id };
      finalId = this.images.addImage(cfg);
    }
    say(`Successfully built ${short(finalId)}\n`);
    for (const t of o.tags) {
      this.images.tag(finalId, t);
      say(`Successfully tagged ${t.includes(":") ? t : `${t}:latest`}\n`);
    }
    return finalId;
  }

  private async from(ref: string, stages: Map<string, string>): Promise<{ id: string; config: ImageConfig }> {
    const stage = stages.get(`name:${ref.toLowerCase()}`) ?? (/^\d+$/.test(ref) ? stages.get(ref) : undefined);
    if (stage) return { id: stage, config: this.images.get(stage)!.config };
    if (ref === "scratch") {
      const config: ImageConfig = { architecture: "amd64", os: "linux", created: new Date(0).toISOString(), config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] }, rootfs: { type: "layers", diff_ids: [] }, history: [] };
      return { id: this.images.addImage(config), config };
    }
    let found = this.images.resolve(ref);
    if (!found && this.images.canBuild(ref)) {
      await this.images.build(ref);
      found = this.images.resolve(ref);
    }
    if (!found) throw new BuildError(`pull access denied for ${ref.split(":")[0]}, repository does not exist or may require 'docker login': this engine has no registry configured`);
    return { id: found.id, config: found.config };
  }

  private async step(image: { id: string; config: ImageConfig }, ins: Instruction, vars: Record<string, string>, o: BuildOptions, stages: Map<string, string>, say: (t: string) => void): Promise<{ id: string; config: ImageConfig }> {
    const args = ins.word === "RUN" ? ins.args : substitute(ins.args, vars);
    let extraKey = "";
    if (ins.word === "COPY" || ins.word === "ADD") extraKey = this.sourcesDigest(args, o, stages);
    if (ins.word === "RUN") extraKey = JSON.stringify(Object.entries(o.buildArgs).filter(([k]) => k in vars));
    const key = createHash("sha256").update(`${image.id}\n${ins.word} ${args}\n${extraKey}`).digest("hex");
    const cached = !o.noCache && this.cache[key] ? this.images.get(this.cache[key]!) : undefined;
    if (cached) {
      say(" ---> Using cache\n");
      this.trackVars(ins, args, vars, o);
      return { id: cached.id, config: cached.config };
    }
    const created = new Date().toISOString();
    let config: ImageConfig;
    switch (ins.word) {
      case "RUN":
        config = await this.run(image, jsonOrShell(args), vars, say);
        break;
      case "COPY":
      case "ADD":
        config = this.copy(image, args, o, stages);
        break;
      case "ARG":
      case "MAINTAINER":
      case "ONBUILD":
      case "HEALTHCHECK":
      case "SHELL":
        this.trackVars(ins, args, vars, o);
        config = { ...image.config, created, history: [...image.config.history, { created, created_by: `/bin/sh -c #(nop)  ${ins.word} ${args}`, empty_layer: true }] };
        break;
      default: {
        let defaults: ContainerDefaults;
        try {
          defaults = applyChange(image.config.config, `${ins.word} ${args}`);
        } catch {
          throw new BuildError(`Unknown instruction: ${ins.word}`);
        }
        this.trackVars(ins, args, vars, o);
        if (ins.word === "WORKDIR" && !args.startsWith("/")) defaults.WorkingDir = path.posix.join(image.config.config.WorkingDir || "/", args);
        config = { ...image.config, created, config: defaults, history: [...image.config.history, { created, created_by: `/bin/sh -c #(nop)  ${ins.word} ${args}`, empty_layer: true }] };
      }
    }
    config.parent = image.id;
    const id = this.images.addImage(config);
    this.remember(key, id);
    return { id, config };
  }

  private trackVars(ins: Instruction, args: string, vars: Record<string, string>, o: BuildOptions): void {
    if (ins.word === "ENV") {
      const m = /^(\w+)(?:\s+|=)(.*)$/.exec(args);
      if (m && !args.includes("=")) vars[m[1]!] = m[2]!;
      else for (const p of args.match(/(?:[^\s"]+|"[^"]*")+/g) ?? []) vars[p.split("=")[0]!] = p.slice(p.indexOf("=") + 1).replace(/^"(.*)"$/, "$1");
    }
    if (ins.word === "ARG") {
      const [k, v] = args.split("=");
      vars[k!] = o.buildArgs[k!] ?? v ?? vars[k!] ?? "";
    }
  }

  /** RUN: a container from the current image; its upper dir becomes the next layer. */
  private async run(image: { id: string; config: ImageConfig }, cmd: string[], vars: Record<string, string>, say: (t: string) => void): Promise<ImageConfig> {
    const env = Object.entries(vars).map(([k, v]) => `${k}=${v}`);
    const c = this.svc.create({ body: { Image: image.id, Cmd: cmd, Entrypoint: [""], Env: env, HostConfig: { NetworkMode: "host" } } });
    say(` ---> Running in ${short(c.id)}\n`);
    const listener = (_s: string, b: Buffer) => say(b.toString("utf8"));
    c.listeners_.add(listener);
    const exited = this.svc.wait(c, "next-exit");
    let code: number;
    try {
      await this.svc.start(c);
      code = await exited;
    } catch (e) {
      c.listeners_.delete(listener);
      await this.svc.removeAsync(c, { force: true });
      throw new BuildError(`The command '${cmd.join(" ")}' failed to start: ${(e as Error).message}`, 127);
    }
    c.listeners_.delete(listener);
    if (code !== 0) {
      await this.svc.removeAsync(c, { force: true });
      throw new BuildError(`The command '${cmd.join(" ")}' returned a non-zero code: ${code}`, code);
    }
    const dir = path.join(this.images.root, "tmp", `build-${short(c.id)}`);
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    execFileSync("cp", ["-a", path.join(c.dir, "upper"), dir]);
    say(`Removing intermediate container ${short(c.id)}\n`);
    await this.svc.removeAsync(c, { force: true });
    const diffId = this.images.addLayer(dir);
    const created = new Date().toISOString();
    return { ...image.config, created, rootfs: { type: "layers", diff_ids: [...image.config.rootfs.diff_ids, diffId] }, history: [...image.config.history, { created, created_by: cmd.join(" ") }] };
  }

  private parseCopy(args: string): { from?: string; sources: string[]; dest: string } {
    const parts = args.startsWith("[") ? (JSON.parse(args) as string[]) : args.split(/\s+/);
    let from: string | undefined;
    const rest = parts.filter((p) => {
      const m = /^--from=(.+)$/.exec(p);
      if (m) from = m[1];
      return !p.startsWith("--");
    });
    if (rest.length < 2) throw new BuildError("COPY requires at least two arguments");
    return { from, sources: rest.slice(0, -1), dest: rest.at(-1)! };
  }

  /** Where COPY reads: the context, or the root filesystem of an earlier stage (mounted for it). */
  private sourceRoot(from: string | undefined, o: BuildOptions, stages: Map<string, string>): { root: string; done: () => void } {
    if (!from) return { root: o.context, done: () => {} };
    const id = stages.get(`name:${from.toLowerCase()}`) ?? stages.get(from) ?? this.images.resolve(from)?.id;
    if (!id) throw new BuildError(`invalid from flag value ${from}: no stage or image of that name`);
    const c = this.svc.create({ body: { Image: id, Cmd: ["true"], Entrypoint: [""] } });
    return { root: this.svc.rootfs(c), done: () => void this.svc.removeAsync(c, { force: true }) };
  }

  private sourcesDigest(args: string, o: BuildOptions, stages: Map<string, string>): string {
    const { from, sources } = this.parseCopy(args);
    if (from) return `from:${stages.get(`name:${from.toLowerCase()}`) ?? from}`;
    const hash = createHash("sha256");
    const walk = (p: string) => {
      const st = fs.lstatSync(p);
      hash.update(`${path.relative(o.context, p)} ${st.mode}\n`);
      if (st.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e));
      else if (st.isFile()) hash.update(fs.readFileSync(p));
      else if (st.isSymbolicLink()) hash.update(fs.readlinkSync(p));
    };
    for (const s of sources) {
      const p = inside(o.context, s);
      if (fs.existsSync(p)) walk(p);
    }
    return hash.digest("hex");
  }

  /** COPY: files from the context into a new layer, at dest (relative to WORKDIR). */
  private copy(image: { id: string; config: ImageConfig }, args: string, o: BuildOptions, stages: Map<string, string>): ImageConfig {
    const { from, sources, dest } = this.parseCopy(args);
    const { root, done } = this.sourceRoot(from, o, stages);
    const layer = path.join(this.images.root, "tmp", `copy-${Date.now()}-${process.pid}`);
    try {
      const destAbs = path.posix.isAbsolute(dest) ? dest : path.posix.join(image.config.config.WorkingDir || "/", dest);
      const intoDir = dest.endsWith("/") || sources.length > 1;
      fs.mkdirSync(layer, { recursive: true });
      for (const s of sources) {
        const src = inside(root, s);
        if (!fs.existsSync(src)) throw new BuildError(`COPY failed: file not found in build context or excluded by .dockerignore: stat ${s}: file does not exist`);
        const st = fs.statSync(src);
        // A directory's contents are copied, not the directory itself, as Docker does.
        const target = st.isDirectory() ? path.join(layer, destAbs) : intoDir ? path.join(layer, destAbs, path.basename(src)) : path.join(layer, destAbs);
        fs.mkdirSync(st.isDirectory() ? target : path.dirname(target), { recursive: true });
        if (st.isDirectory()) execFileSync("cp", ["-a", `${src}/.`, target]);
        else execFileSync("cp", ["-a", src, target]);
      }
      execFileSync("chown", ["-R", "0:0", layer]);
      const diffId = this.images.addLayer(layer);
      const created = new Date().toISOString();
      return { ...image.config, created, rootfs: { type: "layers", diff_ids: [...image.config.rootfs.diff_ids, diffId] }, history: [...image.config.history, { created, created_by: `/bin/sh -c #(nop) COPY ${args}` }] };
    } finally {
      done();
    }
  }
}

/** A path from the Dockerfile, kept inside the context (or stage root). */
function inside(root: string, p: string): string {
  const resolved = path.resolve(root, `.${path.posix.normalize(`/${p}`)}`);
  if (!resolved.startsWith(path.resolve(root))) throw new BuildError(`forbidden path outside the build context: ${p}`);
  return resolved;
}
