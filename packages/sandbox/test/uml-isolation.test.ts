// Isolation between uml sandboxes, and from the host: the shared suite (isolation-suite.ts) with a
// guest kernel each. The guest process's own confinement on the host is in uml.test.ts.
import { vi } from "vitest";
import { createUmlDriver } from "../src/index.js";
import { isolationTests } from "./isolation-suite.js";

vi.setConfig({ testTimeout: 300_000, hookTimeout: 600_000 });

isolationTests({ name: "uml", makeDriver: () => createUmlDriver(), kind: "vm", timeScale: 4, disks: /^ubd[a-z]$/ });
