// The lab images, as a learner meets them: setup has built them (infra/images/build.ts) into the
// lab registry's storage; here a registry on that storage serves them, a fresh engine pulls each
// one by the name a learner types (`docker pull nginx` goes to docker.io, which the engine sends to
// its registry mirror) and runs it. beforeAll runs the build step again, which only checks when
// setup has done its work (about a second), and builds everything on a fresh machine.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEngine, type Engine } from "../src/engine";
import { docker, sleep, tmpDir, unmountUnder } from "./harness";
import { ensureLabImages, LAB_IMAGES, localName, registryRoot } from "../../../infra/images/build";
import { startRegistry, type Registry } from "@berth/registry";

let registry: Registry;
let engine: Engine;
let root: string;
let host: string;

beforeAll(async () => {
  await ensureLabImages({ log: () => {} });
  registry = await startRegistry({ root: registryRoot() });
  root = tmpDir("berth-labimages-");
  const socket = path.join(root, "docker.sock");
  engine = await startEngine({ root: path.join(root, "state"), socket, prebuild: [], registryMirror: registry.url, network: { enabled: false } });
  host = `unix://${socket}`;
}, 1_800_000);

afterAll(async () => {
  await engine?.close();
  await registry?.stop();
  if (root) {
    unmountUnder(root);
    fs.rmSync(root, { recursive: true, force: true });
  }
});

