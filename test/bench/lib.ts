// Shared pieces of the benchmark scripts: percentiles, a browser, and a signed-up learner.
import { chromium, type Browser, type BrowserContext } from "@playwright/test";

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

export function summary(label: string, values: number[], unit = "ms"): string {
  const f = (n: number) => n.toFixed(1);
  return `${label.padEnd(44)} n=${String(values.length).padStart(3)}  p50 ${f(percentile(values, 50))} ${unit}  p90 ${f(percentile(values, 90))} ${unit}  p99 ${f(percentile(values, 99))} ${unit}`;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.BERTH_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}

let counter = 0;
/** A new learner account, signed up inside a new browser context (which keeps its cookie). */
export async function learnerContext(browser: Browser, baseUrl: string): Promise<BrowserContext> {
  const context = await browser.newContext({ baseURL: baseUrl });
  const account = { email: `bench${Date.now()}-${counter++}@example.org`, password: "bench-password" };
  const res = await context.request.post("/api/auth/signup", { data: account });
  if (!res.ok()) throw new Error(`signup failed: ${res.status()} ${await res.text()}`);
  // Sign-up never signs in (its answer must not tell whether the email was taken).
  const signin = await context.request.post("/api/auth/signin", { data: account });
  if (!signin.ok()) throw new Error(`signin failed: ${signin.status()} ${await signin.text()}`);
  return context;
}

/** Resident memory of a process and its descendants, in KiB, from /proc. */
export async function treeRssKiB(pid: number): Promise<number> {
  const { readFileSync, readdirSync } = await import("node:fs");
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone
    }
  }
  let total = 0;
  const visit = (p: number) => {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      total += m ? Number(m[1]) : 0;
    } catch {
      // gone
    }
    for (const c of children.get(p) ?? []) visit(c);
  };
  visit(pid);
  return total;
}
