// Containment in qemu sandboxes: the shared suite (containment-suite.ts). The pids limit is the
// learner's cgroup in the guest; the memory limit is the VM's own memory (a hog makes the guest's
// kernel kill it, counted by stats() as oomKills and memoryLimitHits); the host stays responsive
// because QEMU is capped by its host cgroup. Two guests under TCG here: minutes.
import { vi } from "vitest";
import { createQemuDriver } from "../src/index.js";
import { containmentTests } from "./containment-suite.js";
import { requireQemu } from "./qemu-fixture.js";

vi.setConfig({ testTimeout: 600_000, hookTimeout: 900_000 });

requireQemu();
// (the suite's waits take the driver's timeScale once prepare() has picked the accelerator)
// Under TCG a hog took ~30 s to its OOM kill at load ~11 (the guest reclaims node's pages first):
// 60 s of hogs for the suite's two kills.
containmentTests({ name: "qemu", makeDriver: () => createQemuDriver(), kind: "vm", hogWindowSeconds: 60 });
