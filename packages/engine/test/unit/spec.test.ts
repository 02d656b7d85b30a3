/**
 * The fast tier (no root, no processes): Docker's JSON into the typed record, users looked up in a
 * container's own files, exec bodies checked. The differential suites show these against dockerd;
 * here each rule is pinned on its own, so a change to one is caught in a second.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { execConfig } from "../../src/containers/exec";
import { containerConfig, healthcheck, hostConfigFrom, limitsOf, mergeEnv, daemonEnvironment, restartPolicy, updatedHostConfig, validCpuset } from "../../src/containers/spec";
import { probeCommand } from "../../src/containers/health";
import { resolveUser } from "../../src/containers/user";
import { EngineError } from "../../src/errors";

const refused = (fn: () => unknown): EngineError => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    return e as EngineError;
  }
  throw new Error("was accepted");
};

describe("containerConfig: image defaults under the request", () => {
  const image = { Env: ["PATH=/bin", "A=1"], Cmd: ["sh"], Entrypoint: null, WorkingDir: "/w", User: "app", Labels: { x: "1" }, ExposedPorts: { "80/tcp": {} } };
  it("keeps the image's Cmd, Env, WorkingDir, User and labels when the request says nothing", () => {
    const c = containerConfig({}, image, "a".repeat(64), "img");
    expect(c).toMatchObject({ Cmd: ["sh"], Env: ["PATH=/bin", "A=1"], WorkingDir: "/w", User: "app", Labels: { x: "1" }, Hostname: "aaaaaaaaaaaa", ExposedPorts: { "80/tcp": {} } });
  });
  it("a new entrypoint drops the image's Cmd; --entrypoint \"\" clears it; -e overrides by name", () => {
    expect(containerConfig({ Entrypoint: ["echo"] }, image, "b".repeat(64), "img").Cmd).toBeNull();
    expect(containerConfig({ Entrypoint: [""], Cmd: ["ls"] }, image, "b".repeat(64), "img")).toMatchObject({ Entrypoint: null, Cmd: ["ls"] });
    expect(containerConfig({ Env: ["A=2"] }, image, "b".repeat(64), "img").Env).toEqual(["PATH=/bin", "A=2"]);
  });
});

describe("hostConfigFrom: limits checked as dockerd checks them", () => {
  it("refuses memory under 6 MB, swap below memory, CPUs out of range, absent cpusets", () => {
    expect(refused(() => hostConfigFrom({ Memory: 1 << 20 })).message).toBe("Minimum memory limit allowed is 6MB");
    expect(refused(() => hostConfigFrom({ Memory: 64 << 20, MemorySwap: 32 << 20 })).status).toBe(400);
    expect(refused(() => hostConfigFrom({ NanoCpus: 3e9 }, 2)).message).toBe("Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available");
    expect(refused(() => hostConfigFrom({ NanoCpus: 1e6 }, 4)).message).toBe("Range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available");
    expect(refused(() => hostConfigFrom({ CpusetCpus: "0-3" }, 2)).message).toBe("Requested CPUs are not available - requested 0-3, available: 0-1");
  });
  it("fills Docker's defaults and turns them into cgroup limits", () => {
    const h = hostConfigFrom({ Memory: 64 << 20, NanoCpus: 5e8, PidsLimit: -1 }, 2);
    expect(h).toMatchObject({ NetworkMode: "default", RestartPolicy: { Name: "no", MaximumRetryCount: 0 }, PidsLimit: null, LogConfig: { Type: "json-file" } });
    expect(limitsOf(h)).toMatchObject({ memory: 64 << 20, nanoCpus: 5e8, pidsLimit: undefined });
    expect(validCpuset("0,1", 2) && !validCpuset("1-0", 2) && !validCpuset("x", 2)).toBe(true);
  });
});

describe("environment", () => {
  it("PATH and HOSTNAME first, TERM with a tty, HOME from the user, the container's own win", () => {
    expect(daemonEnvironment(["HOSTNAME=mine"], "h", true, "/root")).toEqual(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "HOSTNAME=mine", "HOME=/root"]);
    expect(mergeEnv(["A=1", "B=2"], ["A=3"])).toEqual(["B=2", "A=3"]);
  });
});

describe("resolveUser: the container's /etc/passwd and /etc/group", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-user-"));
  fs.mkdirSync(path.join(root, "etc"));
  fs.writeFileSync(path.join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n");
  fs.writeFileSync(path.join(root, "etc/group"), "root:x:0:\napp:x:1000:\nwheel:x:10:app\n");
  it("by name, by number, with a group, and the groups that name the user", () => {
    expect(resolveUser(root, "app")).toEqual({ uid: 1000, gid: 1000, groups: [1000, 10], home: "/home/app" });
    expect(resolveUser(root, "")).toEqual({ uid: 0, gid: 0, groups: [0], home: "/root" });
    expect(resolveUser(root, "1000:wheel")).toMatchObject({ uid: 1000, gid: 10 });
    expect(resolveUser(root, "4242")).toEqual({ uid: 4242, gid: 0, groups: [0], home: "/" });
  });
  it("an unknown name is refused in runc's words", () => {
    expect(refused(() => resolveUser(root, "nobody")).message).toBe("unable to find user nobody: no matching entries in passwd file");
    expect(refused(() => resolveUser(root, "app:staff")).message).toBe("unable to find group staff: no matching entries in group file");
  });
});

describe("execConfig", () => {
  it("needs a command", () => {
    expect(refused(() => execConfig({ Cmd: [] })).message).toBe("No exec command specified");
    expect(execConfig({ Cmd: ["ls"], Tty: true, User: "app" })).toMatchObject({ Cmd: ["ls"], Tty: true, User: "app", AttachStdin: false });
  });
});

describe("health checks, restart policies and update (pure parts)", () => {
  it("--health-* over the image's HEALTHCHECK: empty fields inherit, bad durations are refused", () => {
    const image = { Test: ["CMD-SHELL", "curl -f localhost"], Interval: 5e9, Retries: 2 };
    expect(healthcheck({ Test: [], Timeout: 1e9 }, image)).toEqual({ Test: ["CMD-SHELL", "curl -f localhost"], Interval: 5e9, Timeout: 1e9, Retries: 2 });
    expect(healthcheck(undefined, image)).toEqual(image);
    expect(healthcheck({ Test: ["NONE"] }, image)!.Test).toEqual(["NONE"]);
    expect(refused(() => healthcheck({ Test: ["CMD", "true"], Interval: 1000 }, undefined)).message).toBe("Interval in Healthcheck cannot be less than 1ms");
    expect(probeCommand({ Test: ["CMD-SHELL", "exit 1"] })).toEqual(["/bin/sh", "-c", "exit 1"]);
    expect(probeCommand({ Test: ["NONE"] })).toBeNull();
  });
  it("restart policies in dockerd's words", () => {
    expect(restartPolicy(undefined)).toEqual({ Name: "no", MaximumRetryCount: 0 });
    expect(restartPolicy({ Name: "on-failure", MaximumRetryCount: 3 })).toEqual({ Name: "on-failure", MaximumRetryCount: 3 });
    expect(refused(() => restartPolicy({ Name: "always", MaximumRetryCount: 3 })).message).toBe("maximum retry count cannot be used with restart policy 'always'");
    expect(refused(() => restartPolicy({ Name: "sometimes" })).message).toBe("invalid restart policy 'sometimes'");
  });
  it("update: only what is asked changes; memory above the stored swap needs --memory-swap", () => {
    const h = hostConfigFrom({ Memory: 64 << 20 }, 2);
    expect(h.MemorySwap).toBe(128 << 20);
    const { hostConfig, limits } = updatedHostConfig(h, { Memory: 100 << 20, CpuShares: 0 }, "id", 2);
    expect([hostConfig.Memory, hostConfig.MemorySwap, limits]).toEqual([100 << 20, 128 << 20, { memory: 100 << 20, memorySwap: 128 << 20 }]);
    expect(refused(() => updatedHostConfig(h, { Memory: 256 << 20 }, "id", 2)).message).toBe("Cannot update container id: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time");
  });
});
