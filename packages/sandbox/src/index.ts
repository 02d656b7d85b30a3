// @berth/sandbox: the sandbox driver interface, the drivers (namespaces, uml, qemu), and the agent client.
export * from "./driver.js";
export { AgentClient, AgentRequestError, ThrottledWarnings, dialAgent, stretchedTimeout, type AgentClientOptions, type DialOptions, type InputResult } from "./agent-client.js";
export { NamespacesDriver, createNamespacesDriver, type NamespacesDriverOptions } from "./namespaces/driver.js";
export { UmlDriver, createUmlDriver, type UmlDriverOptions } from "./uml/driver.js";
export { QemuDriver, createQemuDriver, type QemuDriverOptions, type Accelerator } from "./qemu/driver.js";
export { createSandboxDriver, registerSandboxDriver, sandboxDriverNames, sandboxDriverFromEnv, sandboxOptionsFromEnv, type SandboxEnvOptions, DEFAULT_SANDBOX_DRIVER, type SandboxDriverMaker, type SandboxDriverOptions } from "./factory.js";
export { detectCgroupVersion, type CgroupVersion } from "./namespaces/cgroups.js";
