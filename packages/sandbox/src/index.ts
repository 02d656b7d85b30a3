// @berth/sandbox: the sandbox driver interface, the namespaces driver, and the agent client.
export * from "./driver.js";
export { AgentClient, AgentRequestError } from "./agent-client.js";
