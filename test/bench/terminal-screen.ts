// What the server's kept screen (a headless xterm.js per terminal, apps/orchestrator/src/terminals/
// terminal-screen.ts) costs: CPU per MiB of output for typical kinds of output, the memory of a
// terminal at rest and with its scrollback full, and how long a snapshot (what a reloading viewer
// gets) takes to make. No sandbox: the screen is fed recorded-like output in this process.
//
//   tsx test/bench/terminal-screen.ts
import { TerminalScreen } from "../../apps/orchestrator/src/terminals/terminal-screen.js";
import { percentile } from "./lib.js";

const MiB = 1024 * 1024;

/** Output shaped like what learners' shells print. */
function sample(kind: string, bytes: number): Buffer {
  const parts: string[] = [];
  let size = 0;
  let i = 0;
  while (size < bytes) {
    let line: string;
    if (kind === "plain") line = `drwxr-xr-x  2 root root  4096 Dec  5 02:17 directory-number-${i}\r\n`;
    else if (kind === "colour") line = `\x1b[01;34mbin\x1b[0m  \x1b[01;36mlib\x1b[0m  \x1b[32mrun-${i}.sh\x1b[0m  \x1b[01;31marchive.tar.gz\x1b[0m\r\n`;
    else if (kind === "utf8") line = `✓ step ${i}: Größe → 42 MiB · 日本語のテキスト — done\r\n`;
    else line = `\x1b[H\x1b[2J${"progress ".repeat(8)}${i}\r\x1b[K[${"#".repeat(i % 60)}]`; // full-screen redraws
    parts.push(line);
    size += Buffer.byteLength(line);
    i++;
  }
  return Buffer.from(parts.join(""), "utf8");
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function feed(screen: TerminalScreen, data: Buffer): Promise<void> {
  // In chunks as the agent batches them.
  for (let off = 0; off < data.length; off += 16 * 1024) screen.write(data.subarray(off, off + 16 * 1024));
  await screen.settled();
}

const lines: string[] = [];
for (const kind of ["plain", "colour", "utf8", "redraw"]) {
  const data = sample(kind, 8 * MiB);
  const samples: number[] = [];
  for (let run = 0; run < 5; run++) {
    const screen = new TerminalScreen({ cols: 120, rows: 30 });
    const before = cpuMs();
    await feed(screen, data);
    samples.push((cpuMs() - before) / (data.length / MiB));
    screen.dispose();
  }
  lines.push(`parse ${kind.padEnd(7)} CPU per MiB of output   p50 ${percentile(samples, 50).toFixed(1).padStart(6)} ms  p90 ${percentile(samples, 90).toFixed(1).padStart(6)} ms  (≈ ${(1000 / percentile(samples, 50)).toFixed(0)} MiB per CPU-second)`);
}

// Memory: many terminals, so one terminal's share stands out from the process's noise.
const COUNT = 60;
const heap = () => {
  global.gc?.();
  return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
};
const base = heap();
const screens = Array.from({ length: COUNT }, () => new TerminalScreen({ cols: 120, rows: 30 }));
const prompt = Buffer.from("root@berth-1a2b3c:~# ", "utf8");
for (const s of screens) s.write(prompt);
await Promise.all(screens.map((s) => s.settled()));
const atRest = (heap() - base) / COUNT;
const full = sample("colour", 400 * 1024); // more than 1000 lines of 120 columns
for (const s of screens) await feed(s, full);
const withScrollback = (heap() - base) / COUNT;
const snapMs: number[] = [];
let snapBytes = 0;
for (const s of screens.slice(0, 20)) {
  const t = performance.now();
  snapBytes = s.snapshotNow().length;
  snapMs.push(performance.now() - t);
}
for (const s of screens) s.dispose();

lines.push(`memory per terminal, a prompt on screen       ${(atRest / 1024).toFixed(0)} KiB${global.gc ? "" : "  (run with node --expose-gc for steadier figures)"}`);
lines.push(`memory per terminal, 1000 lines of scrollback ${(withScrollback / 1024).toFixed(0)} KiB (120 columns)`);
lines.push(`snapshot of a full screen and scrollback      p50 ${percentile(snapMs, 50).toFixed(1)} ms  p90 ${percentile(snapMs, 90).toFixed(1)} ms  (${(snapBytes / 1024).toFixed(0)} KiB to send)`);
console.log(lines.join("\n"));
