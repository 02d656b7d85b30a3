// The base root filesystem (src/rootfs): complete, cached, shifted for the user namespace.
import { describe, expect, it } from "vitest";
import { existsSync, lstatSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ensureBaseRootfs, rootfsPath, ROOTFS_PACKAGES, SANDBOX_ID_BASE } from "../src/rootfs/build.js";
import { testDriver } from "./sandbox-fixture.js";

describe("base rootfs", () => {
  it("is built once, then returned at once from the cache", async () => {
    const stateDir = testDriver().stateDir;
    const first = await ensureBaseRootfs({ stateDir });
    const t0 = performance.now();
    const second = await ensureBaseRootfs({ stateDir });
    expect(performance.now() - t0).toBeLessThan(50);
    expect(second).toBe(first);
    expect(first).toBe(rootfsPath(stateDir));
  });

  it("holds the tools, the prompt and the mount points, owned by the sandbox's root", async () => {
    const root = await ensureBaseRootfs({ stateDir: testDriver().stateDir });
    const marker = JSON.parse(readFileSync(join(root, "etc", "berth-rootfs"), "utf8")) as { packages: string[] };
    expect(marker.packages).toEqual([...ROOTFS_PACKAGES]);
    for (const bin of ["bin/bash", "usr/bin/tini", "usr/bin/curl", "usr/bin/ps", "usr/bin/unshare", "usr/sbin/ip", "usr/bin/vim.tiny"]) {
      expect(existsSync(join(root, bin)), bin).toBe(true);
    }
    expect(readFileSync(join(root, "root", ".bashrc"), "utf8")).toMatch(/PS1=.*\\u@\\h.*\\w/);
    for (const dir of ["opt/berth", "run/berth"]) expect(statSync(join(root, dir)).isDirectory()).toBe(true);
    // Shifted: uid 0 inside is SANDBOX_ID_BASE on the host, setuid bits survived the chown.
    expect(lstatSync(join(root, "etc")).uid).toBe(SANDBOX_ID_BASE);
    const passwd = statSync(join(root, "usr", "bin", "passwd"));
    expect(passwd.uid).toBe(SANDBOX_ID_BASE);
    expect(passwd.mode & 0o4000).toBe(0o4000);
    expect(existsSync(join(root, "usr", "share", "man", "man1"))).toBe(false);
  });
});
