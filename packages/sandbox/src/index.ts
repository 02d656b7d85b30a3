// @berth/sandbox: the sandbox driver interface, the namespaces driver, and the agent client.
export * from "./driver.js";
export { AgentClient, AgentRequestError, ThrottledWarnings, dialAgent, type AgentClientOptions, type DialOptions, type InputResult } from "./agent-client.js";
export { NamespacesDriver, createNamespacesDriver, type NamespacesDriverOptions } from "./namespaces/driver.js";
export { detectCgroupVersion, type CgroupVersion } from "./namespaces/cgroups.js";
