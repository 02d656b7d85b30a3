// The lab registry as a process: Debian's docker-registry started on a free loopback port with a
// config of ours, serving the v2 API from its root, refusing a port that is taken, and gone after
// stop() (no process, no config file left behind). Push and pull through it are tested with the
// engine (packages/engine/test/registry.test.ts).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { registryConfig, startRegistry } from "../src/registry.js";

const root = mkdtempSync(path.join(tmpdir(), "berth-registry-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("startRegistry", () => {
  it("serves the v2 API on loopback from its root, and stop() leaves nothing running", async () => {
    const reg = await startRegistry({ root });
    try {
      expect(reg.host).toBe("127.0.0.1");
      expect(reg.url).toBe(`http://127.0.0.1:${reg.port}`);
      expect(reg.address).toBe(`127.0.0.1:${reg.port}`);
      const res = await fetch(`${reg.url}/v2/`);
      expect(res.status).toBe(200);
      expect(res.headers.get("docker-distribution-api-version")).toBe("registry/2.0");
      // An empty storage: a name it does not hold is the registry's own 404, not ours.
      expect((await fetch(`${reg.url}/v2/library/nothing/tags/list`)).status).toBe(404);
      const config = readFileSync(path.join(root, `config-${reg.port}.yml`), "utf8");
      expect(config).toContain(`addr: "127.0.0.1:${reg.port}"`);
      expect(config).toContain(`rootdirectory: ${JSON.stringify(path.join(root, "data"))}`);
      expect(existsSync(`/proc/${reg.pid}`)).toBe(true);
    } finally {
      await reg.stop();
    }
    expect(existsSync(`/proc/${reg.pid}`)).toBe(false);
    expect(readdirSync(root).filter((f) => f.startsWith("config-"))).toEqual([]);
    await expect(fetch(`${reg.url}/v2/`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
  });

  it("refuses a port someone else listens on, instead of taking their server for itself", async () => {
    const other = net.createServer();
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
    const port = (other.address() as net.AddressInfo).port;
    try {
      await expect(startRegistry({ root, port })).rejects.toThrow(`cannot start the registry on 127.0.0.1:${port}: the port is in use`);
    } finally {
      await new Promise((r) => other.close(r));
    }
  });

  it("names the package to install when the binary is missing", async () => {
    await expect(startRegistry({ root, binary: path.join(root, "no-such-registry") })).rejects.toThrow(/apt-get install docker-registry/);
  });

  it("writes a config that keeps deletes on and the access log off", () => {
    const yml = registryConfig({ dataDir: "/x/data", host: "127.0.0.1", port: 5000 });
    expect(yml).toMatch(/delete:\n {4}enabled: true/);
    expect(yml).toMatch(/accesslog:\n {4}disabled: true/);
    expect(yml).toContain('addr: "127.0.0.1:5000"');
  });
});
