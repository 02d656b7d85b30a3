/**
 * `docker build` against Berth's engine and against a real dockerd's legacy builder
 * (DOCKER_BUILDKIT=0), on the workshop's Dockerfiles (chapters 5, 6, 7, 8, 20) and one that uses
 * every instruction. For each: the whole build output (ids masked), which steps came from the
 * cache (build twice, change a file, reorder), the image config, the history (created_by with
 * checksums masked, empty_layer) and the files of the result (type, mode, owner, size, link).
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { collect, walkTar } from "../src/tar/reader";
import { CLI_28, normalize, tmpDir, type Daemon } from "./harness";
import { berthAndDockerd } from "./differential";

const pair = berthAndDockerd();

// dockerd takes 0.3-2 s per step here depending on the load; the whole file ~3 min on a quiet machine.
const SLOW = 240_000;

const dirs: string[] = [];
const tag = (name: string) => `h1b-${name}-${process.pid}`;

afterAll(async () => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function cli(d: Daemon, args: string[], cwd?: string): Promise<{ out: string; err: string; code: number }> {
  return new Promise((resolve) => {
    execFile(CLI_28, args, { cwd, env: { ...process.env, DOCKER_HOST: d.host, DOCKER_BUILDKIT: "0", DOCKER_CLI_HINTS: "false" }, timeout: 120_000, maxBuffer: 64 << 20, encoding: "buffer" }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 255) : 0;
      resolve({ out: stdout.toString(), err: stderr.toString(), code });
    });
  });
}

/** A build context on disk. */
function context(files: Record<string, string>): string {
  const dir = tmpDir("h1-build-ctx-");
  dirs.push(dir);
  write(dir, files);
  return dir;
}
function write(dir: string, files: Record<string, string>): void {
  for (const [name, body] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), body);
  }
}

/** Output as the learner sees it, with what differs between any two engines masked. */
function clean(s: string): string {
  return normalize(s)
    .replace(/DEPRECATED:[\s\S]*?environment-variable\.\n\n?/, "")
    .replace(/Sending build context to Docker daemon\s+\S+/g, "Sending build context to Docker daemon <size>");
}

/** Build the same context on both engines; the outputs (and exit codes) must be the same. */
async function buildBoth(dir: string, args: string[]): Promise<string> {
  // Both at once: dockerd's time is mostly waiting on containerd and runc, not on the CPU.
  const [ours, theirs] = await Promise.all([cli(pair.berth, ["build", ...args, "."], dir), cli(pair.dockerd, ["build", ...args, "."], dir)]);
  expect(clean(ours.out + ours.err), `berth vs dockerd: docker build ${args.join(" ")}`).toBe(clean(theirs.out + theirs.err));
  expect(ours.code).toBe(theirs.code);
  return clean(ours.out + ours.err);
}

const RUNTIME = new Set([".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab", "proc", "sys", "dev"]);

