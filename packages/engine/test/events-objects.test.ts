/**
 * `docker events` for what is not a container, against a real dockerd: images (tag, untag,
 * delete), volumes (create, mount, unmount, destroy) and networks (create, connect, disconnect,
 * destroy), replayed with --since/--until and filtered by type and name.
 */
import { describe, expect, it } from "vitest";

import { same, steps, berthAndDockerd } from "./differential";

const pair = berthAndDockerd();

// Event lines start with their time: keep the type, action, actor and attributes.
const events = (args: string) => `docker events ${args} | cut -d' ' -f2-`;

describe("docker events for images, volumes and networks", () => {
  // (pull is not compared: the reference dockerd here reaches no registry; layer-guard.test.ts pulls)
  it("images: tag, untag, delete", async () => {
    const out = await same(pair.berth, pair.dockerd, steps(
      "S=$(date +%s)",
      "docker tag busybox ev-img:1",
      "docker tag busybox ev-img:2",
      "docker rmi ev-img:1 >/dev/null",
      "docker run --name ev-img-c busybox sh -c 'echo x > /x' && docker commit ev-img-c ev-img:3 >/dev/null && docker rm ev-img-c >/dev/null",
      "docker rmi ev-img:3 >/dev/null",
      "docker rmi ev-img:2 >/dev/null",
      "sleep 1",
      "U=$(date +%s)",
      events("--since $S --until $U --filter type=image --filter event=tag --filter event=untag --filter event=delete"),
    ));
    expect(out).toContain("image tag <id> (name=ev-img:1)");
    expect(out).toContain("image delete <id> (name=<id>)");
  });

  it("volumes: create (named and anonymous), mount and unmount with a container's run, destroy", async () => {
    const out = await same(pair.berth, pair.dockerd, steps(
      "S=$(date +%s)",
      "docker volume create ev-vol >/dev/null",
      "docker run --rm -v ev-vol:/data -v /anon busybox true",
      "docker run --rm -v ev-vol:/ro:ro busybox true",
      "docker volume rm ev-vol >/dev/null",
      "sleep 1",
      "U=$(date +%s)",
      // One volume's story in order; all of them sorted (dockerd mounts a container's volumes in Go
      // map order), with the random ids (containers, the anonymous volume) masked first, or the
      // sort would order lines by them.
      events("--since $S --until $U --filter type=volume --filter volume=ev-vol"),
      `${events("--since $S --until $U --filter type=volume")} | sed -E 's/[0-9a-f]{64}/<id>/g' | sort`,
    ));
    expect(out).toContain("volume mount ev-vol (container=<id>, destination=/ro, driver=local, propagation=, read/write=false)");
  });

  it("networks: create, connect and disconnect around a container's run and by hand, destroy", async () => {
    const out = await same(pair.berth, pair.dockerd, steps(
      "S=$(date +%s)",
      "docker network create ev-net >/dev/null",
      "docker run --rm --network ev-net busybox true",
      "docker create --name ev-net-c busybox true >/dev/null",
      "docker network connect ev-net ev-net-c && docker network disconnect ev-net ev-net-c",
      "docker rm ev-net-c >/dev/null",
      "docker network rm ev-net >/dev/null",
      "sleep 1",
      "U=$(date +%s)",
      events("--since $S --until $U --filter type=network --filter network=ev-net"),
    ));
    expect(out).toContain("network connect <id> (container=<id>, name=ev-net, type=bridge)");
  });
});
