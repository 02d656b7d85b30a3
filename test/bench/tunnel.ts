// The tunnel protocol alone (the web preview's transport), without a sandbox: an AgentServer and a
// TunnelClient in this process, a TCP server on 127.0.0.1 sending N MiB. Prints wall-clock
// throughput and, steadier on a shared machine, the CPU time per MiB spent by both ends together.
//
//   tsx test/bench/tunnel.ts [MiB=256] [runs=3]
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { AgentServer } from "@berth/agent";
import { TunnelClient } from "../../apps/orchestrator/src/preview/tunnel-client.js";

const MIB = Number(process.argv[2] ?? 256);
const RUNS = Number(process.argv[3] ?? 3);
const chunk = Buffer.alloc(1024 * 1024);
const server = net.createServer((s) => {
  let sent = 0;
  const pump = () => {
    while (sent < MIB) {
      sent++;
      if (!s.write(chunk)) return void s.once("drain", pump);
    }
    s.end();
  };
  s.once("data", pump);
});
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
const port = (server.address() as net.AddressInfo).port;
const socketPath = path.join(os.tmpdir(), `berth-tunnel-bench-${process.pid}.sock`);
const agent = await AgentServer.listen({ socketPath, token: "bench" });
const client = await TunnelClient.connect({ socketPath, token: "bench" });
try {
  for (let run = 1; run <= RUNS; run++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const stream = await client.open(port);
    stream.write("go");
    let bytes = 0;
    for await (const c of stream) bytes += (c as Buffer).length;
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(c0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const mib = bytes / (1024 * 1024);
    console.log(`run ${run}: ${mib.toFixed(0)} MiB, ${(mib / seconds).toFixed(0)} MiB/s wall, ${(cpuMs / mib).toFixed(1)} ms CPU per MiB (both ends and the TCP server)`);
  }
} finally {
  client.close();
  await agent.dispose();
  server.close();
}
