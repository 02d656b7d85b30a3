// The namespaces driver against the suite every SandboxDriver must pass.
import { sandboxDriverConformance } from "../src/testsuite/driver-conformance.js";
import { testDriver } from "./sandbox-fixture.js";

sandboxDriverConformance({ name: "namespaces", makeDriver: testDriver });
