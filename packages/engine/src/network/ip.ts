/**
 * iproute2 and iptables as child processes the event loop does not wait for: a container start
 * on a busy host spends tens of milliseconds per `ip`, which a synchronous call would take from
 * every other request (attach streams, logs, other starts).
 */
import { spawn } from "node:child_process";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a program to its end; a program that cannot start at all (missing) resolves with code 127. */
export function run(cmd: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (e) => resolve({ code: 127, stdout, stderr: `${cmd}: ${e.message}` }));
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** `ip -batch -`, in the engine's namespace or (pid) in a container's; throws with ip's words. */
export async function ipBatch(cmds: string[], pid?: number): Promise<void> {
  const argv = pid ? ["nsenter", `--net=/proc/${pid}/ns/net`, "ip", "-batch", "-"] : ["ip", "-batch", "-"];
  const r = await run(argv[0]!, argv.slice(1), `${cmds.join("\n")}\n`);
  if (r.code !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.trim() || `exit code ${r.code}`}`);
}

/**
 * A link's alias ("" if it has none), or undefined if there is no such link. Asked through
 * netlink (`ip -j`), not /sys/class/net: a process moved into a namespace with nsenter still sees
 * the sysfs of the namespace that mounted it.
 */
export async function linkAlias(name: string): Promise<string | undefined> {
  const r = await run("ip", ["-j", "link", "show", "dev", name]);
  if (r.code !== 0) return undefined;
  const [link] = JSON.parse(r.stdout || "[]") as { ifalias?: string }[];
  return link ? (link.ifalias ?? "") : undefined;
}

export async function setLinkAlias(name: string, alias: string): Promise<void> {
  const r = await run("ip", ["link", "set", "dev", name, "alias", alias]);
  if (r.code !== 0) throw new Error(`ip link set dev ${name} alias: ${r.stderr.trim()}`);
}

/** Delete a link if it is there (a veth usually dies with its namespace first). */
export async function deleteLink(name: string): Promise<void> {
  await run("ip", ["link", "del", name]);
}
