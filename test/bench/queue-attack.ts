// The queue attack (issue: "Unbounded queues"): a learner stops their sandbox's agent from inside
// (`kill -STOP $PPID` in their shell) and then types, or pastes, as fast as the browser can send.
// Every keystroke goes the orchestrator's way to the agent: TerminalSession.input → AgentClient
// .sendInput → the agent's websocket. This runs that path in this process against a real sandbox
// and prints this process's RSS (the orchestrator's, on that path) and what waits in the websocket.
//
//   tsx test/bench/queue-attack.ts [MiB=205]
//
// Run it from an older checkout (git worktree add <dir> <commit>) for the figure before the caps.
import { readFileSync } from "node:fs";
import { AgentClient, createNamespacesDriver } from "@berth/sandbox";

const MIB = Number(process.argv[2] ?? 205);
const driver = createNamespacesDriver({ engine: false, uplink: false });
const id = `b-qa-${process.pid.toString(36)}`;
const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

await driver.prepare();
await driver.create({ id, hostname: "queue-attack" });
let agentPid = 0;
try {
  const client = await AgentClient.connect(await driver.connect(id));
  const info = (await driver.list()).find((s) => s.id === id)!;
  const children = readFileSync(`/proc/${info.pid}/task/${info.pid}/children`, "utf8").trim().split(/\s+/).map(Number);
  agentPid = children.find((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("/opt/berth/agent.mjs"))!;
  const pty = await client.request({ op: "pty.start", key: "attack", cols: 80, rows: 24 });
  let seen = "";
  client.onOutput((h, b) => h === pty.handle && (seen += b.toString("latin1")));
  // The learner's own shell stops the agent: its parent.
  client.sendInput(pty.handle, Buffer.from("echo stopping; sleep 0.5; kill -STOP $PPID\n"));
  for (let i = 0; i < 200 && !/\r\nstopping/.test(seen); i++) await new Promise((r) => setTimeout(r, 25));
  await new Promise((r) => setTimeout(r, 1000));
  if (readFileSync(`/proc/${agentPid}/stat`, "utf8").split(") ")[1]![0] !== "T") throw new Error("the agent did not stop");

  global.gc?.();
  const rssBefore = process.memoryUsage.rss();
  const ws = (client as unknown as { ws: { bufferedAmount: number } }).ws;
  const chunk = Buffer.alloc(64 * 1024, 0x78);
  let peakRss = rssBefore;
  let peakQueued = 0;
  let dropped = 0;
  const t0 = performance.now();
  for (let sent = 0; sent < MIB * 1024 * 1024; sent += chunk.length) {
    // (older AgentClients return nothing: then nothing was ever dropped)
    const r = client.sendInput(pty.handle, chunk) as { sent: boolean } | undefined;
    if (r && !r.sent) dropped += chunk.length;
    if (sent % (1024 * 1024) === 0) {
      peakQueued = Math.max(peakQueued, ws.bufferedAmount);
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      // As socket.io would deliver them: one message at a time, the event loop turning in between.
      await new Promise((r) => setImmediate(r));
    }
  }
  await new Promise((r) => setTimeout(r, 1000));
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  peakQueued = Math.max(peakQueued, ws.bufferedAmount);
  console.log(`typed ${MIB} MiB into a stopped agent in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`orchestrator RSS: ${mib(rssBefore)} before, ${mib(peakRss)} at peak (+${mib(peakRss - rssBefore)})`);
  console.log(`queued towards the agent at peak: ${mib(peakQueued)}; dropped and reported: ${mib(dropped)}`);
  client.close();
} finally {
  if (agentPid) process.kill(agentPid, "SIGCONT");
  await driver.destroy(id);
  await driver.close();
}
