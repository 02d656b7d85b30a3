// Containment in namespaces sandboxes: the shared suite (containment-suite.ts).
import { containmentTests } from "./containment-suite.js";
import { testDriver } from "./sandbox-fixture.js";

containmentTests({ name: "namespaces", makeDriver: testDriver, kind: "namespaces" });
