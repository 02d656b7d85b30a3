/**
 * Volumes and mounts where learners meet them: the engine inside a sandbox (a user namespace, the
 * agent's deny list), driven by the real docker CLI through the agent's exec, as a lab check would.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient } from "../../sandbox/src/index.js";
import { sandboxWithEngine, sh, testDriver, testId } from "../../sandbox/test/sandbox-fixture.js";

const driver = testDriver();
const id = testId("vol");
let client: AgentClient;

const run = async (cmd: string) => {
  const r = await sh(client, `{ ${cmd}; } 2>&1`, { timeoutMs: 60_000 });
  return r.stdout;
};

beforeAll(async () => {
  client = await sandboxWithEngine(driver, id, "vol-lab");
}, 120_000);

afterAll(async () => {
  client?.close();
  await driver.destroy(id);
}, 60_000);

describe("volumes in a sandbox", () => {
  it("a named volume is shared at once and outlives its containers; copy-up keeps owners", async () => {
    const out = await run(
      [
        "docker run -d --name vw -v shared:/data busybox sleep 300 >/dev/null",
        "docker run -d --name vr -v shared:/data:ro busybox sleep 300 >/dev/null",
        "docker exec vw sh -c 'echo now > /data/f' && docker exec vr cat /data/f",
        "docker exec vr sh -c 'echo x > /data/f' || true",
        "docker rm -f vw vr >/dev/null",
        "docker run --rm -v shared:/data busybox cat /data/f",
        "docker run --name vmk busybox sh -c 'mkdir /seed && echo s > /seed/f && chown -R 1000:1000 /seed' >/dev/null && docker commit --change 'VOLUME /seed' vmk seeded >/dev/null",
        "docker run --rm -v seeded-vol:/seed seeded stat -c '%u %n' /seed /seed/f",
      ].join("; "),
    );
    expect(out).toBe("now\nsh: can't create /data/f: Read-only file system\nnow\n1000 /seed\n1000 /seed/f\n");
  });

  it("tmpfs with a size, cp into a volume of a running container", async () => {
    const out = await run(
      [
        "docker run --rm --mount type=tmpfs,dst=/t,tmpfs-size=1m busybox sh -c 'df -k /t | tail -1 | tr -s \" \" | cut -d\" \" -f2'",
        "docker run --rm --tmpfs /t:size=64k,mode=700 busybox stat -c %a /t",
        "echo copied > /tmp/in && docker run -d --name cpr -v cpv:/data busybox sleep 300 >/dev/null && docker cp /tmp/in cpr:/data/in && docker exec cpr cat /data/in; docker rm -f cpr >/dev/null",
      ].join("; "),
    );
    expect(out).toBe("1024\n700\ncopied\n");
  });

  it("refuses binds of Berth's own paths with a clear error, allows the rest (/, the docker socket)", async () => {
    for (const src of ["/opt/berth", "/opt/berth/bin", "/run/berth", "/var/lib/berth/engine", "/var/lib/berth/engine/volumes"]) {
      const out = await run(`docker run --rm -v ${src}:/x busybox true; echo "[$?]"`);
      expect(out, src).toContain(`bind source path ${src} is not allowed`);
      expect(out).toContain("[125]");
    }
    expect(await run("docker run --rm --mount type=bind,src=/opt/berth,dst=/x busybox true")).toContain('invalid mount config for type "bind": bind source path /opt/berth is not allowed');
    expect(await run("docker run --rm -v /:/host busybox sh -c 'test -d /host/opt/berth && echo root-bound'")).toBe("root-bound\n");
    expect(await run("docker run --rm -v /var/run/docker.sock:/var/run/docker.sock busybox sh -c 'test -S /var/run/docker.sock && echo socket'")).toBe("socket\n");
    expect(await run("docker run --rm -v vx:relative busybox true")).toContain("invalid mount path: 'relative' mount path must be absolute");
  });
});
