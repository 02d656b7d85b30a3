// The agent's client lives with the agent (@berth/agent/client); the drivers import it from here.
export * from "@berth/agent/client";
