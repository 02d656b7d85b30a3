// docker save / docker load across engines: an image saved by ours loads into a real dockerd and
// runs there (and the reverse), with the same image id on both sides, whiteouts and opaque
// directories honoured; multi-image archives; broken archives refused with a clear message.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { docker, request, tmpDir, type Daemon } from "./harness";
import { berthAndDockerd } from "./differential";

const pair = berthAndDockerd();

let dir: string;

beforeAll(async () => {
  dir = tmpDir("berth-saveload-");
});

afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const ok = async (host: Daemon, args: string[]) => {
  const r = await docker(host, args, { timeout: 60_000 });
  if (r.code !== 0) throw new Error(`docker ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
};
const idOf = async (host: Daemon, image: string) => (await ok(host, ["image", "inspect", "-f", "{{.Id}}", image])).trim();

/** Make an image with a new file, a deleted file and a directory replaced (opaque) in `host`. */
async function makeImage(host: Daemon, name: string, text: string): Promise<void> {
  await ok(host, ["run", "--name", `sl-${name.replace(/\W/g, "")}`, "busybox", "sh", "-c", `echo ${text} > /msg; rm /etc/shadow; rm -rf /var/spool; mkdir -p /var/spool/fresh`]);
  await ok(host, ["commit", "-c", 'CMD ["cat", "/msg"]', `sl-${name.replace(/\W/g, "")}`, name]);
  await ok(host, ["rm", `sl-${name.replace(/\W/g, "")}`]);
}

const check = "ls /etc/shadow 2>&1; ls /var/spool";
const expected = "ls: /etc/shadow: No such file or directory\nfresh\n";

describe("save and load across engines", () => {
  it("ours -> dockerd: loads, keeps its id, runs with the deletions", async () => {
    await makeImage(pair.berth, "sl-ours:1", "from-berth");
    const tar = path.join(dir, "ours.tar");
    await ok(pair.berth, ["save", "-o", tar, "sl-ours:1"]);
    expect(await ok(pair.dockerd, ["load", "-i", tar])).toContain("Loaded image: sl-ours:1");
    expect(await idOf(pair.dockerd, "sl-ours:1")).toBe(await idOf(pair.berth, "sl-ours:1"));
    expect(await ok(pair.dockerd, ["run", "--rm", "sl-ours:1"])).toBe("from-berth\n");
    expect(await ok(pair.dockerd, ["run", "--rm", "sl-ours:1", "sh", "-c", check])).toBe(expected);
  });

  it("dockerd -> ours: several images in one archive, ids kept, they run here", async () => {
    await makeImage(pair.dockerd, "sl-theirs:1", "from-dockerd");
    await ok(pair.dockerd, ["tag", "sl-theirs:1", "sl-theirs:alias"]);
    const tar = path.join(dir, "theirs.tar");
    await ok(pair.dockerd, ["save", "-o", tar, "sl-theirs:1", "sl-theirs:alias", "busybox"]);
    const out = await ok(pair.berth, ["load", "-i", tar]);
    for (const t of ["sl-theirs:1", "sl-theirs:alias", "busybox:latest"]) expect(out).toContain(`Loaded image: ${t}`);
    expect(await idOf(pair.berth, "sl-theirs:1")).toBe(await idOf(pair.dockerd, "sl-theirs:1"));
    expect(await idOf(pair.berth, "sl-theirs:alias")).toBe(await idOf(pair.berth, "sl-theirs:1"));
    expect(await ok(pair.berth, ["run", "--rm", "sl-theirs:alias"])).toBe("from-dockerd\n");
    expect(await ok(pair.berth, ["run", "--rm", "sl-theirs:1", "sh", "-c", check])).toBe(expected);
  });

  it("an image loaded from dockerd goes back to dockerd byte for byte (same layer digests)", async () => {
    const tar = path.join(dir, "back.tar");
    await ok(pair.berth, ["save", "-o", tar, "sl-theirs:1"]);
    await ok(pair.dockerd, ["rmi", "sl-theirs:1", "sl-theirs:alias"]);
    await ok(pair.dockerd, ["load", "-i", tar]);
    expect(await idOf(pair.dockerd, "sl-theirs:1")).toBe(await idOf(pair.berth, "sl-theirs:1"));
    const layers = (h: Daemon) => ok(h, ["image", "inspect", "-f", "{{json .RootFS.Layers}}", "sl-theirs:1"]);
    expect(await layers(pair.dockerd)).toBe(await layers(pair.berth));
  });

  it("refuses broken archives with a message, and writes nothing outside its store", async () => {
    const notTar = await request(pair.berth.socket, "POST", "/images/load", "this is not a tar", { "Content-Type": "application/x-tar" });
    expect(notTar.status).toBe(400);
    expect(notTar.body).toMatch(/"message":".+"/);
    const mk = (name: string, files: Record<string, string>) => {
      const d = path.join(dir, name);
      fs.mkdirSync(d, { recursive: true });
      for (const [f, t] of Object.entries(files)) fs.writeFileSync(path.join(d, f), t);
      const out = `${d}.tar`;
      execFileSync("tar", ["-C", d, "-cf", out, "."]);
      return fs.readFileSync(out);
    };
    const noManifest = await request(pair.berth.socket, "POST", "/images/load", mk("nomanifest", { "x.json": "{}" }), { "Content-Type": "application/x-tar" });
    expect(noManifest.status).toBe(400);
    expect(noManifest.body).toContain("no manifest.json");
    const victim = path.join(dir, "victim.json");
    fs.writeFileSync(victim, JSON.stringify({ rootfs: { diff_ids: [] } }));
    const escape = await request(pair.berth.socket, "POST", "/images/load", mk("escape", { "manifest.json": JSON.stringify([{ Config: `../../../../../../../..${victim}`, RepoTags: ["evil:1"], Layers: [] }]) }), { "Content-Type": "application/x-tar" });
    expect(escape.status).toBe(400);
    expect(escape.body).toContain("outside the archive");
    expect((await docker(pair.berth, ["image", "inspect", "evil:1"])).code).toBe(1);
    const r = await docker(pair.berth, ["load", "-i", path.join(dir, "nomanifest.tar")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("invalid image archive");
  });
});
