// images, history, tag, rmi, prune and system df: the same CLI sequence against our engine and a
// real dockerd, outputs compared (ids and times normalised). Both engines start from the very same
// busybox image (same id): ours pushes it to a docker-registry, dockerd pulls it from there.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { startRegistry, type Registry } from "@berth/registry";
import { startEngine, type Engine } from "../src/engine";
import { docker, normalize, startDockerd, tmpDir, unmountUnder, type Daemon } from "./harness";

let reg: Registry;
let root: string;
let engine: Engine;
let berth: string;
let dockerd: Daemon;
let addr: string;

const run = async (host: Daemon | string, args: string[]) => {
  const r = await docker(host, args, { timeout: 60_000 });
  return { out: r.stdout, err: r.stderr.replace(/^Error response from daemon: /, ""), code: r.code };
};

/** Run the same command on both engines; returns both results, normalised. */
async function both(args: string[], extra: (s: string) => string = (s) => s) {
  const norm = (s: string) => extra(normalize(s.replaceAll(addr, "<registry>")));
  const [a, b] = [await run(berth, args), await run(dockerd, args)];
  return { ours: { ...a, out: norm(a.out), err: norm(a.err) }, theirs: { ...b, out: norm(b.out), err: norm(b.err) } };
}

const sizes = (s: string) => s.replace(/\b\d+(\.\d+)?\s?[kMG]?B\b/g, "<size>");

beforeAll(async () => {
  root = tmpDir("berth-images-");
  reg = await startRegistry({ root: path.join(root, "registry") });
  addr = reg.address;
  const socket = path.join(root, "docker.sock");
  engine = await startEngine({ root: path.join(root, "state"), socket, network: { enabled: false } });
  berth = `unix://${socket}`;
  dockerd = await startDockerd({ forward: [reg.port] });
  // The same busybox on both sides, with the same names: busybox and <registry>/library/busybox.
  for (const args of [["tag", "busybox", `${addr}/library/busybox`], ["push", `${addr}/library/busybox`]]) expect((await run(berth, args)).code).toBe(0);
  for (const args of [["rmi", "busybox"], ["pull", `${addr}/library/busybox`], ["tag", `${addr}/library/busybox`, "busybox"]]) expect((await run(dockerd, args)).code).toBe(0);
});

afterAll(async () => {
  await dockerd?.stop();
  await engine?.close();
  await reg?.stop();
  unmountUnder(root);
  fs.rmSync(root, { recursive: true, force: true });
});

