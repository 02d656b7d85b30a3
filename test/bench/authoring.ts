// Authoring in the browser: how long the editor waits, after the author pauses, for the server's
// answer (save + labkit lint + the learner's view), for the workshop's longest lab and for a small
// one; labkit's part of it in process; and how long "Prove it" and Publish take for a one-check lab
// (a fresh sandbox each time), with the time to its first streamed run.
//
// Round trips are measured by curl on the host (`-w %{time_total}`), so the client does not share
// the orchestrator's thread.
//
//   tsx test/bench/authoring.ts [saves=30] [proofs=3]     (root: real sandboxes)
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createNamespacesDriver } from "@berth/sandbox";
import { startOrchestrator } from "../../apps/orchestrator/src/server.js";
import { lintDraft } from "../../apps/orchestrator/src/authoring/folder.js";
import { summary } from "./lib.js";

const SAVES = Number(process.argv[2] ?? 30);
const PROOFS = Number(process.argv[3] ?? 3);
const root = path.resolve(import.meta.dirname, "../..");
const instance = `abench${process.pid}`;
const dataDir = mkdtempSync(path.join(os.tmpdir(), "berth-abench-"));
process.env.BERTH_DATA_DIR = dataDir;
process.env.LOG_LEVEL ??= "warn";
const run = promisify(execFile);

const SMALL = (id: string, n: number) => `---
id: ${id}
title: Small ${n}
summary: One check.
duration: 5m
difficulty: beginner
---

Intro ${n}.

## Greet {#greet}

Write hello into /root/greeting.

\`\`\`check id=greeting title="Greeting"
grep -qx hello /root/greeting
\`\`\`

\`\`\`solution
echo hello > /root/greeting
\`\`\`
`;

async function main(): Promise<void> {
  const berth = await startOrchestrator({
    port: 0, host: "127.0.0.1", serveWeb: false, warmPoolSize: 0, instance,
    labSecretFile: path.join(dataDir, "lab-variables.key"), registry: { enabled: false, root: dataDir, port: 0 },
  });
  try {
    const email = `bench-author-${process.pid}@example.org`;
    const account = { email, password: "bench author password" };
    await fetch(`${berth.url}/api/auth/signup`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(account) });
    await berth.db.user.update({ where: { email }, data: { role: "instructor" } });
    const signin = await fetch(`${berth.url}/api/auth/signin`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(account) });
    const cookie = signin.headers.get("set-cookie")!.split(";")[0]!;
    const post = (url: string, body?: unknown) =>
      fetch(berth.url + url, { method: "POST", headers: { cookie, ...(body ? { "content-type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined });

    // The longest lab of the workshop, as a draft of its own id.
    const longest = ["cgroups-by-hand", "inside-the-engine"].map((id) => ({ id, md: readFileSync(path.join(root, "labs", id, "lab.md"), "utf8") })).sort((a, b) => b.md.length - a.md.length)[0]!;
    const bigId = "bench-big";
    const bigMd = longest.md.replace(/^id:.*$/m, `id: ${bigId}`);
    await post("/api/authoring/labs", { id: bigId });
    await post("/api/authoring/labs", { id: "bench-small" });

    const curlSave = async (labId: string, markdown: string): Promise<number> => {
      const file = path.join(dataDir, "body.json");
      writeFileSync(file, JSON.stringify({ markdown }));
      const { stdout } = await run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "-X", "PUT", "-H", `cookie: ${cookie}`, "-H", "content-type: application/json", "--data-binary", `@${file}`, `${berth.url}/api/authoring/labs/${labId}`]);
      const [code, secs] = stdout.trim().split(" ");
      if (code !== "200") throw new Error(`save answered ${code}`);
      return Number(secs) * 1000;
    };
    const times = { big: [] as number[], small: [] as number[], lintBig: [] as number[] };
    for (let i = 0; i < SAVES; i++) {
      // A changed character each time, as typing makes.
      times.big.push(await curlSave(bigId, `${bigMd}\n<!-- ${i} -->\n`));
      times.small.push(await curlSave("bench-small", SMALL("bench-small", i)));
      const t0 = performance.now();
      lintDraft({ labId: bigId, markdown: `${bigMd}\n<!-- ${i} -->\n`, assets: [] }, () => true);
      times.lintBig.push(performance.now() - t0);
    }
    console.log(`save round trip: PUT lab.md → lint + learner's view back (curl), ${os.loadavg()[0]!.toFixed(1)} load`);
    console.log(summary(`  ${longest.id} (${(bigMd.length / 1024).toFixed(0)} KiB)`, times.big));
    console.log(summary("  a one-step lab", times.small));
    console.log(summary(`  of which labkit lint + render (${longest.id})`, times.lintBig));

    const proofs: number[] = [];
    const firstRun: number[] = [];
    const publishes: number[] = [];
    for (let i = 0; i < PROOFS; i++) {
      await post("/api/authoring/labs", { id: `bench-proof-${i}` });
      const t0 = performance.now();
      const res = await post(`/api/authoring/labs/bench-proof-${i}/prove`);
      const reader = res.body!.getReader();
      let text = "";
      let first = 0;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString("utf8");
        if (!first && text.includes('"kind":"step"')) first = performance.now() - t0;
      }
      proofs.push(performance.now() - t0);
      firstRun.push(first);
      if (!text.includes('"publishable":true')) throw new Error(`proof ${i} did not pass:\n${text}`);
      const p0 = performance.now();
      const pub = await post(`/api/authoring/labs/bench-proof-${i}/publish`);
      if (!pub.ok) throw new Error(`publish answered ${pub.status}`);
      publishes.push(performance.now() - p0);
    }
    console.log("Prove it (a fresh sandbox, the starter lab: one check before, its solution, after):");
    console.log(summary("  first run streamed", firstRun));
    console.log(summary("  whole proof", proofs));
    console.log(summary("  publish", publishes));
  } finally {
    await berth.close();
    const driver = createNamespacesDriver();
    for (const s of await driver.list()) if (s.id.startsWith(`${instance}-`)) await driver.destroy(s.id);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
