// Runners for testLab, kept out of the main entry point: they start processes and open sockets,
// which the web app (a user of renderLab) has no business importing.
export { createHostNamespacesRunner, type DisposableRunner } from "./host-namespaces.js";
export { createSandboxRunner, namespacesDriver, sandboxDriver } from "./sandbox.js";
