// Picks a sandbox driver by name: BERTH_SANDBOX_DRIVER=namespaces|uml|qemu for the orchestrator,
// `labkit test --driver <name>` for labkit. Each driver registers a maker here; a maker takes the
// options every caller may pass and ignores what its driver has no use for (said in `unsupported`).
import type { SandboxDriver } from "./driver.js";
import { createNamespacesDriver, type NamespacesDriverOptions } from "./namespaces/driver.js";
import { DEFAULT_UPLINK_NET } from "./namespaces/network.js";
import { createUmlDriver } from "./uml/driver.js";
import { createQemuDriver, type QemuDriverOptions } from "./qemu/driver.js";

/**
 * What a caller may ask of any driver: the namespaces driver's options (the widest set), and the
 * qemu driver's accelerator and guest kernel.
 */
export type SandboxDriverOptions = NamespacesDriverOptions & Pick<QemuDriverOptions, "accel" | "kernelPackage">;

export interface SandboxDriverMaker {
  make(opts: SandboxDriverOptions): SandboxDriver;
  /** Options this driver does not implement: a caller that sets one is told, not ignored silently. */
  unsupported?: (keyof SandboxDriverOptions)[];
  /** One line for `--help` and error messages. */
  summary: string;
}

const makers = new Map<string, SandboxDriverMaker>();

export function registerSandboxDriver(name: string, maker: SandboxDriverMaker): void {
  makers.set(name, maker);
}

export function sandboxDriverNames(): string[] {
  return [...makers.keys()];
}

export const DEFAULT_SANDBOX_DRIVER = "namespaces";

/** The driver name from the environment (BERTH_SANDBOX_DRIVER), default namespaces. */
export function sandboxDriverFromEnv(env: Record<string, string | undefined>): string {
  return env.BERTH_SANDBOX_DRIVER?.trim() || DEFAULT_SANDBOX_DRIVER;
}

/** What sandboxOptionsFromEnv sets. */
export type SandboxEnvOptions = Pick<SandboxDriverOptions, "stateDir" | "uplinkNet" | "accel" | "kernelPackage">;

/**
 * The driver options a program's environment sets, for its entry point to pass on (the drivers
 * themselves never read the environment): BERTH_STATE_DIR (default /var/lib/berth),
 * BERTH_UPLINK_SUBNET and BERTH_NET_DIR (the uplinks: 10.213.0.0/16, /run/berth-net),
 * BERTH_QEMU_ACCEL (kvm, tcg or auto), BERTH_QEMU_KERNEL_PACKAGE.
 */
export function sandboxOptionsFromEnv(env: Record<string, string | undefined>): SandboxEnvOptions {
  const accel = env.BERTH_QEMU_ACCEL?.trim() || undefined;
  if (accel !== undefined && accel !== "kvm" && accel !== "tcg" && accel !== "auto") throw new Error(`BERTH_QEMU_ACCEL=${accel}: want kvm, tcg or auto`);
  const subnet = env.BERTH_UPLINK_SUBNET?.trim();
  const netDir = env.BERTH_NET_DIR?.trim();
  return {
    ...(env.BERTH_STATE_DIR ? { stateDir: env.BERTH_STATE_DIR } : {}),
    ...(subnet || netDir ? { uplinkNet: { subnet: subnet || DEFAULT_UPLINK_NET.subnet, netDir: netDir || DEFAULT_UPLINK_NET.netDir } } : {}),
    ...(accel ? { accel } : {}),
    ...(env.BERTH_QEMU_KERNEL_PACKAGE?.trim() ? { kernelPackage: env.BERTH_QEMU_KERNEL_PACKAGE.trim() } : {}),
  };
}

/**
 * Makes the named driver. An unknown name throws with the list of known ones; options the driver
 * does not implement are passed to `onWarning` (e.g. the lab registry with the uml driver).
 */
export function createSandboxDriver(name: string, opts: SandboxDriverOptions = {}, onWarning?: (line: string) => void): SandboxDriver {
  const maker = makers.get(name);
  if (!maker) throw new Error(`unknown sandbox driver ${JSON.stringify(name)}: use one of ${sandboxDriverNames().join(", ")} (BERTH_SANDBOX_DRIVER)`);
  for (const key of maker.unsupported ?? []) {
    if (opts[key] !== undefined) onWarning?.(`sandbox: the ${name} driver has no ${key} yet: sandboxes go without it`);
  }
  return maker.make(opts);
}

registerSandboxDriver("namespaces", {
  summary: "Linux namespaces and cgroups on the host kernel (runc): fastest, the default",
  make: (opts) => createNamespacesDriver(opts),
});

registerSandboxDriver("uml", {
  summary: "a User-mode Linux guest per learner: a kernel of its own, cgroup v2 inside whatever the host runs",
  make: (opts) => createUmlDriver({ stateDir: opts.stateDir, agentTimeoutMs: opts.agentTimeoutMs, engine: opts.engine, egressAllow: opts.egressAllow, uplinkNet: opts.uplinkNet, registryUpstream: opts.registryUpstream, registryQuota: opts.registryQuota }),
});

registerSandboxDriver("qemu", {
  summary: "a QEMU VM per learner (KVM; TCG without it, slow): a kernel of its own behind the hypervisor, the lab registry but no network out yet",
  unsupported: ["uplink", "egressAllow", "uplinkNet"],
  make: (opts) => createQemuDriver({ stateDir: opts.stateDir, agentTimeoutMs: opts.agentTimeoutMs, engine: opts.engine, registryUpstream: opts.registryUpstream, registryQuota: opts.registryQuota, accel: opts.accel, kernelPackage: opts.kernelPackage }),
});
