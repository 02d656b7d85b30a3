/**
 * The builder: Docker's legacy builder (what `docker build` uses without BuildKit), step for step.
 *
 *   parse        ./parser.ts: the Dockerfile becomes instructions (line numbers kept for errors)
 *   stages       ARGs before the first FROM are "meta" args; each FROM starts a stage;
 *                `--target` cuts the list after that stage; `--label`s become LABEL steps at the end
 *   each step    probe the cache (parent image + the step's created_by text, which holds the
 *                command, the build args a RUN sees, the checksum of what COPY copies); on a miss:
 *     RUN          a container from the current image runs the command; what it changed is the
 *                  layer (the snapshotter commits the container's writable layer, ../snapshots)
 *     COPY / ADD   a container's root filesystem is mounted, the files go in; the same commit
 *     WORKDIR      the same, with only the directory made (an empty layer if it already existed)
 *     the others   only the config changes: a throwaway container, as dockerd makes, and a new image
 *   every step   makes an image whose parent is the previous one (hidden from `docker images`
 *                unless -a), and a history entry shaped like Docker's, so `docker history` matches.
 *
 * Output lines are Docker's: `Step n/m : ...`, ` ---> Running in <id>`, ` ---> Using cache`,
 * `Removing intermediate container <id>`, ` ---> <id>`, `Successfully built/tagged ...`.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Container, ContainerService } from "../containers/service";
import { normalizeReference, type ContainerDefaults, type ImageConfig, type ImageStore } from "../images/store";
import { applyDockerignore } from "./context";
import { combinedHash, copyTree, expandWildcards, hasWildcards, lstatOrNull, PathError, resolveInRoot, resolveOwner, sourceHash } from "./fsutil";
import { DockerfileParseError, parseDockerfile, parseLine, type Instruction } from "./parser";
import { expandWord, expandWords, ExpansionError, splitWords } from "./shell";
import { extractStream } from "../tar/extract";
import { UnsafeArchiveError } from "../tar/format";
import { compression, decompress, looksLikeTar } from "../tar/reader";

export interface BuildOptions {
  context: string; // an unpacked directory
  dockerfile: string; // path inside the context
  tags: string[];
  buildArgs: Record<string, string | null>;
  labels: Record<string, string>;
  noCache: boolean;
  target?: string;
  networkMode?: string;
  rm?: boolean; // remove intermediate containers after a successful step (default true)
  forceRm?: boolean; // ... and after a failed one
  signal?: AbortSignal; // the client went away (Ctrl-C on docker build): stop, as dockerd does
}

export interface BuildOutput {
  say(text: string): void;
  aux(id: string): void;
}

/** A failure of the build; `code` is what the CLI exits with (a failed RUN's own exit code). */
export class BuildError extends Error {
  constructor(
    message: string,
    readonly code = 1,
  ) {
    super(message);
  }
}

import type { HealthConfig } from "../containers/container";
export type { HealthConfig };

/** The image config's container part, with what only builds set. */
export type RunConfig = ContainerDefaults & { Shell?: string[]; Healthcheck?: HealthConfig; OnBuild?: string[] | null };

interface Stage {
  name?: string;
  from: Instruction;
  commands: Instruction[];
}

interface State {
  imageId: string; // "" on scratch before the first step
  config: ImageConfig;
  cmdSet: boolean;
  args: Map<string, string | undefined>; // ARGs declared in this stage, with their defaults
  author?: string;
}

const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const BUILTIN_ARGS = new Set(["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"]);
const short = (id: string) => id.replace(/^sha256:/, "").slice(0, 12);

const runOf = (s: State) => s.config.config as RunConfig;
const shellOf = (r: RunConfig) => r.Shell ?? ["/bin/sh", "-c"];

/** Go's %q of a []string: ["a" "b"] (what dockerd writes in history for CMD and ENTRYPOINT). */
function goQuoteSlice(v: string[] | null | undefined): string {
  return `[${(v ?? []).map((s) => JSON.stringify(s)).join(" ")}]`;
}

/** Go's %q of an int: a rune literal ('\x03'), which is how dockerd prints HEALTHCHECK retries. */
function goQuoteRune(n: number): string {
  const named: Record<number, string> = { 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 39: "\\'", 92: "\\\\" };
  if (named[n]) return `'${named[n]}'`;
  if (n >= 0x20 && n < 0x7f) return `'${String.fromCharCode(n)}'`;
  if (n < 0x80) return `'\\x${n.toString(16).padStart(2, "0")}'`;
  return `'\\u${n.toString(16).padStart(4, "0")}'`;
}