/** What an image is made of: config, history of the build's own steps, files. */
async function facts(d: Daemon, ref: string, baseHistory: number) {
  const inspect = JSON.parse((await cli(d, ["image", "inspect", ref])).out)[0].Config;
  const config = Object.fromEntries(["Cmd", "Entrypoint", "Env", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels", "StopSignal", "Healthcheck", "Shell", "OnBuild"].map((k) => [k, inspect[k] ?? null]));
  const work = tmpDir("h1-facts-");
  try {
    // history with empty_layer: from the config inside `docker save`
    const saved = path.join(work, "img.tar");
    expect((await cli(d, ["save", "-o", saved, ref])).code).toBe(0);
    const members = new Map<string, Buffer>();
    walkTar(saved, (e) => {
      if (e.type !== "file" || !e.name.endsWith(".json")) return;
      return collect((body) => members.set(e.name.replace(/^\.\//, ""), body));
    });
    const manifest = JSON.parse(members.get("manifest.json")!.toString())[0];
    const cfg = JSON.parse(members.get(manifest.Config)!.toString());
    const history = (cfg.history as { created_by?: string; empty_layer?: boolean }[]).slice(baseHistory).map((h) => `${(h.created_by ?? "").replace(/(file|dir|multi):[0-9a-f]{64}/g, "$1:<sum>")}${h.empty_layer ? " (empty)" : ""}`);
    // files: export a container made from it
    const name = `h1-facts-${Math.random().toString(16).slice(2, 10)}`;
    expect((await cli(d, ["create", "--name", name, ref, "x"])).code).toBe(0);
    const exported = path.join(work, "fs.tar");
    expect((await cli(d, ["export", "-o", exported, name])).code).toBe(0);
    await cli(d, ["rm", name]);
    const files: string[] = [];
    walkTar(exported, (e) => {
      const n = e.name.replace(/^\.\//, "").replace(/^\//, "").replace(/\/$/, "");
      if (!n || RUNTIME.has(n.split("/")[0]!) || RUNTIME.has(n)) return;
      files.push(`${e.type} ${e.mode.toString(8)} ${e.uid}:${e.gid} ${e.type === "file" ? e.size : ""} ${n}${e.linkname ? ` -> ${e.linkname}` : ""}`);
    });
    return { config, history, files: files.sort() };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

async function sameImage(ref: string, baseHistory = 1): Promise<Awaited<ReturnType<typeof facts>>> {
  const [ours, theirs] = await Promise.all([facts(pair.berth, ref, baseHistory), facts(pair.dockerd, ref, baseHistory)]);
  expect(ours.config, `config of ${ref}`).toEqual(theirs.config);
  expect(ours.history, `history of ${ref}`).toEqual(theirs.history);
  expect(ours.files, `files of ${ref}`).toEqual(theirs.files);
  return ours;
}

async function sameRun(args: string[]): Promise<string> {
  const [ours, theirs] = await Promise.all([cli(pair.berth, ["run", "--rm", ...args]), cli(pair.dockerd, ["run", "--rm", ...args])]);
  expect(ours.out + ours.err).toBe(theirs.out + theirs.err);
  expect(ours.code).toBe(theirs.code);
  return ours.out;
}

/** "Step 3/5 : RUN x" -> cached? for each step of an output. */
function cacheMap(out: string): string[] {
  return out.split(/(?=^Step \d+\/\d+ : )/m).filter((s) => s.startsWith("Step")).map((s) => `${s.split("\n")[0]} ${s.includes(" ---> Using cache") ? "[cached]" : ""}`);
}

describe("docker build against dockerd's legacy builder", () => {
  it("chapter 5: RUN layers, the cache on a rebuild, history, shell and JSON forms", async () => {
    const dir = context({
      Dockerfile: [
        "FROM busybox",
        "# a stand-in for apt-get install figlet: a script that frames its arguments",
        `RUN mkdir -p /usr/local/bin && \\`,
        `    printf '#!/bin/sh\\necho "== $* =="\\n' > /usr/local/bin/figlet && \\`,
        "    chmod +x /usr/local/bin/figlet",
        'RUN ["/bin/sh", "-c", "echo json form > /json.txt"]',
        "RUN echo shell form > /shell.txt",
        "CMD figlet hello",
      ].join("\n"),
    });
    const first = await buildBoth(dir, ["-t", tag("figlet")]);
    expect(first).toContain("Successfully tagged");
    const second = await buildBoth(dir, ["-t", tag("figlet")]);
    expect(cacheMap(second).filter((s) => s.endsWith("[cached]"))).toHaveLength(4);
    const f = await sameImage(tag("figlet"));
    expect(f.history.at(-1)).toBe('/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "figlet hello"] (empty)');
    expect(await sameRun([tag("figlet")])).toBe("== hello ==\n");
  }, SLOW);

  it("chapter 6: CMD and ENTRYPOINT, a new ENTRYPOINT dropping an inherited CMD", async () => {
    const dir = context({
      Dockerfile: 'FROM busybox\nENTRYPOINT ["echo", "hello"]\nCMD ["world"]\n',
      "Dockerfile.child": `FROM ${tag("greet")}\nENTRYPOINT ["echo", "bye"]\n`,
    });
    await buildBoth(dir, ["-t", tag("greet")]);
    await buildBoth(dir, ["-f", "Dockerfile.child", "-t", tag("greet2")]);
    expect((await sameImage(tag("greet2"))).config.Cmd).toBeNull(); // its history holds greet's steps too
    expect(await sameRun([tag("greet")])).toBe("hello world\n");
    await sameRun([tag("greet"), "there"]);
    await sameRun(["--entrypoint", "ls", tag("greet"), "/bin/echo"]);
  }, SLOW);

  it("chapter 7: COPY a program, build it in a RUN, the cache when the file changes", async () => {
    const dir = context({
      "hello.sh": '#!/bin/sh\necho "Hello from a copied program"\n',
      Dockerfile: "FROM busybox\nWORKDIR /src\nCOPY hello.sh .\nRUN sh -n hello.sh && mkdir -p /usr/local/bin && cp hello.sh /usr/local/bin/hello && chmod 755 /usr/local/bin/hello\nCMD [\"hello\"]\n",
    });
    await buildBoth(dir, ["-t", tag("hello")]);
    expect(cacheMap(await buildBoth(dir, ["-t", tag("hello")])).every((s) => s.startsWith("Step 1/") || s.endsWith("[cached]"))).toBe(true);
    // A new mtime alone keeps the cache (the checksum covers content and mode, not times) ...
    fs.utimesSync(path.join(dir, "hello.sh"), new Date(2001, 1, 1), new Date(2001, 1, 1));
    expect(cacheMap(await buildBoth(dir, ["-t", tag("hello")])).filter((s) => s.endsWith("[cached]"))).toHaveLength(4);
    // ... new content does not: COPY and every step after it run again.
    write(dir, { "hello.sh": '#!/bin/sh\necho "Hello again"\n' });
    const changed = cacheMap(await buildBoth(dir, ["-t", tag("hello")]));
    expect(changed.map((s) => s.endsWith("[cached]"))).toEqual([false, true, false, false, false]);
    await sameImage(tag("hello"));
    expect(await sameRun([tag("hello")])).toBe("Hello again\n");
  }, SLOW);

  it("chapter 8: chained RUN, a multi-stage build, FROM scratch with a static binary", async () => {
    const dir = context({
      Dockerfile: [
        "FROM busybox AS build",
        "RUN mkdir -p /out && cp /bin/busybox /out/tiny && rm -rf /tmp/* && echo built > /out/stamp",
        "FROM scratch",
        "COPY --from=build /out/tiny /busybox",
        "COPY --from=0 /out/stamp /",
        'ENTRYPOINT ["/busybox"]',
        'CMD ["echo", "a FROM scratch image"]',
      ].join("\n"),
    });
    await buildBoth(dir, ["-t", tag("tiny")]);
    await buildBoth(dir, ["-t", tag("tiny")]);
    const f = await sameImage(tag("tiny"), 0);
    expect(f.files.map((x) => x.split(" ").at(-1)).sort()).toEqual(["busybox", "etc", "stamp"]); // etc: mount points of the container
    expect(await sameRun([tag("tiny")])).toBe("a FROM scratch image\n");
  }, SLOW);

  it("chapter 20: dependencies before sources, .dockerignore, the cache after a source change", async () => {
    const dir = context({
      "deps.txt": "libfoo 1.2\n",
      "src/app.sh": "echo app v1\n",
      "secret.env": "TOKEN=abc\n",
      "debug.log": "noise\n",
      ".dockerignore": "secret.env\n*.log\n",
      "Dockerfile.slow": "FROM busybox\nCOPY . /app\nRUN cat /app/deps.txt > /installed\nCMD [\"sh\", \"/app/src/app.sh\"]\n",
      Dockerfile: "FROM busybox\nCOPY deps.txt /app/\nRUN cat /app/deps.txt > /installed\nCOPY src/ /app/src/\nCMD [\"sh\", \"/app/src/app.sh\"]\n",
    });
    await buildBoth(dir, ["-t", tag("fast")]);
    await buildBoth(dir, ["-f", "Dockerfile.slow", "-t", tag("slow")]);
    write(dir, { "src/app.sh": "echo app v2\n" });
    // Good order: the dependency step stays cached. Bad order: everything after COPY . runs again.
    expect(cacheMap(await buildBoth(dir, ["-t", tag("fast")])).map((s) => s.endsWith("[cached]"))).toEqual([false, true, true, false, false]);
    expect(cacheMap(await buildBoth(dir, ["-f", "Dockerfile.slow", "-t", tag("slow")])).map((s) => s.endsWith("[cached]"))).toEqual([false, false, false, false]);
    const slow = await sameImage(tag("slow"));
    expect(slow.files.join("\n")).not.toContain("secret.env");
    expect(slow.files.join("\n")).not.toContain("debug.log");
    expect(await sameRun([tag("fast")])).toBe("app v2\n");
  }, SLOW);

  it("every instruction: ARG before FROM, --build-arg, --label, --target, -f, several -t, ADD of archives, ONBUILD", async () => {
    const dir = context({
      "a.txt": "hello\n",
      "b.txt": "bee\n",
      "data/one": "1\n",
      "data/sub/two": "2\n",
      "Build.df": [
        "# escape=\\",
        "ARG BASE=busybox",
        "ARG UNSET",
        "FROM ${BASE} AS base",
        "ARG FOO=1",
        "ARG BASE",
        "ENV A=1 B=\"two words\" C=${FOO}",
        "ENV OLD style value",
        "LABEL x=y \"z\"=\"w w\" from.arg=${BASE}",
        "MAINTAINER someone@example.org",
        "WORKDIR /app",
        "WORKDIR sub/../rel",
        "COPY *.txt ./",
        "COPY data /data/",
        "COPY --chown=nobody:nogroup a.txt /owned/",
        "COPY --chown=12:13 [\"b.txt\", \"/owned2\"]",
        "ADD archive.tgz /ex/",
        "ADD archive.tbz2 archive.txz /ex2/",
        "ADD a.txt /added",
        "RUN echo run $FOO $A && \\",
        "    # a comment inside a continuation",
        "    echo cont > /cont.txt",
        "RUN [\"sh\", \"-c\", \"echo json $FOO\"]",
        "RUN rm /added",
        "EXPOSE 80 90/udp 7000-7002",
        "VOLUME /data /data2",
        "VOLUME [\"/json-vol2\"]",
        "USER nobody",
        "STOPSIGNAL SIGINT",
        "SHELL [\"/bin/sh\", \"-ec\"]",
        "HEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD wget -q -O- localhost || exit 1",
        "ONBUILD RUN echo triggered > /tmp/trigger.txt",
        "ENTRYPOINT [\"echo\"]",
        "CMD [\"hi\"]",
        "FROM busybox AS unused",
        "RUN echo never built",
      ].join("\n"),
      "Child.df": `FROM ${tag("all")}:one\nRUN cat /tmp/trigger.txt\nHEALTHCHECK NONE\n`,
    });
    const tars = fs.mkdtempSync(path.join(dir, "t-"));
    write(tars, { "tree/f": "in a tar\n", "tree/deep/g": "deeper\n" });
    fs.symlinkSync("/etc/passwd", path.join(tars, "tree", "abs-link"));
    await new Promise<void>((r, j) => execFile("sh", ["-c", `cd ${tars} && tar czf ../archive.tgz tree && tar cjf ../archive.tbz2 tree && tar cJf ../archive.txz tree/f`], (e) => (e ? j(e) : r())));
    fs.rmSync(tars, { recursive: true });
    const args = ["-f", "Build.df", "--target", "base", "-t", tag("all") + ":one", "-t", tag("all") + ":two", "--build-arg", "FOO=7", "--build-arg", "UNUSED=x", "--build-arg", "UNSET=given", "--label", "by=test", "--label", "a.b=c"];
    const out = await buildBoth(dir, args);
    expect(out).toContain("[Warning] One or more build-args [UNUSED] were not consumed");
    expect(out).toContain("run 7 1");
    expect(out).toContain("json 7");
    expect(cacheMap(await buildBoth(dir, args)).filter((s) => !s.endsWith("[cached]")).map((s) => s.split(" : ")[1]!.trim())).toEqual(["ARG BASE=busybox", "ARG UNSET", "FROM ${BASE} AS base"]);
    const f = await sameImage(`${tag("all")}:two`);
    expect(f.config.Healthcheck).toEqual({ Test: ["CMD-SHELL", "wget -q -O- localhost || exit 1"], Interval: 5e9, Timeout: 2e9, Retries: 3 });
    expect(f.files.join("\n")).toContain("symlink 777 0:0  ex/tree/abs-link -> /etc/passwd");
    await sameRun([`${tag("all")}:one`]);
    expect(await buildBoth(dir, ["-f", "Child.df", "-t", tag("child")])).toMatch(/# Executing 1 build trigger[\s\S]*triggered\n[\s\S]*Successfully built/);
    await sameImage(tag("child"), 2);
  }, SLOW);

  it("failures in Docker's words, with the failing command's exit code", async () => {
    const dir = context({
      "a.txt": "a\n",
      "shell.df": "FROM busybox\nRUN echo before && false\n",
      "json.df": 'FROM busybox\nRUN ["sh", "-c", "exit 3"]\n',
      "unknown.df": "FROM busybox\n\n# comment\nFOO bar\n",
      "missing.df": "FROM busybox\nCOPY nope.txt /x\n",
      "wild.df": "FROM busybox\nCOPY *.nope /x/\n",
      "multi.df": "FROM busybox\nCOPY a.txt a.txt /x\n",
      "nofrom.df": "ENV x=1\nFROM busybox\n",
      "stage.df": "FROM busybox\nCOPY --from=nosuchstage /x /x\n",
    });
    for (const df of ["shell.df", "json.df", "unknown.df", "missing.df", "wild.df", "multi.df", "nofrom.df"]) await buildBoth(dir, ["-f", df, "--force-rm"]);
    expect((await cli(pair.berth, ["build", "-f", "shell.df", "--force-rm", "."], dir)).code).toBe(1);
    const json = await cli(pair.berth, ["build", "-f", "json.df", "--force-rm", "."], dir);
    expect(json.code).toBe(3);
    expect(json.err).toContain("The command 'sh -c exit 3' returned a non-zero code: 3");
    expect((await cli(pair.berth, ["build", "-f", "unknown.df", "."], dir)).err).toContain("dockerfile parse error line 4: unknown instruction: FOO");
    expect((await cli(pair.berth, ["build", "--target", "nine", "-f", "shell.df", "."], dir)).err).toContain("failed to reach build target nine in Dockerfile");
    expect((await cli(pair.berth, ["build", "-f", "stage.df", "."], dir)).err).toContain("invalid from flag value nosuchstage");
    // Without --force-rm the failed container stays for inspection, as with dockerd.
    await cli(pair.berth, ["build", "-f", "json.df", "."], dir);
    const left = await cli(pair.berth, ["ps", "-a", "--format", "{{.Status}} {{.Command}}"]);
    expect(left.out).toMatch(/Exited \(3\)/);
  }, SLOW);
});
