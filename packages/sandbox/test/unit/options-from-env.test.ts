// The drivers never read the environment: the programs' entry points turn it into options with
// sandboxOptionsFromEnv (and the driver's name with sandboxDriverFromEnv). No root needed.
import { describe, expect, it } from "vitest";
import { DEFAULT_SANDBOX_DRIVER, sandboxDriverFromEnv, sandboxOptionsFromEnv } from "../../src/factory.js";
import { DEFAULT_UPLINK_NET, slotAddresses } from "../../src/namespaces/network.js";

describe("sandboxOptionsFromEnv", () => {
  it("sets nothing for an empty environment: every driver keeps its defaults", () => {
    expect(sandboxOptionsFromEnv({})).toEqual({});
    expect(sandboxDriverFromEnv({})).toBe(DEFAULT_SANDBOX_DRIVER);
    expect(sandboxDriverFromEnv({ BERTH_SANDBOX_DRIVER: " uml " })).toBe("uml");
  });

  it("reads the state dir, the uplinks' subnet and slot directory, and the qemu settings", () => {
    expect(
      sandboxOptionsFromEnv({ BERTH_STATE_DIR: "/srv/berth", BERTH_UPLINK_SUBNET: "10.99.0.0/20", BERTH_QEMU_ACCEL: "tcg", BERTH_QEMU_KERNEL_PACKAGE: "linux-image-6.1.0-9-amd64" }),
    ).toEqual({ stateDir: "/srv/berth", uplinkNet: { subnet: "10.99.0.0/20", netDir: DEFAULT_UPLINK_NET.netDir }, accel: "tcg", kernelPackage: "linux-image-6.1.0-9-amd64" });
    expect(sandboxOptionsFromEnv({ BERTH_NET_DIR: "/run/other-net" })).toEqual({ uplinkNet: { subnet: DEFAULT_UPLINK_NET.subnet, netDir: "/run/other-net" } });
  });

  it("refuses an accelerator qemu does not have, naming the variable", () => {
    expect(() => sandboxOptionsFromEnv({ BERTH_QEMU_ACCEL: "hvf" })).toThrow("BERTH_QEMU_ACCEL=hvf: want kvm, tcg or auto");
  });
});

describe("uplink slots in a configured subnet", () => {
  it("cuts the given subnet into /30s, and says which setting is wrong for a bad one", () => {
    expect(slotAddresses(0)).toMatchObject({ ifname: "berthv0", gateway: "10.213.0.1", address: "10.213.0.2", prefix: 30 });
    expect(slotAddresses(65, "10.99.0.0/20")).toMatchObject({ ifname: "berthv65", gateway: "10.99.1.5", address: "10.99.1.6" });
    expect(() => slotAddresses(1024, "10.99.0.0/20")).toThrow("uplink slot 1024 outside 10.99.0.0/20 (1024 slots)");
    expect(() => slotAddresses(0, "10.99.0.0/31")).toThrow(/uplink subnet "10.99.0.0\/31" \(BERTH_UPLINK_SUBNET\)/);
  });
});
