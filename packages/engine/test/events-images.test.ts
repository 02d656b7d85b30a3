/**
 * `docker events` for moving images, against a real dockerd: push (through one real
 * docker-registry both engines reach), save, load and import, replayed with --since/--until and
 * filtered by type and event. Ids are masked; names, actions and attributes must match.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistry, type Registry } from "@berth/registry";
import { same, steps } from "./differential";
import { startBerth, startDockerd, tmpDir, type Daemon } from "./harness";

let reg: Registry;
let berth: Awaited<ReturnType<typeof startBerth>>;
let dockerd: Daemon;
let regRoot: string;

beforeAll(async () => {
  regRoot = tmpDir("berth-ev-images-reg-");
  reg = await startRegistry({ root: path.join(regRoot, "registry") });
  [berth, dockerd] = await Promise.all([startBerth(), startDockerd({ forward: [reg.port] })]);
}, 180_000);

afterAll(async () => {
  await Promise.all([berth?.stop(), dockerd?.stop()]);
  await reg?.stop();
}, 60_000);

// Event lines start with their time: keep the type, action, actor and attributes.
const events = (args: string) => `docker events ${args} | cut -d' ' -f2-`;

describe("docker events for push, save, load and import", () => {
  it("push, save (one image, two names), load and import are events with dockerd's names", async () => {
    const out = await same(berth, dockerd, steps(
      "T=$(mktemp -d)",
      "docker run --name ev-mv-c busybox sh -c 'echo moved > /moved' && docker commit --change 'LABEL tier=lab' ev-mv-c ev-mv:1 >/dev/null && docker rm ev-mv-c >/dev/null",
      `docker tag ev-mv:1 ${reg.address}/ev/mv:1`,
      "S=$(date +%s)",
      `docker push ${reg.address}/ev/mv:1 >/dev/null`,
      "docker save -o $T/one.tar ev-mv:1",
      `docker save ev-mv:1 ${reg.address}/ev/mv:1 > $T/two.tar`,
      `docker rmi ev-mv:1 ${reg.address}/ev/mv:1 >/dev/null`,
      "docker load -i $T/one.tar",
      "docker create --name ev-mv-x ev-mv:1 >/dev/null && docker export ev-mv-x | docker import - ev-mv-imported:1 >/dev/null && docker rm ev-mv-x >/dev/null",
      "sleep 1",
      "U=$(date +%s)",
      events("--since $S --until $U --filter type=image --filter event=push --filter event=save --filter event=load --filter event=import"),
      "docker rmi ev-mv:1 ev-mv-imported:1 >/dev/null; rm -rf $T",
    ));
    expect(out).toContain(`image push ${reg.address}/ev/mv:1 (name=${reg.address}/ev/mv, tier=lab)`);
    expect(out).toContain("image save <id> (name=<id>, tier=lab)");
    expect(out).toContain("image load <id> (name=<id>, tier=lab)");
    expect(out).toContain("image import <id> (name=<id>)");
  }, 180_000);
});