async function ok(args: string[], timeout = 60_000): Promise<string> {
  const r = await docker(host, args, { timeout });
  if (r.code !== 0) throw new Error(`docker ${args.join(" ")} exited ${r.code}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** Run something in a container until it succeeds (a server that is still starting). */
async function eventually(args: string[], want: RegExp, ms = 15_000): Promise<string> {
  const deadline = Date.now() + ms;
  let last = "";
  while (Date.now() < deadline) {
    const r = await docker(host, args);
    last = r.stdout + r.stderr;
    if (r.code === 0 && want.test(r.stdout)) return r.stdout;
    await sleep(250);
  }
  throw new Error(`docker ${args.join(" ")} never printed ${want}: ${last}`);
}

/** What a learner types: `nginx:1.22` for library/nginx, `berth/clock:latest` for Berth's own. */
const learnerName = (repository: string, tag: string) => `${repository.replace(/^library\//, "")}:${tag}`;

describe("the lab registry", () => {
  it("holds every lab image under every tag", async () => {
    const catalog = (await (await fetch(`${registry.url}/v2/_catalog?n=1000`)).json()) as { repositories: string[] };
    for (const img of LAB_IMAGES) {
      expect(catalog.repositories).toContain(img.repository);
      const tags = (await (await fetch(`${registry.url}/v2/${img.repository}/tags/list`)).json()) as { tags: string[] };
      expect(tags.tags, img.repository).toEqual(expect.arrayContaining(img.tags));
    }
  });

  it("gives every image to a fresh engine: docker pull <name>:<tag> by the learner's name", async () => {
    for (const img of LAB_IMAGES) {
      const name = learnerName(img.repository, img.tags[0]!);
      const out = await ok(["pull", name], 300_000);
      expect(out, name).toMatch(/Status: (Downloaded newer image|Image is up to date) for/);
    }
    // Every tag of one repository is the same image: pull the second tag of nginx and compare ids.
    await ok(["pull", "nginx"], 120_000);
    const ids = (await ok(["image", "inspect", "--format", "{{.Id}}", "nginx:1.22", "nginx:latest"])).trim().split("\n");
    expect(new Set(ids).size).toBe(1);
    const sizes = await ok(["images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}"]);
    console.log(`lab image sizes (docker images):\n${sizes}`);
  }, 900_000);
});

describe("each lab image runs", () => {
  it("busybox: a shell and its applets", async () => {
    expect(await ok(["run", "--rm", "busybox:1.35", "sh", "-c", "echo hello world; busybox | head -1"])).toMatch(/^hello world\nBusyBox v1\.35/);
  });

  it("debian:bookworm and bookworm-slim: Debian 12 with apt; slim without man pages or docs", async () => {
    expect(await ok(["run", "--rm", "debian:bookworm", "cat", "/etc/debian_version"])).toMatch(/^12\.\d+/);
    expect(await ok(["run", "--rm", "debian:bookworm", "sh", "-c", "ls /usr/share/man | wc -l"])).not.toMatch(/^0$/m);
    const slim = await ok(["run", "--rm", "debian:bookworm-slim", "bash", "-c", "cat /etc/debian_version; ls /usr/share/man | wc -l; find /usr/share/doc -type f ! -name copyright | wc -l; apt-get --version | head -1; test -x /usr/sbin/policy-rc.d && echo policy"]);
    expect(slim).toMatch(/^12\.\d+\n0\n0\napt 2\.6[^\n]*\npolicy\n$/);
  });

  it("berth/clock prints the date every second", async () => {
    const id = (await ok(["run", "-d", "berth/clock"])).trim();
    try {
      // Two lines (a second apart) are enough: look until they are there rather than a fixed wait.
      let lines: string[] = [];
      for (const deadline = Date.now() + 15_000; lines.length < 2 && Date.now() < deadline; await sleep(250)) {
        lines = (await ok(["logs", id])).trim().split("\n").filter(Boolean);
      }
      expect(lines.length).toBeGreaterThanOrEqual(2);
      for (const l of lines) expect(l).toMatch(/\d\d:\d\d:\d\d/);
    } finally {
      await docker(host, ["rm", "-f", id]);
    }
  });

  it("berth/crashtest exits 1 and leaves its crash report in the container", async () => {
    const r = await docker(host, ["run", "--name", "crashed", "berth/crashtest"], { timeout: 30_000 });
    try {
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/fatal: cannot read \/etc\/crashtest\/config\.ini/);
      expect(await ok(["diff", "crashed"])).toMatch(/A \/var\/log\/crashtest\/crash\.log/);
      expect(await ok(["cp", "crashed:/var/log/crashtest/crash.log", "-"])).toMatch(/configuration file \/etc\/crashtest\/config\.ini not found/);
    } finally {
      await docker(host, ["rm", "-f", "crashed"]);
    }
  });

  it("nginx answers on port 80, configured like the official image", async () => {
    const cfg = JSON.parse(await ok(["image", "inspect", "--format", "{{json .Config}}", "nginx:1.22"]));
    expect(cfg).toMatchObject({ Cmd: ["nginx", "-g", "daemon off;"], ExposedPorts: { "80/tcp": {} }, StopSignal: "SIGQUIT" });
    const id = (await ok(["run", "-d", "nginx:1.22"])).trim();
    try {
      // No curl in the image: bash's /dev/tcp speaks HTTP/1.0 to the server in the container's own network namespace.
      const page = await eventually(["exec", id, "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/80; printf 'GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n' >&3; cat <&3"], /Welcome to nginx/);
      expect(page).toMatch(/^HTTP\/1\.1 200 OK/);
      // As in the official image, requests go to the container's stdout: `docker logs` shows them.
      expect(await ok(["logs", id])).toMatch(/"GET \/ HTTP\/1\.0" 200/);
      // And the web root is the official image's, where a bind-mounted site goes (-v site:/usr/share/nginx/html).
      await ok(["exec", id, "sh", "-c", "echo berth-web-root > /usr/share/nginx/html/index.html"]);
      expect(await eventually(["exec", id, "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/80; printf 'GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n' >&3; cat <&3"], /berth-web-root/)).toMatch(/200 OK/);
    } finally {
      await docker(host, ["rm", "-f", id]);
    }
  });

  it("redis answers PING on 6379 and keeps its data in /data", async () => {
    const cfg = JSON.parse(await ok(["image", "inspect", "--format", "{{json .Config}}", "redis:7.0"]));
    expect(cfg).toMatchObject({ ExposedPorts: { "6379/tcp": {} }, Volumes: { "/data": {} }, WorkingDir: "/data" });
    const id = (await ok(["run", "-d", "redis:7.0"])).trim();
    try {
      expect(await eventually(["exec", id, "redis-cli", "ping"], /PONG/)).toBe("PONG\n");
      expect(await ok(["exec", id, "redis-cli", "info", "server"])).toMatch(/redis_version:7\.0\./);
    } finally {
      await docker(host, ["rm", "-f", "-v", id]);
    }
  });

  it("python runs python -c", async () => {
    expect(await ok(["run", "--rm", "python:3.11", "python", "-c", "import sys; print(6 * 7, sys.version_info[:2])"])).toBe("42 (3, 11)\n");
  });

  it("gcc compiles a static C program that runs FROM scratch", async () => {
    const out = await ok(["run", "--rm", "gcc:12", "bash", "-c", "printf '#include <stdio.h>\\nint main(void){puts(\"hello from C\");return 0;}\\n' > /tmp/h.c && gcc -static -O2 -o /tmp/h /tmp/h.c && /tmp/h && gcc --version | head -1"]);
    expect(out).toMatch(/^hello from C\ngcc \(Debian 12\./);
  });

  it("berth/nasm assembles a tiny binary for a FROM scratch image", async () => {
    const ctx = path.join(root, "asm");
    fs.mkdirSync(ctx);
    fs.writeFileSync(
      path.join(ctx, "hello.asm"),
      [
        "; write(1, msg, len); exit(0): two system calls, no C library",
        "section .text",
        "global _start",
        "_start:",
        "  mov eax, 1",
        "  mov edi, 1",
        "  lea rsi, [rel msg]",
        "  mov edx, len",
        "  syscall",
        "  mov eax, 60",
        "  xor edi, edi",
        "  syscall",
        "msg: db 'hello from assembly', 10",
        "len equ $ - msg",
        "",
      ].join("\n"),
    );
    fs.writeFileSync(path.join(ctx, "Dockerfile"), ["FROM berth/nasm AS build", "COPY hello.asm .", "RUN nasm -f elf64 hello.asm && ld -s -o hello hello.o", "FROM scratch", "COPY --from=build /src/hello /hello", 'CMD ["/hello"]', ""].join("\n"));
    const build = await docker(host, ["build", "-t", "tiny", ctx], { timeout: 120_000 });
    expect(build.code, build.stdout + build.stderr).toBe(0);
    expect(await ok(["run", "--rm", "tiny"])).toBe("hello from assembly\n");
    const size = Number((await ok(["image", "inspect", "--format", "{{.Size}}", "tiny"])).trim());
    console.log(`FROM scratch assembly image: ${size} bytes (docker images: ${(await ok(["images", "--format", "{{.Size}}", "tiny"])).trim()})`);
    expect(size).toBeLessThan(16_384);
  });
});

describe("the build step", () => {
  it("skips everything when nothing changed (a warm run)", async () => {
    const t0 = Date.now();
    const reports = await ensureLabImages({ log: () => {} });
    expect(reports.map((r) => r.action)).toEqual(LAB_IMAGES.map(() => "up to date"));
    console.log(`warm lab image step: ${Date.now() - t0} ms`);
    expect(localName(LAB_IMAGES[0]!)).toBe("busybox:1.35");
  });
});
