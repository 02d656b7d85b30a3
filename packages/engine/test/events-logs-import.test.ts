/**
 * Against a real dockerd: `docker events` (replayed with --since/--until, filtered, with exit codes
 * and signals), `logs --since/--until` to the nanosecond, and `docker import` (export → import
 * round trip: --change, --message, gzip, a file, garbage refused).
 */
import { describe, expect, it } from "vitest";

import { same, steps, berthAndDockerd } from "./differential";

const pair = berthAndDockerd();

// Event lines start with their time: keep the action and attributes.
const events = (args: string) => `docker events ${args} | cut -d' ' -f2-`;

describe("docker events", () => {
  it("replays a container's life with --since/--until: create, attach, start, die with its exit code, kill with its signal, stop, rename, destroy, execs", async () => {
    const out = await same(pair.berth, pair.dockerd, steps(
      "S=$(date +%s)",
      "docker run --name ev-a --label tier=web busybox sh -c 'exit 3'",
      "docker rm ev-a >/dev/null",
      "docker run -d --name ev-b busybox sleep 30 >/dev/null",
      "docker pause ev-b && docker unpause ev-b",
      "docker exec ev-b true",
      "docker stop -t 1 ev-b >/dev/null",
      "docker rename ev-b ev-c",
      "docker rm ev-c >/dev/null",
      "sleep 1",
      "U=$(date +%s)",
      events("--since $S --until $U --filter type=container"),
      events("--since $S --until $U --filter event=die"),
      events("--since $S --until $U --filter container=ev-a --filter event=destroy"),
      events("--since $S --until $U --filter label=tier=web --filter event=start"),
      events("--since $U --until $U"),
    ));
    expect(out).toContain("container die <id> (exitCode=3, image=busybox, name=ev-a, tier=web)");
  });

  it("streams live events until --until", async () => {
    await same(pair.berth, pair.dockerd, steps(
      "U=$(($(date +%s) + 3))",
      `(${events("--until $U --filter type=container --filter event=start --filter event=die")} > /tmp/berth-events-$$) & sleep 0.8`,
      "docker run --rm --name ev-live busybox true",
      "wait",
      "cat /tmp/berth-events-$$; rm -f /tmp/berth-events-$$",
    ));
  });
});

describe("docker logs --since/--until", () => {
  it("cuts at the entries' own timestamps (inclusive), and relative times", async () => {
    await same(pair.berth, pair.dockerd, steps(
      "docker run --name lg busybox sh -c 'echo one; sleep 0.3; echo two; sleep 0.3; echo three' >/dev/null",
      "T2=$(docker logs -t lg | sed -n 2p | cut -d' ' -f1)",
      "docker logs --until $T2 lg",
      "docker logs --since $T2 lg",
      "docker logs --since 10m lg | wc -l",
      "docker logs --since 2000-01-01T00:00:00Z --until 2000-01-02T00:00:00Z lg | wc -l",
      "docker rm lg >/dev/null",
    ));
  });
});

describe("docker import", () => {
  it("export → import round trip: the files (deletions too), --change, --message, gzip, a file; garbage refused", async () => {
    await same(pair.berth, pair.dockerd, steps(
      "docker run --name ex1 busybox sh -c 'echo hello > /greeting; rm /bin/vi'",
      "docker export ex1 | docker import --change 'CMD [\"cat\", \"/greeting\"]' --change 'ENV MOOD=calm' --message 'from ex1' - imported:v1 | sed 's/sha256:[0-9a-f]*/<id>/'",
      "docker run --rm imported:v1",
      "docker run --rm imported:v1 ls /bin/vi",
      "docker run --rm imported:v1 sh -c 'echo $MOOD'",
      "docker history --format '{{.CreatedBy}}|{{.Comment}}' imported:v1",
      "docker image inspect -f '{{json .Config.Cmd}} {{.Comment}} {{len .RootFS.Layers}}' imported:v1",
      "docker export ex1 | gzip | docker import - imported:gz >/dev/null",
      "docker run --rm imported:gz cat /greeting",
      "docker export ex1 > /tmp/berth-import-$$.tar && docker import /tmp/berth-import-$$.tar imported:file >/dev/null; rm -f /tmp/berth-import-$$.tar",
      "docker run --rm imported:file cat /greeting",
      "echo garbage | docker import - imported:bad",
      "docker rm ex1 >/dev/null",
      "docker rmi imported:v1 imported:gz imported:file >/dev/null",
    ));
  });
});
