// Runners for testLab, kept out of the main entry point: they start processes and open sockets,
// which the web app (a user of renderLab) has no business importing. Every one is a SandboxDriver's
// sandbox: labs are proved in the kind of sandbox learners get, never in a box of labkit's own.
export { createSandboxRunner, namespacesDriver, sandboxDriver, type DisposableRunner } from "./sandbox.js";