/** Go's time.Duration.String(). */
function goDuration(ns: number): string {
  if (ns === 0) return "0s";
  if (ns < 1e3) return `${ns}ns`;
  if (ns < 1e6) return `${trim(ns / 1e3)}µs`;
  if (ns < 1e9) return `${trim(ns / 1e6)}ms`;
  let s = ns / 1e9;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ""}${h || m ? `${m}m` : ""}${trim(s)}s`;
}
const trim = (x: number) => String(Number(x.toFixed(9)));

/** Go's time.ParseDuration, for HEALTHCHECK flags. */
function parseDuration(s: string, flag: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  if (s === "0") return 0;
  let total = 0;
  let rest = s;
  while (rest) {
    const m = /^(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!m) throw new BuildError(`invalid duration ${JSON.stringify(s)} for --${flag}`);
    total += Number(m[1]) * units[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

const SIGNALS = ["HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS"];

export class Builder {
  private cacheFile: string;
  private cache: Record<string, string>;

  constructor(
    private svc: ContainerService,
    private images: ImageStore,
  ) {
    this.cacheFile = path.join(images.root, "image", "build-cache.json");
    try {
      this.cache = JSON.parse(fs.readFileSync(this.cacheFile, "utf8")) as Record<string, string>;
    } catch {
      this.cache = {};
    }
  }

  private remember(key: string, id: string): void {
    this.cache[key] = id;
    fs.writeFileSync(`${this.cacheFile}.tmp`, JSON.stringify(this.cache));
    fs.renameSync(`${this.cacheFile}.tmp`, this.cacheFile);
  }

  /**
   * Run a build. Errors thrown before the first output line (parse errors, a missing Dockerfile or
   * target) are the request's errors (dockerd answers them with a 400); later ones end the stream.
   */
  async build(o: BuildOptions, out: BuildOutput): Promise<string> {
    const run = new BuildRun(this, this.svc, this.images, o, out);
    try {
      return await run.execute();
    } finally {
      await run.cleanup();
    }
  }

  /** @internal */ cached(key: string): string | undefined {
    const id = this.cache[key];
    return id && this.images.get(id) ? id : undefined;
  }
  /** @internal */ store(key: string, id: string): void {
    this.remember(key, id);
  }
}

class BuildRun {
  private stagesDone: { name?: string; imageId: string }[] = [];
  private referenced = new Set<string>();
  private metaArgs = new Map<string, string | undefined>();
  private mounted = new Map<string, { c: Container; root: string }>(); // --from sources, by image id
  private leftovers: Container[] = [];
  private scratchId?: string;
  private escape = "\\";

  constructor(
    private b: Builder,
    private svc: ContainerService,
    private images: ImageStore,
    private o: BuildOptions,
    private out: BuildOutput,
  ) {}

  private say(t: string) {
    this.out.say(t);
  }

  async cleanup(): Promise<void> {
    for (const { c } of this.mounted.values()) await this.svc.removeAsync(c, { force: true, volumes: true }).catch(() => {});
    for (const c of this.leftovers) await this.svc.removeAsync(c, { force: true, volumes: true }).catch(() => {});
  }

  async execute(): Promise<string> {
    const { context, dockerfile } = this.o;
    let dfPath: string;
    try {
      dfPath = resolveInRoot(context, dockerfile);
      if (!fs.statSync(dfPath).isFile()) throw new Error("not a file");
    } catch {
      throw new BuildError(`Cannot locate specified Dockerfile: ${dockerfile}`);
    }
    const parsed = parseDockerfile(fs.readFileSync(dfPath, "utf8"));
    this.escape = parsed.escape;
    // The Dockerfile has been read; now the context is what COPY may see.
    applyDockerignore(context);

    const meta: Instruction[] = [];
    const stages: Stage[] = [];
    for (const ins of parsed.instructions) {
      if (ins.keyword === "FROM") {
        const words = ins.args.split(/\s+/);
        const name = words.length === 3 ? words[2]!.toLowerCase() : undefined;
        if (name !== undefined && !/^[a-z][a-z0-9-_.]*$/.test(name)) throw new DockerfileParseError(ins.line, `invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`);
        if (name && stages.some((s) => s.name === name)) throw new DockerfileParseError(ins.line, `duplicate name ${name}`);
        stages.push({ name, from: ins, commands: [] });
      } else if (!stages.length) {
        if (ins.keyword !== "ARG") throw new BuildError("no build stage in current context");
        meta.push(ins);
      } else stages.at(-1)!.commands.push(ins);
    }
    if (!stages.length) throw new BuildError("no build stage in current context");
    if (this.o.target) {
      const ix = stages.findIndex((s) => s.name === this.o.target!.toLowerCase());
      if (ix < 0) throw new BuildError(`failed to reach build target ${this.o.target} in Dockerfile`);
      stages.length = ix + 1;
    }
    // `--label k=v`: one LABEL step each, sorted, at the end of the last stage (as dockerd does).
    for (const k of Object.keys(this.o.labels).sort()) {
      const ins = parseLine(`LABEL ${k}=${this.o.labels[k]}`, 0, this.escape);
      stages.at(-1)!.commands.push({ ...ins, json: null, args: "", flags: new Map([["__literal", `${k}=${this.o.labels[k]}`]]) });
    }

    for (const w of parsed.warnings) this.say(`${w}\n`);
    const total = meta.length + stages.length + stages.reduce((n, s) => n + s.commands.length, 0);
    let step = 0;
    const announce = (ins: Instruction) => this.say(`Step ${++step}/${total} : ${ins.original}\n`);

    for (const ins of meta) {
      announce(ins);
      for (const [k, v] of this.parseArg(ins, this.metaEnv())) {
        this.metaArgs.set(k, v);
        this.referenced.add(k);
      }
    }

    let state: State | undefined;
    for (const stage of stages) {
      announce(stage.from);
      state = await this.from(stage);
      for (const ins of stage.commands) {
        this.checkCancelled();
        announce(ins);
        await this.dispatch(state, ins);
        this.say(` ---> ${short(state.imageId)}\n`);
      }
      if (state.imageId) this.out.aux(state.imageId);
      this.stagesDone.push({ name: stage.name, imageId: state.imageId || (await this.scratch()) });
    }

    const unused = Object.keys(this.o.buildArgs).filter((k) => !this.referenced.has(k) && !BUILTIN_ARGS.has(k)).sort();
    if (unused.length) this.say(`[Warning] One or more build-args [${unused.join(" ")}] were not consumed\n`);
    const finalId = state!.imageId || (await this.scratch());
    this.say(`Successfully built ${short(finalId)}\n`);
    for (const t of this.o.tags) {
      this.images.tag(finalId, t);
      this.say(`Successfully tagged ${normalizeReference(t)}\n`);
    }
    return finalId;
  }

  // ---------- FROM ----------

  private async from(stage: Stage): Promise<State> {
    const ref = this.expand(() => expandWord(stage.from.args.split(/\s+/)[0]!, this.metaEnv(), this.escape));
    const byName = this.stagesDone.find((s) => s.name === ref.toLowerCase());
    let imageId: string;
    let config: ImageConfig;
    if (byName) {
      imageId = byName.imageId;
      config = this.images.get(imageId)!.config;
    } else if (ref.toLowerCase() === "scratch") {
      imageId = "";
      config = { architecture: "amd64", os: "linux", created: new Date().toISOString(), config: {}, rootfs: { type: "layers", diff_ids: [] }, history: [] };
    } else {
      let found = this.images.resolve(ref);
      if (!found && this.images.canBuild(ref)) {
        // Pulled from the registry (or made here, for the images the engine can make), as dockerd
        // pulls a missing base image; its progress goes into the build's output.
        try {
          await this.images.build(ref, (line) => this.say(`${line}\n`));
        } catch (e) {
          throw new BuildError(`pull of ${ref} failed: ${(e as Error).message}`);
        }
        found = this.images.resolve(ref);
      }
      if (!found) throw new BuildError(`pull access denied for ${ref.split(":")[0]}, repository does not exist or may require 'docker login': the image is not in this engine (build or load it first)`);
      imageId = found.id;
      config = found.config;
    }
    const run: RunConfig = { ...(config.config as RunConfig) };
    if (!(run.Env ?? []).some((e) => e.startsWith("PATH="))) run.Env = [...(run.Env ?? []), DEFAULT_PATH];
    const state: State = { imageId, config: { ...config, config: run }, cmdSet: false, args: new Map() };
    const triggers = run.OnBuild ?? [];
    if (triggers.length) {
      run.OnBuild = null; // a trigger runs in the child, once; the child does not inherit it
      this.say(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? "s" : ""}\n`);
      for (const t of triggers) await this.dispatch(state, parseLine(t, stage.from.line, this.escape));
    }
    this.say(` ---> ${short(state.imageId)}\n`);
    return state;
  }

  private checkCancelled(): void {
    if (this.o.signal?.aborted) throw new BuildError("the build was cancelled: the client closed the connection");
  }

  private async scratch(): Promise<string> {
    if (!this.scratchId) {
      this.scratchId = this.images.addImage({ architecture: "amd64", os: "linux", created: new Date(0).toISOString(), config: { Env: [DEFAULT_PATH] }, rootfs: { type: "layers", diff_ids: [] }, history: [] });
    }
    return this.scratchId;
  }

  // ---------- variables ----------

  /** ARGs before the first FROM, as K=V: --build-arg wins over the default; unset ones are left out. */
  private metaEnv(): string[] {
    const out: string[] = [];
    for (const [k, def] of this.metaArgs) {
      const v = this.o.buildArgs[k] ?? def;
      if (v !== undefined && v !== null) out.push(`${k}=${v}`);
    }
    return out;
  }

  /** The value an ARG has in this stage: --build-arg, else its default, else the meta ARG's. */
  private argValue(s: State, k: string): string | undefined {
    const opt = this.o.buildArgs[k];
    if (opt !== undefined && opt !== null) return opt;
    const def = s.args.get(k);
    if (def !== undefined) return def;
    return this.metaArgs.get(k);
  }

  /** Build args visible to this stage that ENV does not override, as K=V. */
  private argEnv(s: State, onlyDeclared: boolean): string[] {
    const env = runOf(s).Env ?? [];
    const keys = new Set([...s.args.keys(), ...(onlyDeclared ? [] : Object.keys(this.o.buildArgs).filter((k) => BUILTIN_ARGS.has(k)))]);
    const out: string[] = [];
    for (const k of keys) {
      const v = s.args.has(k) ? this.argValue(s, k) : this.o.buildArgs[k] ?? undefined;
      if (v === undefined) continue;
      if (env.some((e) => e.startsWith(`${k}=`))) continue;
      out.push(`${k}=${v}`);
    }
    return out;
  }

  private envFor(s: State): string[] {
    return [...(runOf(s).Env ?? []), ...this.argEnv(s, false)];
  }

  private expand<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof ExpansionError) throw new BuildError(e.message);
      throw e;
    }
  }

  private parseArg(ins: Instruction, env: string[]): [string, string | undefined][] {
    return splitWords(ins.args, this.escape).map((w) => {
      const i = w.indexOf("=");
      const k = i < 0 ? w : w.slice(0, i);
      const v = i < 0 ? undefined : this.expand(() => expandWord(w.slice(i + 1), env, this.escape));
      return [k, v];
    });
  }

  /** ENV and LABEL: `k=v k2="v 2"`, or the old `k v w` form (one pair, the rest is the value). */
  private pairs(ins: Instruction, env: string[]): [string, string][] {
    const literal = ins.flags.get("__literal");
    if (typeof literal === "string") {
      const i = literal.indexOf("=");
      return [[literal.slice(0, i), literal.slice(i + 1)]];
    }
    const words = splitWords(ins.args, this.escape);
    if (!words[0]!.includes("=")) {
      const m = /^(\S+)\s+([\s\S]*)$/.exec(ins.args);
      if (!m) throw new BuildError(`${ins.keyword} names can not be blank`);
      return [[m[1]!, this.expand(() => expandWord(m[2]!.trim(), env, this.escape))]];
    }
    return words.map((w) => {
      const i = w.indexOf("=");
      if (i < 0) throw new BuildError(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
      const k = this.expand(() => expandWord(w.slice(0, i), env, this.escape));
      if (!k) throw new BuildError(`${ins.keyword} names can not be blank`);
      return [k, this.expand(() => expandWord(w.slice(i + 1), env, this.escape))];
    });
  }

  // ---------- the steps ----------

  private async dispatch(s: State, ins: Instruction): Promise<void> {
    const env = this.envFor(s);
    const run: RunConfig = { ...runOf(s) };
    const meta = (comment: string) => this.commitMeta(s, run, comment);
    switch (ins.keyword) {
      case "RUN":
        return this.run(s, ins);
      case "COPY":
      case "ADD":
        return this.copy(s, ins, env);
      case "WORKDIR": {
        const dir = this.expand(() => expandWord(ins.args, env, this.escape));
        run.WorkingDir = path.posix.normalize(path.posix.isAbsolute(dir) ? dir : path.posix.join(run.WorkingDir || "/", dir)).replace(/(.)\/$/, "$1");
        return this.workdir(s, run);
      }
      case "ENV": {
        const envList = [...(run.Env ?? [])];
        const pairs = this.pairs(ins, env);
        for (const [k, v] of pairs) {
          const i = envList.findIndex((e) => e.startsWith(`${k}=`));
          if (i >= 0) envList[i] = `${k}=${v}`;
          else envList.push(`${k}=${v}`);
        }
        run.Env = envList;
        return meta(`ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(" ")}`);
      }
      case "LABEL": {
        const pairs = this.pairs(ins, env);
        run.Labels = { ...(run.Labels ?? {}), ...Object.fromEntries(pairs) };
        return meta(`LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(" ")}`);
      }
      case "ARG": {
        const parsed = this.parseArg(ins, env);
        for (const [k, v] of parsed) {
          s.args.set(k, v);
          this.referenced.add(k);
        }
        return meta(`ARG ${parsed.map(([k, v]) => (v === undefined ? k : `${k}=${v}`)).join(" ")}`);
      }
      case "CMD":
        run.Cmd = ins.json ?? [...shellOf(run), ins.args];
        s.cmdSet = true;
        return meta(`CMD ${goQuoteSlice(run.Cmd)}`);
      case "ENTRYPOINT":
        run.Entrypoint = ins.json ?? [...shellOf(run), ins.args];
        // A new ENTRYPOINT drops an inherited CMD unless this stage set one (as Docker does).
        if (!s.cmdSet) run.Cmd = null;
        return meta(`ENTRYPOINT ${goQuoteSlice(run.Entrypoint)}`);
      case "EXPOSE": {
        const ports = this.expand(() => expandWords(ins.args, env, this.escape));
        const exposed = { ...(run.ExposedPorts ?? {}) };
        for (const p of ports) {
          const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
          if (!m) throw new BuildError(`Invalid containerPort: ${p}`);
          const [lo, hi] = [Number(m[1]), Number(m[2] ?? m[1])];
          if (lo < 1 || hi > 65535 || hi < lo) throw new BuildError(`Invalid containerPort: ${p}`);
          for (let n = lo; n <= hi; n++) exposed[`${n}/${(m[3] ?? "tcp").toLowerCase()}`] = {};
        }
        run.ExposedPorts = exposed;
        return meta(`EXPOSE ${[...ports].sort().join(" ")}`); // dockerd sorts them (as strings)
      }
      case "VOLUME": {
        const vols = ins.json ?? this.expand(() => expandWords(ins.args, env, this.escape));
        const v = { ...(run.Volumes ?? {}) };
        for (const x of vols) {
          if (!x.trim()) throw new BuildError("VOLUME specified can not be an empty string");
          v[x] = {};
        }
        run.Volumes = v;
        return meta(`VOLUME [${vols.join(" ")}]`);
      }
      case "USER":
        run.User = this.expand(() => expandWord(ins.args, env, this.escape));
        return meta(`USER ${run.User}`);
      case "STOPSIGNAL": {
        const sig = this.expand(() => expandWord(ins.args, env, this.escape));
        const name = sig.toUpperCase().replace(/^SIG/, "");
        if (!(/^\d+$/.test(sig) && Number(sig) > 0 && Number(sig) < 65) && !SIGNALS.includes(name) && !/^RTM(IN|AX)([+-]\d+)?$/.test(name)) throw new BuildError(`Invalid signal: ${sig}`);
        run.StopSignal = sig;
        return meta(`STOPSIGNAL ${sig}`);
      }
      case "SHELL":
        run.Shell = ins.json!;
        return meta(`SHELL [${ins.json!.join(" ")}]`);
      case "HEALTHCHECK": {
        const hc = this.healthcheck(ins);
        const old = run.Healthcheck?.Test;
        if (old?.length && old[0] !== "NONE") this.say(`Note: overriding previous HEALTHCHECK: [${old.join(" ")}]\n`);
        // dockerd's commit fills the zero fields of a new healthcheck from the parent's (even
        // for NONE); the history line shows the instruction's own values.
        const merged: HealthConfig = { ...hc };
        for (const k of ["Interval", "Timeout", "StartPeriod", "Retries"] as const) if (!merged[k] && run.Healthcheck?.[k]) merged[k] = run.Healthcheck[k];
        run.Healthcheck = merged;
        return meta(`HEALTHCHECK &{${goQuoteSlice(hc.Test)} "${goDuration(hc.Interval ?? 0)}" "${goDuration(hc.Timeout ?? 0)}" "${goDuration(hc.StartPeriod ?? 0)}" ${goQuoteRune(hc.Retries ?? 0)}}`);
      }
      case "ONBUILD": {
        parseLine(ins.args, ins.line, this.escape); // a trigger must itself be valid
        run.OnBuild = [...(run.OnBuild ?? []), ins.args];
        return meta(`ONBUILD ${ins.args}`);
      }
      case "MAINTAINER":
        s.author = ins.args;
        return meta(`MAINTAINER ${ins.args}`);
      default:
        throw new DockerfileParseError(ins.line, `unknown instruction: ${ins.keyword}`);
    }
  }

  private healthcheck(ins: Instruction): HealthConfig {
    const m = /^(\S+)\s*([\s\S]*)$/.exec(ins.args)!;
    const type = m[1]!.toUpperCase();
    if (type === "NONE") {
      if (m[2] || ins.flags.size) throw new BuildError("HEALTHCHECK NONE takes no arguments");
      return { Test: ["NONE"] };
    }
    if (type !== "CMD") throw new BuildError(`Unknown type "${type}" in HEALTHCHECK (try CMD)`);
    const rest = m[2]!.trim();
    if (!rest) throw new BuildError("Missing command after HEALTHCHECK CMD");
    let json: string[] | null = null;
    if (rest.startsWith("[")) {
      try {
        const v = JSON.parse(rest) as unknown;
        if (Array.isArray(v) && v.every((x) => typeof x === "string")) json = v as string[];
      } catch {
        /* shell form */
      }
    }
    const hc: HealthConfig = { Test: json ? ["CMD", ...json] : ["CMD-SHELL", rest] };
    const dur = (flag: string, key: "Interval" | "Timeout" | "StartPeriod") => {
      const v = ins.flags.get(flag);
      if (typeof v !== "string") return;
      const ns = parseDuration(v, flag);
      if (ns !== 0 && ns < 1e6) throw new BuildError(`${key} "${v}" cannot be less than 1ms`);
      if (ns) hc[key] = ns;
    };
    dur("interval", "Interval");
    dur("timeout", "Timeout");
    dur("start-period", "StartPeriod");
    const r = ins.flags.get("retries");
    if (typeof r === "string") {
      if (!/^\d+$/.test(r)) throw new BuildError(`invalid --retries value: ${r}`);
      if (Number(r) < 1) throw new BuildError(`--retries cannot be 0 or negative`);
      hc.Retries = Number(r);
    }
    return hc;
  }

  // ---------- committing ----------

  private key(s: State, createdBy: string, run: RunConfig): string {
    return createHash("sha256").update(`${s.imageId}\n${createdBy}\n${JSON.stringify(run)}`).digest("hex");
  }

  /** A cached result for this step: print Docker's line and move the state on. */
  private tryCache(s: State, key: string): boolean {
    if (this.o.noCache) return false;
    const id = this.b.cached(key);
    if (!id) return false;
    this.say(" ---> Using cache\n");
    s.imageId = id;
    s.config = this.images.get(id)!.config;
    return true;
  }

  /** A new image on top of the state's: with a layer (its diff id, from takeLayer) or an empty one. */
  private commit(s: State, run: RunConfig, createdBy: string, key: string, layer: string | undefined, container?: string): void {
    const created = new Date().toISOString();
    const empty = layer === undefined;
    const diffIds = empty ? s.config.rootfs.diff_ids : [...s.config.rootfs.diff_ids, layer];
    const config: ImageConfig = {
      architecture: s.config.architecture,
      os: s.config.os,
      created,
      ...(s.author ?? s.config.author ? { author: s.author ?? s.config.author } : {}),
      ...(container ? { container } : {}),
      config: run,
      rootfs: { type: "layers", diff_ids: diffIds },
      history: [...s.config.history, { created, created_by: createdBy, ...(empty ? { empty_layer: true } : {}) }],
      ...(s.imageId ? { parent: s.imageId } : {}),
    };
    const id = this.images.addImage(config);
    this.b.store(key, id);
    s.imageId = id;
    s.config = config;
  }

  /** A container from the state's image that never runs (its root is mounted for COPY/WORKDIR). */
  private async container(s: State, cmd: string[]): Promise<Container> {
    const image = s.imageId || (await this.scratch());
    return this.svc.create({ body: { Image: image, Cmd: cmd, Entrypoint: [""], HostConfig: { NetworkMode: "none" } } });
  }

  /**
   * What the step's container changed, as a layer in the store (its diff id; undefined when it
   * changed nothing: an empty_layer). The snapshotter commits it; the container goes next, so the
   * writable layer may be moved rather than copied.
   */
  private takeLayer(c: Container): Promise<string | undefined> {
    return this.svc.snapshots.commit(c.id, { consume: true });
  }

  private async removeIntermediate(c: Container, announce: boolean): Promise<void> {
    if (this.o.rm === false) return;
    await this.svc.removeAsync(c, { force: true, volumes: true });
    if (announce) this.say(`Removing intermediate container ${short(c.id)}\n`);
  }

  /** ENV, LABEL, CMD ...: dockerd makes (and removes) a container for each; so does this. */
  private async commitMeta(s: State, run: RunConfig, comment: string): Promise<void> {
    const createdBy = [...shellOf(run), "#(nop) ", comment].join(" ");
    const key = this.key(s, createdBy, run);
    if (this.tryCache(s, key)) return;
    const c = await this.container(s, [...shellOf(run), "#(nop) ", comment]);
    this.say(` ---> Running in ${short(c.id)}\n`);
    await this.removeIntermediate(c, true);
    this.commit(s, run, createdBy, key, undefined, c.id);
  }

  private async workdir(s: State, run: RunConfig): Promise<void> {
    const createdBy = `${shellOf(run).join(" ")} #(nop) WORKDIR ${run.WorkingDir}`;
    const key = this.key(s, createdBy, run);
    if (this.tryCache(s, key)) return;
    const c = await this.container(s, [...shellOf(run), `#(nop) WORKDIR ${run.WorkingDir}`]);
    this.say(` ---> Running in ${short(c.id)}\n`);
    try {
      resolveInRoot(this.svc.rootfs(c), run.WorkingDir!, { mkdir: true });
    } catch (e) {
      await this.svc.removeAsync(c, { force: true, volumes: true });
      throw new BuildError(`failed to create the working directory ${run.WorkingDir}: ${(e as Error).message}`);
    }
    const layer = await this.takeLayer(c);
    await this.removeIntermediate(c, true);
    this.commit(s, run, createdBy, key, layer, c.id);
  }

  private async run(s: State, ins: Instruction): Promise<void> {
    const run = runOf(s);
    const cmd = ins.json ?? [...shellOf(run), ins.args];
    // Build args the command sees go into its history line (Docker's "|N K=V ..."), and so
    // into the cache key: a different --build-arg value reruns the step.
    const declared = this.argEnv(s, true).sort();
    const createdBy = (declared.length ? [`|${declared.length}`, ...declared, ...cmd] : cmd).join(" ");
    const key = this.key(s, createdBy, run);
    if (this.tryCache(s, key)) return;
    this.checkCancelled();
    const image = s.imageId || (await this.scratch());
    const network = this.o.networkMode === "none" ? "none" : "host";
    const c = this.svc.create({ body: { Image: image, Cmd: cmd, Entrypoint: [""], Env: [...(run.Env ?? []), ...this.argEnv(s, false)], User: run.User ?? "", WorkingDir: run.WorkingDir ?? "", HostConfig: { NetworkMode: network } } });
    this.say(` ---> Running in ${short(c.id)}\n`);
    // dockerd paints a step's stderr red in the stream (ANSI 91); the CLI passes it through.
    const listener = (stream: string, b: Buffer) => this.say(stream === "stderr" ? `\u001b[91m${b.toString("utf8")}\u001b[0m` : b.toString("utf8"));
    c.listeners_.add(listener);
    const exited = this.svc.wait(c, "next-exit");
    // Ctrl-C on `docker build` closes the connection: the running step is killed, not finished.
    const onAbort = () => {
      try {
        this.svc.kill(c, "KILL");
      } catch {
        /* not running (yet, or any more) */
      }
    };
    this.o.signal?.addEventListener("abort", onAbort);
    let code: number;
    try {
      await this.svc.start(c);
      if (this.o.signal?.aborted) onAbort(); // it went away while the container was starting
      code = await exited;
      if (this.o.signal?.aborted) {
        await this.svc.removeAsync(c, { force: true, volumes: true });
        this.checkCancelled();
      }
    } catch (e) {
      if (e instanceof BuildError) throw e;
      c.listeners_.delete(listener);
      if (this.o.forceRm) await this.svc.removeAsync(c, { force: true, volumes: true });
      throw new BuildError(`The command '${cmd.join(" ")}' could not start: ${(e as Error).message}`, 127);
    } finally {
      c.listeners_.delete(listener);
      this.o.signal?.removeEventListener("abort", onAbort);
    }
    if (code !== 0) {
      // Like dockerd: the failed container stays (to be inspected) unless --force-rm.
      if (this.o.forceRm) {
        await this.svc.removeAsync(c, { force: true, volumes: true });
        this.say(`Removing intermediate container ${short(c.id)}\n`);
      }
      throw new BuildError(`The command '${cmd.join(" ")}' returned a non-zero code: ${code}`, code);
    }
    const layer = await this.takeLayer(c);
    await this.removeIntermediate(c, true);
    this.commit(s, run, createdBy, key, layer, c.id);
  }

  // ---------- COPY and ADD ----------

  /** The root an instruction copies from: the context, or an earlier stage's (or an image's) files. */
  private async sourceRoot(from: string | undefined): Promise<string> {
    if (from === undefined) return this.o.context;
    let id: string | undefined;
    if (/^\d+$/.test(from)) {
      id = this.stagesDone[Number(from)]?.imageId;
      if (!id) throw new BuildError(`invalid from flag value ${from}: refers to current build stage or a stage that comes later`);
    } else id = this.stagesDone.find((st) => st.name === from.toLowerCase())?.imageId ?? this.images.resolve(from)?.id;
    if (!id) throw new BuildError(`invalid from flag value ${from}: no build stage of that name, and no such image in this engine`);
    let m = this.mounted.get(id);
    if (!m) {
      const c = this.svc.create({ body: { Image: id, Cmd: ["/bin/sh"], Entrypoint: [""], HostConfig: { NetworkMode: "none" } } });
      m = { c, root: this.svc.rootfs(c) };
      this.mounted.set(id, m);
    }
    return m.root;
  }

  private async copy(s: State, ins: Instruction, env: string[]): Promise<void> {
    const kw = ins.keyword;
    const fail = (msg: string): never => {
      throw new BuildError(`${kw} failed: ${msg}`);
    };
    const words = this.expand(() => (ins.json ? ins.json.map((w) => expandWord(w, env, this.escape)) : expandWords(ins.args, env, this.escape)));
    if (words.length < 2) throw new BuildError(`${kw} requires at least two arguments, but only one was provided. Destination could not be determined.`);
    const dest = words.at(-1)!;
    const sources = words.slice(0, -1);
    const fromFlag = ins.flags.get("from");
    const from = typeof fromFlag === "string" ? this.expand(() => expandWord(fromFlag, env, this.escape)) : undefined;
    const chownFlag = ins.flags.get("chown");
    const chown = typeof chownFlag === "string" ? this.expand(() => expandWord(chownFlag, env, this.escape)) : undefined;
    if (kw === "ADD") {
      for (const src of sources) {
        if (/^[a-z][a-z0-9+.-]*:\/\//i.test(src) || /^git@/.test(src)) {
          fail(`ADD of a URL (${src}) is not supported: this engine builds offline. Put the file in the build context and COPY it, or download it in a RUN step`);
        }
      }
    }
    const root = await this.sourceRoot(from);
    const found: { rel: string; abs: string }[] = [];
    for (const src of sources) {
      if (hasWildcards(src)) {
        for (const rel of expandWildcards(root, src)) found.push({ rel, abs: this.scoped(root, rel, fail) });
        continue;
      }
      let abs: string;
      try {
        abs = resolveInRoot(root, src);
        if (!lstatOrNull(abs)) throw new PathError("missing");
      } catch {
        return fail(from === undefined ? `file not found in build context or excluded by .dockerignore: stat ${src}: file does not exist` : `stat ${src}: file does not exist in ${from}`);
      }
      found.push({ rel: src, abs });
    }
    if (!found.length) fail("no source files were specified");
    if (found.length > 1 && !dest.endsWith("/")) throw new BuildError(`When using ${kw} with more than one source file, the destination must be a directory and end with a /`);

    const hash = combinedHash(found.map((f) => sourceHash(f.abs)));
    const run = runOf(s);
    const createdBy = `${shellOf(run).join(" ")} #(nop) ${kw} ${chown ? `--chown=${chown}` : ""}${hash} in ${dest} `;
    const key = this.key(s, createdBy, run);
    if (this.tryCache(s, key)) return;

    const c = await this.container(s, [...shellOf(run), `#(nop) ${kw} ${hash} in ${dest} `]);
    let layer: string | undefined;
    try {
      const merged = this.svc.rootfs(c);
      const owner = chown ? resolveOwner(chown, merged) : { uid: 0, gid: 0 };
      const destAbs = path.posix.isAbsolute(dest) ? dest : path.posix.join(run.WorkingDir || "/", dest);
      const intoDir = dest.endsWith("/") || dest.endsWith("/.") || dest === ".";
      for (const f of found) {
        const st = fs.lstatSync(f.abs);
        if (kw === "ADD" && st.isFile() && (await this.addArchive(f.abs, merged, destAbs, owner))) continue;
        if (st.isDirectory()) {
          copyTree(f.abs, resolveInRoot(merged, destAbs, { mkdir: true, owner }), owner);
          continue;
        }
        const existing = (() => {
          try {
            return lstatOrNull(resolveInRoot(merged, destAbs));
          } catch {
            return null;
          }
        })();
        let target: string;
        if (intoDir || existing?.isDirectory()) target = path.join(resolveInRoot(merged, destAbs, { mkdir: true, owner }), path.basename(f.abs));
        else target = path.join(resolveInRoot(merged, path.posix.dirname(destAbs), { mkdir: true, owner }), path.posix.basename(destAbs));
        copyTree(f.abs, target, owner);
      }
      layer = await this.takeLayer(c);
    } catch (e) {
      await this.svc.removeAsync(c, { force: true, volumes: true });
      if (e instanceof BuildError) throw e;
      if (e instanceof PathError || e instanceof UnsafeArchiveError) return fail((e as Error).message);
      return fail((e as Error).message);
    }
    await this.svc.removeAsync(c, { force: true, volumes: true });
    this.commit(s, run, createdBy, key, layer);
  }

  private scoped(root: string, rel: string, fail: (m: string) => never): string {
    try {
      return resolveInRoot(root, rel);
    } catch (e) {
      return fail((e as Error).message);
    }
  }

  /** ADD of a local archive (tar, or tar.gz/.bz2/.xz): unpacked into dest. False when it is not one. */
  private async addArchive(file: string, merged: string, destAbs: string, owner: { uid: number; gid: number }): Promise<boolean> {
    const kind = compression(file);
    let plain = file;
    const tmp = path.join(this.images.root, "tmp", `add-${Date.now()}-${Math.random().toString(16).slice(2)}.tar`);
    try {
      if (kind) {
        fs.mkdirSync(path.dirname(tmp), { recursive: true });
        try {
          await decompress(file, kind, tmp);
        } catch {
          return false; // compressed but not decompressible: copied as a file, as Docker does
        }
        plain = tmp;
      }
      if (!looksLikeTar(plain)) return false;
      const into = resolveInRoot(merged, destAbs, { mkdir: true, owner });
      await extractStream(fs.createReadStream(plain, { highWaterMark: 1 << 20 }), into, { policy: "image", owners: "keep", what: `ADD ${path.basename(file)}` });
      return true;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
}
