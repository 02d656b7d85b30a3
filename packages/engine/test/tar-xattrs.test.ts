/**
 * xattrs through the engine's own tar (src/tar/), end to end with the real docker CLI: a file with
 * a file capability (security.capability, what `setcap cap_net_raw+ep` writes) and one with a
 * user.* xattr go into a container by `docker cp` (the API's PUT archive, with our tar), then
 * commit → save → rmi → load; the capability is in the saved layer, in the loaded layer's files,
 * and in `docker export` of a container made from the loaded image. Also: committing the same
 * container twice gives the same layer digest.
 */
import fs from "node:fs";
import path from "node:path";
import { getAttributeSync, setAttributeSync } from "fs-xattr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TarParser, collect, walkTar } from "../src/tar/reader";
import { packTree } from "../src/tar/writer";
import { docker, request, startBerth, tmpDir } from "./harness";

let berth: Awaited<ReturnType<typeof startBerth>>;
let work: string;

beforeAll(async () => {
  berth = await startBerth();
  work = tmpDir("berth-tar-xattrs-");
}, 120_000);

afterAll(async () => {
  await berth?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

// VFS_CAP_REVISION_2 with cap_net_raw (bit 13) permitted, effective flag set: `setcap cap_net_raw+ep`.
const CAP = Buffer.from("0100000200200000000000000000000000000000", "hex");

async function ok(args: string[]): Promise<string> {
  const r = await docker(berth, args, { timeout: 60_000 });
  expect(r.stderr, `docker ${args.join(" ")}`).toBe("");
  expect(r.code).toBe(0);
  return r.stdout;
}

/** The xattrs of `name` in a layer tar inside a saved image archive. */
function xattrsInSave(archive: string, name: string): Map<string, Buffer> | undefined {
  let found: Map<string, Buffer> | undefined;
  walkTar(archive, (e) => {
    if (!e.name.endsWith("layer.tar")) return;
    const inner = new TarParser((le) => {
      if (le.name.replace(/^\.\//, "") === name) found = le.xattrs;
    });
    return { write: (c) => inner.feed(c), end: () => inner.end() };
  });
  return found;
}

describe("xattrs survive the engine's tar", () => {
  it("a file capability and a user xattr: cp in → commit → save → load → export", async () => {
    const src = path.join(work, "src");
    fs.mkdirSync(path.join(src, "opt"), { recursive: true });
    fs.copyFileSync("/bin/busybox", path.join(src, "opt/ping"));
    fs.writeFileSync(path.join(src, "opt/note"), "annotated\n");
    setAttributeSync(path.join(src, "opt/ping"), "security.capability", CAP);
    setAttributeSync(path.join(src, "opt/note"), "user.berth.lesson", "xattrs");
    await ok(["create", "--name", "xa", "busybox", "true"]);
    const parts: Buffer[] = [];
    for await (const c of packTree({ source: path.join(src, "opt"), name: "opt" })) parts.push(c as Buffer);
    const put = await request(berth.socket, "PUT", "/v1.45/containers/xa/archive?path=/", Buffer.concat(parts), { "Content-Type": "application/x-tar" });
    expect(put.status).toBe(200);

    await ok(["commit", "xa", "xattr-img:1"]);
    // The same container committed again: the same layer, by digest.
    await ok(["commit", "xa", "xattr-img:2"]);
    const inspect = async (ref: string) => JSON.parse(await ok(["image", "inspect", ref]))[0] as { Id: string; RootFS: { Layers: string[] } };
    const [one, two] = [await inspect("xattr-img:1"), await inspect("xattr-img:2")];
    expect(two.RootFS.Layers).toEqual(one.RootFS.Layers);

    const saved = path.join(work, "saved.tar");
    await ok(["save", "-o", saved, "xattr-img:1"]);
    expect(xattrsInSave(saved, "opt/ping")?.get("security.capability")?.equals(CAP)).toBe(true);
    expect(xattrsInSave(saved, "opt/note")?.get("user.berth.lesson")?.toString()).toBe("xattrs");

    await ok(["rm", "xa"]);
    await ok(["rmi", "xattr-img:1", "xattr-img:2"]);
    expect((await ok(["load", "-i", saved])).trim()).toBe("Loaded image: xattr-img:1");
    const loaded = await inspect("xattr-img:1");
    expect(loaded.Id).toBe(one.Id);
    const top = loaded.RootFS.Layers.at(-1)!;
    const dir = berth.engine.images.layerPath(top);
    expect(getAttributeSync(path.join(dir, "opt/ping"), "security.capability").equals(CAP)).toBe(true);
    expect(getAttributeSync(path.join(dir, "opt/note"), "user.berth.lesson").toString()).toBe("xattrs");

    await ok(["create", "--name", "xb", "xattr-img:1", "true"]);
    const exported = path.join(work, "export.tar");
    await ok(["export", "-o", exported, "xb"]);
    const seen = new Map<string, Map<string, Buffer>>();
    let body = "";
    walkTar(exported, (e) => {
      seen.set(e.name, e.xattrs);
      if (e.name === "./opt/note") return collect((b) => (body = b.toString()));
    });
    expect(seen.get("./opt/ping")?.get("security.capability")?.equals(CAP)).toBe(true);
    expect(body).toBe("annotated\n");
    await ok(["rm", "xb"]);
  }, 120_000);
});