describe("image commands, ours and dockerd's", () => {
  it("same busybox id on both sides, with RepoDigests from the registry", async () => {
    const r = await both(["image", "inspect", "-f", "{{.Id}} {{json .RepoTags}} {{json .RepoDigests}}", "busybox"]);
    expect(r.ours).toEqual(r.theirs);
    const raw = await run(berth, ["images", "--digests", "--format", "{{.Repository}} {{.Digest}}"]);
    expect(raw.out).toContain(`${addr}/library/busybox sha256:`);
  });

  it("commit, tag, images with filters and --format", async () => {
    for (const args of [
      ["run", "--name", "img-t1", "busybox", "sh", "-c", "echo abc > /a; mkdir /d; echo 12345 > /d/f"],
      ["commit", "-c", "LABEL course=berth", "img-t1", "img:one"],
      ["tag", "img:one", "img:two"],
      ["tag", "img:one", "other/img:three"],
    ]) {
      const r = await both(args);
      expect(r.ours.code).toBe(r.theirs.code);
    }
    const list = (s: string) => s.split("\n").filter(Boolean).sort().join("\n");
    for (const args of [
      ["images", "--format", "{{.Repository}}:{{.Tag}}"],
      ["images", "--filter", "reference=img", "--format", "{{.Repository}}:{{.Tag}}"],
      ["images", "--filter", "reference=*/img:*", "--format", "{{.Repository}}:{{.Tag}}"],
      ["images", "--filter", "label=course=berth", "--format", "{{.Repository}}:{{.Tag}}"],
      ["images", "--filter", "label=course", "--format", "{{.Repository}}:{{.Tag}}"],
      ["images", "--filter", "since=busybox", "--format", "{{.Repository}}:{{.Tag}}"],
      ["images", "--filter", "before=img:one", "--format", "{{.Repository}}:{{.Tag}}"],
      ["images", "--filter", "dangling=true", "-q"],
      ["images", "img"],
      ["images", "--filter", "bogus=1"], // 20.10 says "Invalid filter", current dockerd (and we) "invalid filter"
    ]) {
      const r = await both(args, (s) => list(s).replace("Invalid filter", "invalid filter"));
      expect(r.ours, args.join(" ")).toEqual(r.theirs);
    }
  });

  it("history: created-by, sizes, the parent's id and <missing>", async () => {
    const r = await both(["history", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}", "--no-trunc", "img:one"]);
    expect(r.ours).toEqual(r.theirs);
    const b = await both(["history", "--format", "{{.ID}}|{{.Size}}", "busybox"]);
    expect(b.ours).toEqual(b.theirs);
  });

  it("rmi: untag, a container's image, a parent of other images, by id", async () => {
    for (const args of [
      ["rmi", "img:two"], // one of several names: untag only
      ["rmi", `${addr}/library/busybox`], // its repository's digest goes along
      ["rmi", "busybox"], // the last name of an image a container uses
      ["rmi", (await run(berth, ["image", "inspect", "-f", "{{.Id}}", "busybox"])).out.trim()], // by id, with a child image
      ["rmi", "img:one"], // still named other/img:three
      ["rmi", "nothing:here"],
    ]) {
      const r = await both(args);
      expect(r.ours, args.join(" ")).toEqual(r.theirs);
    }
  });

  it("image prune (dangling, -a) and system df", async () => {
    for (const args of [["rm", "img-t1"], ["run", "--name", "img-t2", "busybox", "true"], ["commit", "img-t2"], ["rm", "img-t2"]]) expect((await both(args)).ours.code).toBe(0);
    const dangling = await both(["images", "--filter", "dangling=true", "--format", "{{.Repository}}:{{.Tag}}"]);
    expect(dangling.ours).toEqual(dangling.theirs);
    expect(dangling.ours.out).toBe("<none>:<none>\n");
    const df = await both(["system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}"]);
    expect(df.ours).toEqual(df.theirs);
    const dfv = await both(["system", "df", "-v", "--format", "{{json .Images}}"]);
    const rows = (s: string) => (JSON.parse(s.trim() || "[]") as { Repository: string; Tag: string; Containers: string }[]).map((i) => `${i.Repository}:${i.Tag} ${i.Containers}`).sort();
    expect(rows(dfv.ours.out)).toEqual(rows(dfv.theirs.out));
    const prune = await both(["image", "prune", "-f"], sizes);
    expect(prune.ours).toEqual(prune.theirs);
    // dockerd walks its images in Go map order (random): compare the lines as sets.
    const pruneAll = await both(["image", "prune", "-a", "-f"], (s) => sizes(s).split("\n").sort().join("\n"));
    expect(pruneAll.ours).toEqual(pruneAll.theirs);
    const left = await both(["images", "-a", "--format", "{{.Repository}}:{{.Tag}}"]);
    expect(left.ours).toEqual(left.theirs);
    expect(left.ours.out).toBe("");
  });

  it("system prune -a --volumes -f empties both the same way", async () => {
    // An anonymous volume: API 1.41 (dockerd 20.10) prunes named ones too, 1.42+ (ours) does not.
    for (const args of [["pull", `${addr}/library/busybox`], ["run", "--name", "img-t3", "-v", "/data", `${addr}/library/busybox`, "true"]]) expect((await both(args)).ours.code).toBe(0);
    const r = await both(["system", "prune", "-a", "--volumes", "-f"], sizes);
    expect(r.ours.code).toBe(r.theirs.code);
    const lines = (s: string) => s.split("\n").filter((l) => /^(Deleted|Untagged|Total|deleted|untagged|<id>)/.test(l)).sort();
    expect(lines(r.ours.out)).toEqual(lines(r.theirs.out));
    const df = await both(["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    expect(df.ours).toEqual(df.theirs);
  });
});
