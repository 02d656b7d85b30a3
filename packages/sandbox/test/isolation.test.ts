// Isolation between namespaces sandboxes, and from the host: the shared suite (isolation-suite.ts).
import { isolationTests } from "./isolation-suite.js";
import { testDriver } from "./sandbox-fixture.js";

isolationTests({ name: "namespaces", makeDriver: testDriver, kind: "namespaces" });
