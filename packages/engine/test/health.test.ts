/**
 * Health checks against a real dockerd: --health-* flags and a Dockerfile's HEALTHCHECK, the
 * (health: starting) → (healthy)/(unhealthy) status in ps, State.Health in inspect (streak, log,
 * a probe's output, a timed-out probe), ps --filter health=, unhealthy once stopped, bad input.
 */
import { describe, it } from "vitest";

import { same, steps, berthAndDockerd } from "./differential";

const pair = berthAndDockerd();

/** Poll ps until a container shows a health status (at most 15 s). */
const until = (name: string, status: string) => `for i in $(seq 150); do docker ps --filter name=${name} --format '{{.Status}}' | grep -q '(${status})' && break; sleep 0.1; done`;

describe("health checks", () => {
  it("--health-cmd: starting, then healthy or unhealthy; inspect keeps the streak and the log", async () => {
    await same(pair.berth, pair.dockerd, steps(
      "docker run -d --name hc-good --health-cmd 'test -e /tmp/ok' --health-interval 1s --health-retries 2 busybox sh -c 'sleep 1.5; touch /tmp/ok; sleep 300' >/dev/null",
      "docker run -d --name hc-bad --health-cmd 'echo not yet; exit 1' --health-interval 1s --health-retries 2 busybox sleep 300 >/dev/null",
      "docker ps --format '{{.Names}} {{.Status}}' --filter name=hc-good",
      until("hc-good", "healthy"),
      until("hc-bad", "unhealthy"),
      "docker ps --format '{{.Names}} {{.Status}}' --filter name=hc-",
      "docker ps --filter health=unhealthy --format '{{.Names}}'",
      "docker ps --filter health=healthy --format '{{.Names}}'",
      "docker inspect -f '{{.State.Health.Status}} {{.State.Health.FailingStreak}}' hc-good",
      "test $(docker inspect -f '{{.State.Health.FailingStreak}}' hc-bad) -ge 2",
      "docker inspect -f '{{(index .State.Health.Log 0).ExitCode}} {{(index .State.Health.Log 0).Output}}' hc-bad",
      "docker inspect -f '{{json .Config.Healthcheck}}' hc-good",
      "docker stop -t 0 hc-good >/dev/null",
      "docker inspect -f '{{.State.Health.Status}} {{.State.Health.FailingStreak}}' hc-good",
      "docker rm -f hc-good hc-bad >/dev/null",
    ));
  });

  it("a probe that outlives --health-timeout is killed and logged as -1", async () => {
    await same(pair.berth, pair.dockerd, steps(
      "docker run -d --name hc-slow --health-cmd 'sleep 5' --health-interval 1s --health-timeout 1s busybox sleep 300 >/dev/null",
      "for i in $(seq 100); do test \"$(docker inspect -f '{{.State.Health.FailingStreak}}' hc-slow)\" -ge 1 && break; sleep 0.1; done",
      "docker inspect -f '{{.State.Health.Status}} {{(index .State.Health.Log 0).ExitCode}} {{(index .State.Health.Log 0).Output}}' hc-slow",
      "docker rm -f hc-slow >/dev/null",
      "docker run --rm --health-cmd true --health-interval 1us busybox true",
      "docker run --rm --health-cmd true --no-healthcheck busybox true",
    ));
  });

  it("HEALTHCHECK in a Dockerfile: recorded in the image, run by its containers, overridden by flags", async () => {
    const dockerfile = "FROM busybox\\nHEALTHCHECK --interval=1s --retries=1 CMD test -e /etc/hostname || exit 1\\n";
    await same(pair.berth, pair.dockerd, steps(
      `printf '${dockerfile}' | docker build -q -t hc-image - >/dev/null`,
      "docker image inspect -f '{{json .Config.Healthcheck}}' hc-image",
      "docker run -d --name hc-img hc-image sleep 300 >/dev/null",
      "docker run -d --name hc-over --health-cmd false hc-image sleep 300 >/dev/null",
      "docker run -d --name hc-none --no-healthcheck hc-image sleep 300 >/dev/null",
      until("hc-img", "healthy"),
      until("hc-over", "unhealthy"),
      "docker ps --format '{{.Names}} {{.Status}}' --filter name=hc-",
      "docker inspect -f '{{json .Config.Healthcheck}}' hc-over hc-none",
      "docker rm -f hc-img hc-over hc-none >/dev/null",
      "docker rmi hc-image >/dev/null",
    ));
  });
});
