/**
 * The recipe from the shim's reports, without root: escaping on the report pipe, mounts joined
 * with the kernel's mountinfo (a bind shows its real type, a remount marks its mount, a mount over
 * another replaces it), fallbacks, shared and new namespaces, capability masks. The sandbox test
 * (recipe-sandbox.test.ts) checks the same against a live container.
 */
import { describe, expect, it } from "vitest";
import { buildRecipe, capabilityNames, unescapeMountinfo } from "../src/recipe/recipe";
import { parseReport, type ShimReport } from "../src/runtime/shim";

const M = "/e/containers/abc/merged";
const rep = (kind: string, line: number, ...fields: string[]): ShimReport => ({ kind, line, fields });

describe("shim reports", () => {
  it("parses report lines and undoes the escaping", () => {
    expect(parseReport("report\texec\t480\t/bin/echo\techo\\na\\tb\\\\c")).toEqual({ kind: "exec", line: 480, fields: ["/bin/echo", "echo\na\tb\\c"] });
    expect(parseReport("pid 12")).toBeUndefined();
    expect(parseReport("report\tmount\tx\t/a")).toBeUndefined();
  });

  it("builds mounts, namespaces, identity and steps from reports only", () => {
    const reports: ShimReport[] = [
      rep("ns", 604, "pid", "4026532451", "4026531836"),
      rep("ns", 604, "user", "4026531837", "4026531837"),
      rep("cgroup", 542, "4:memory:/berth-engine/abc"),
      rep("hostname", 546, "abc"),
      rep("mount", 382, "/", "", "", "rec,private", ""),
      rep("mount", 383, M, M, "", "bind,rec", ""),
      rep("mount", 386, `${M}/proc`, "proc", "proc", "nosuid,nodev,noexec", ""),
      rep("fallback", 185, `${M}/dev/null`, "mknod: EPERM (a user namespace)", "/dev/null"),
      rep("mount", 190, `${M}/dev/null`, "/dev/null", "", "bind", ""),
      rep("mount", 268, `${M}/data`, "/v/a", "", "bind,rec", ""),
      rep("mount", 268, `${M}/data`, "/v/b", "", "bind,rec", ""),
      rep("mount", 170, `${M}/data`, "", "", "ro,remount,bind", ""),
      rep("mounted", 360, "10", "9", M, "rw,relatime", "overlay", "overlay", "rw,lowerdir=/l,upperdir=/u,workdir=/w"),
      rep("mounted", 360, "11", "10", M, "rw,relatime", "overlay", "overlay", "rw,lowerdir=/l,upperdir=/u,workdir=/w"),
      rep("mounted", 360, "12", "11", `${M}/proc`, "rw,nosuid", "proc", "proc", "rw"),
      rep("mounted", 360, "13", "11", `${M}/dev/null`, "rw,nosuid", "devtmpfs", "udev", "rw"),
      rep("mounted", 360, "14", "11", `${M}/data`, "rw", "ext4", "/dev/sda1", "rw"),
      rep("mounted", 360, "15", "11", `${M}/data`, "ro", "ext4", "/dev/sda1", "rw"),
      rep("mounted", 360, "16", "15", `${M}/data/sub\\040dir`, "rw", "tmpfs", "tmpfs", "rw"),
      rep("rlimit", 587, "7:1024:2048"),
      rep("oom_score_adj", 594, "500"),
      rep("cwd", 549, "/"),
      rep("user", 559, "1000", "1000", "1000,27"),
      rep("caps", 559, "a80425fb", "0", "0", "no_new_privs"),
      rep("exec", 480, "/bin/sleep", "sleep\n300"),
    ];
    const r = buildRecipe({
      argv: ["/e/bin/berth-shim", "run", "--", "sleep", "300"],
      reports,
      hostPid: 77,
      snapshot: { lower: ["/l"], upper: "/u", work: "/w", merged: M },
      cgroup: { version: 1, dirs: ["/sys/fs/cgroup/memory/berth-engine/abc"], writes: [{ file: "/sys/fs/cgroup/memory/berth-engine/abc/memory.limit_in_bytes", value: "1048576" }], notes: [] },
      hostname: "abc",
      engineSteps: ["ip link add veth0 ..."],
    });
    expect(r.rootfs.command).toBe(`mount -t overlay overlay -o lowerdir=/l,upperdir=/u,workdir=/w ${M}`);
    expect(r.mounts.map((m) => [m.destination, m.type, m.mountId])).toEqual([
      ["/", "overlay", 11],
      ["/proc", "proc", 12],
      ["/dev/null", "devtmpfs", 13],
      ["/data", "ext4", 15],
      ["/data/sub dir", "tmpfs", 16],
    ]);
    expect(r.mounts.find((m) => m.destination === "/dev/null")!.fallback).toBe("mknod: EPERM (a user namespace): /dev/null bound instead");
    expect(r.mounts.find((m) => m.destination === "/data")!.call).toEqual({ source: "/v/b", type: "bind", flags: "bind,rec", data: "", remount: "ro,remount,bind" });
    expect(r.mounts.find((m) => m.destination === "/data/sub dir")!.call).toBeUndefined();
    expect(r.namespaces).toEqual([
      { type: "pid", inode: 4026532451, outer: 4026531836, shared: false, path: "/proc/77/ns/pid", source: { file: "packages/engine/src/runtime/shim.c", line: 604 } },
      { type: "user", inode: 4026531837, outer: 4026531837, shared: true, path: "/proc/77/ns/user", source: { file: "packages/engine/src/runtime/shim.c", line: 604 } },
    ]);
    expect(r.user).toEqual({ uid: 1000, gid: 1000, groups: [1000, 27] });
    expect(r.capabilities).toHaveLength(14);
    expect(r.capabilitySets.effective).toEqual([]);
    expect(r.capabilitySets.noNewPrivileges).toBe(true);
    expect(r.exec).toEqual({ path: "/bin/sleep", argv: ["sleep", "300"] });
    expect(r.cgroup.membership).toEqual(["4:memory:/berth-engine/abc"]);
    expect(r.steps[0]).toBe(r.rootfs.command);
    expect(r.steps).toContain("echo 1048576 > /sys/fs/cgroup/memory/berth-engine/abc/memory.limit_in_bytes");
    expect(r.steps.at(-1)).toBe('execve /bin/sleep ["sleep","300"]');
    expect(r.steps).toEqual(expect.arrayContaining(["setrlimit 7:1024:2048 (resource:soft:hard)", "echo 500 > /proc/self/oom_score_adj"]));
    expect(r.trace.find((s) => s.kind === "cgroup")!.source).toEqual({ file: "packages/engine/src/cgroups/cgroups.ts", find: "memory.limit_in_bytes" });
  });

  it("names capabilities from a mask", () => {
    expect(capabilityNames("1")).toEqual(["CAP_CHOWN"]);
    expect(capabilityNames("zz")).toEqual([]);
    expect(unescapeMountinfo("/a\\040b\\011c")).toBe("/a b\tc");
  });
});
