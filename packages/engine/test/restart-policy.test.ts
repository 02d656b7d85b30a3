/**
 * Restart policies against a real dockerd: on-failure:N stops after N restarts with RestartCount N,
 * on-failure leaves a clean exit alone, always brings a container back until a user stops or kills
 * it, `docker start` counts afresh. Then, on our engine alone (a dockerd cannot be restarted on its
 * state here): after an engine restart `always` and `unless-stopped` containers run again, and an
 * `unless-stopped` one a user had stopped stays down.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startEngine, type Engine } from "../src/engine";
import { docker, sleep, tmpDir, unmountUnder } from "./harness";
import { same, steps, berthAndDockerd } from "./differential";

const pair = berthAndDockerd();

describe("--restart", () => {
  it("on-failure:N, on-failure after a clean exit, always until killed or stopped, start resets the count", async () => {
    await same(pair.berth, pair.dockerd, steps(
      "docker run -d --name rp-fail --restart on-failure:2 busybox sh -c 'echo run; exit 3' >/dev/null",
      "docker run -d --name rp-clean --restart on-failure busybox true >/dev/null",
      "docker run -d --name rp-always --restart always busybox sh -c 'echo run; sleep 0.3; exit 1' >/dev/null",
      "docker run -d --name rp-killed --restart always busybox sleep 100 >/dev/null",
      "sleep 3",
      "docker kill rp-killed >/dev/null",
      "docker inspect -f '{{.Name}} {{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}' rp-fail rp-clean rp-killed",
      "docker logs rp-fail",
      "test $(docker inspect -f '{{.RestartCount}}' rp-always) -ge 2",
      "docker inspect -f '{{.HostConfig.RestartPolicy.Name}} {{.State.Running}}' rp-always",
      "docker stop -t 1 rp-always >/dev/null",
      "sleep 1",
      "docker inspect -f '{{.State.Status}} {{.State.Restarting}}' rp-always",
      "docker start rp-fail >/dev/null",
      "docker inspect -f '{{.RestartCount}}' rp-fail | grep -c '^[0-2]$'",
      "docker create --restart always:3 busybox true",
      "docker create --restart sometimes busybox true",
      "docker rm -f rp-fail rp-clean rp-always rp-killed >/dev/null",
    ));
  });

  it("shows a restarting container in ps as Restarting, and rm -f ends it", async () => {
    await same(pair.berth, pair.dockerd, steps(
      "docker run -d --name rp-loop --restart always busybox sh -c 'exit 4' >/dev/null",
      // Print the line that showed Restarting: a second ps may land in one of the container's
      // short runs between back-offs and say "Up" on either engine.
      "for i in $(seq 100); do s=$(docker ps --format '{{.Names}} {{.Status}}' --filter name=rp-loop); case \"$s\" in *Restarting*) break;; esac; sleep 0.1; done; echo \"$s\" | sed 's/ (4) .*/ (4)/'",
      "docker rm -f rp-loop",
      "docker ps -a --filter name=rp-loop --format '{{.Names}}'",
    ));
  });
});

describe("--init", () => {
  it("reaps an orphan that PID 1 would leave a zombie, and passes signals on", async () => {
    // The orphaned sleep is handed to PID 1: `sleep` never waits for it, tini does.
    const out = await same(pair.berth, pair.dockerd, steps(
      "docker run -d --name in-no busybox sh -c '(sleep 0.2 &); exec sleep 30' >/dev/null",
      "docker run -d --name in-yes --init busybox sh -c '(sleep 0.2 &); exec sleep 30' >/dev/null",
      "sleep 1.5",
      "docker exec in-no ps -o stat,comm | grep -c '^Z'",
      "docker exec in-yes ps -o stat,comm | grep -c '^Z'",
      "docker kill -s USR1 in-yes >/dev/null",
      "timeout 10 docker wait in-yes",
      "docker rm -f in-no in-yes >/dev/null",
    ));
    expect(out).toContain("1\n[0]\n0\n[1]");
  });
});

describe("restart policies and an engine restart (ours)", () => {
  const root = tmpDir("berth-policy-");
  const socket = path.join(root, "docker.sock");
  const host = `unix://${socket}`;
  let engine: Engine | undefined;
  const start = () => startEngine({ root: path.join(root, "state"), socket, network: { enabled: false } });

  afterAll(async () => {
    await engine?.close();
    unmountUnder(root);
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("starts always and unless-stopped containers again; leaves one a user stopped", async () => {
    engine = await start();
    for (const [name, policy] of [["p-always", "always"], ["p-unless", "unless-stopped"], ["p-unless-stopped", "unless-stopped"], ["p-none", "no"]]) {
      expect((await docker(host, ["run", "-d", "--name", name!, "--restart", policy!, "busybox", "sleep", "300"])).code).toBe(0);
    }
    expect((await docker(host, ["stop", "-t", "0", "p-unless-stopped"])).code).toBe(0);
    await engine.close();
    engine = await start();
    let running = "";
    for (let i = 0; i < 50; i++) {
      running = (await docker(host, ["ps", "--format", "{{.Names}}"])).stdout;
      if (running.split("\n").filter(Boolean).length >= 2) break;
      await sleep(100);
    }
    expect(running.split("\n").filter(Boolean).sort()).toEqual(["p-always", "p-unless"]);
    expect((await docker(host, ["rm", "-f", "p-always", "p-unless", "p-unless-stopped", "p-none"])).code).toBe(0);
  });
});
