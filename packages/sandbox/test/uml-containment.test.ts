// Containment in uml sandboxes: the shared suite (containment-suite.ts). The limits are the guest's
// own cgroup v2 (pids.max, memory.max on the learner's cgroup); the host stays responsive because
// the guest process is capped by its host cgroup.
import { vi } from "vitest";
import { createUmlDriver } from "../src/index.js";
import { containmentTests } from "./containment-suite.js";

vi.setConfig({ testTimeout: 600_000, hookTimeout: 600_000 });

containmentTests({ name: "uml", makeDriver: () => createUmlDriver(), kind: "vm", timeScale: 6 });
