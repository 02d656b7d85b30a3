// The typed messages between web, orchestrator and agent. One schema library (zod) for all of them.
export * from "./agent.js";
export * from "./browser.js";
export * from "./frames.js";
export * from "./replay.js";
export * from "./flow.js";
export * from "./tunnel.js";
export * from "./api.js";
export * from "./cohorts.js";
export * from "./capped-output.js";
export * from "./authoring.js";
export * from "./xray.js";
