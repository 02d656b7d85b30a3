// Isolation between qemu sandboxes, and from the host: the shared suite (isolation-suite.ts) with a
// VM each (under TCG here: slow, minutes). QEMU's own confinement on the host, and the guest's only
// way out (its link's registry channel), are in qemu.test.ts and unit/qemu-vmmux.test.ts.
import { vi } from "vitest";
import { createQemuDriver } from "../src/index.js";
import { isolationTests } from "./isolation-suite.js";
import { requireQemu } from "./qemu-fixture.js";

vi.setConfig({ testTimeout: 600_000, hookTimeout: 900_000 });

requireQemu();
// Two guests of 256 MiB (a kernel of their own each): what is checked does not depend on the size.
isolationTests({ name: "qemu", makeDriver: () => createQemuDriver(), kind: "vm", disks: /^vd[a-z]$/, limits: { memoryBytes: 256 << 20, diskBytes: 512 << 20 } });
