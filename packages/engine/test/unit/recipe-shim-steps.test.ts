/**
 * The steps berth-shim now takes itself, as they reach the recipe (no root): the overlay it
 * mounted ("rootfs") and each veth step ("netlink", worded as the `ip` command it stands for),
 * each pointing at its line of shim.c, and not one mount more in the mount list for them.
 */
import { describe, expect, it } from "vitest";
import { buildRecipe } from "../../src/recipe/recipe";
import type { ShimReport } from "../../src/runtime/shim";

const M = "/e/containers/abc/merged";
const rep = (kind: string, line: number, ...fields: string[]): ShimReport => ({ kind, line, fields });
const input = (reports: ShimReport[]) => ({
  argv: ["/e/bin/berth-shim", "run", "--", "true"],
  reports,
  hostPid: 77,
  snapshot: { lower: ["/l"], upper: "/u", work: "/w", merged: M },
  cgroup: { version: 1 as const, dirs: [], writes: [], notes: [] },
  hostname: "abc",
});
const kernelRoot = rep("mounted", 900, "11", "10", M, "rw,relatime", "overlay", "overlay", "rw,lowerdir=/l,upperdir=/u,workdir=/w");

describe("recipe: what the shim did itself", () => {
  it("the rootfs mounted by the shim points at shim.c; the veth steps read as ip commands, in order", () => {
    const r = buildRecipe(input([
      rep("rootfs", 1012, M, "lowerdir=/l,upperdir=/u,workdir=/w"),
      rep("netlink", 470, "ip link add veth1234567 master berth0 up type veth peer name eth0 address 02:42:ac:11:00:02 netns 77"),
      rep("mount", 383, M, M, "", "bind,rec", ""),
      rep("net", 380, "lo", "up"),
      rep("netlink", 540, "ip addr add 172.17.0.2/16 brd + dev eth0; ip link set eth0 up"),
      rep("netlink", 560, "ip route add default via 172.17.0.1 dev eth0"),
      kernelRoot,
    ]));
    const rootfs = r.trace.find((t) => t.kind === "rootfs")!;
    expect(rootfs.source).toEqual({ file: "packages/engine/src/runtime/shim.c", line: 1012 });
    expect(r.trace.filter((t) => t.kind === "net").map((t) => [t.text, t.source.line])).toEqual([
      ["ip link add veth1234567 master berth0 up type veth peer name eth0 address 02:42:ac:11:00:02 netns 77", 470],
      ["ip link set lo up", 380],
      ["ip addr add 172.17.0.2/16 brd + dev eth0; ip link set eth0 up", 540],
      ["ip route add default via 172.17.0.1 dev eth0", 560],
    ]);
    expect(r.mounts.map((m) => m.destination)).toEqual(["/"]); // the overlay is the root, listed once
  });

  it("an overlay the engine mounted (no rootfs report) points at mountSnapshot", () => {
    const r = buildRecipe(input([rep("mount", 383, M, M, "", "bind,rec", ""), kernelRoot]));
    expect(r.trace.find((t) => t.kind === "rootfs")!.source).toEqual({ file: expect.stringContaining("snapshots/overlay.ts"), find: "export function mountSnapshot" });
  });
});
