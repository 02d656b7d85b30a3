// The uml driver against the suite every SandboxDriver must pass. A guest traps every system call
// into its own kernel, so processes run several times slower than on the host: the suite's waits
// are stretched (timeScale) and so are vitest's limits for this file.
import { vi } from "vitest";
import { sandboxDriverConformance } from "../src/testsuite/driver-conformance.js";
import { createUmlDriver } from "../src/index.js";

vi.setConfig({ testTimeout: 300_000, hookTimeout: 600_000 });

sandboxDriverConformance({ name: "uml", makeDriver: () => createUmlDriver(), timeScale: 4 });
