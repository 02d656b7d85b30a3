// A real image registry for Berth: Debian's `docker-registry` (the CNCF distribution registry v2,
// binary /usr/bin/docker-registry), started as a child process with a config written here.
//
//   const reg = await startRegistry({ root: "/var/lib/berth/registry" });
//   // docker push 127.0.0.1:<reg.port>/library/busybox ... ; engine option registryMirror: reg.url
//   await reg.stop();
//
// Storage is the filesystem under `root/data` (so images survive restarts), deletes are enabled
// (a teacher can remove a tag through the API), and it listens on 127.0.0.1 with a free port
// unless told otherwise: plain HTTP, which Docker accepts only for loopback and "insecure"
// registries, so it must never listen beyond this machine without TLS in front.
//
// CLI: `tsx packages/registry/src/registry.ts [--root DIR] [--port N] [--host H]` runs it in the
// foreground.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REGISTRY_BINARY = "/usr/bin/docker-registry";

export interface RegistryOptions {
  /** State directory: `data/` (the blobs and manifests), `config-<port>.yml`, `registry.log`. */
  root: string;
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** Port; default 0 = a free port chosen now. */
  port?: number;
  /** The registry binary; default /usr/bin/docker-registry (Debian's docker-registry package). */
  binary?: string;
  /** How long to wait for the registry to answer `GET /v2/` (ms). */
  startTimeoutMs?: number;
}

export interface Registry {
  /** `http://127.0.0.1:<port>`: what an engine's registryMirror takes. */
  url: string;
  /** `127.0.0.1:<port>`: the registry part of an image name (`docker push 127.0.0.1:5000/x`). */
  address: string;
  host: string;
  port: number;
  root: string;
  pid: number;
  stop(): Promise<void>;
}

/** A free TCP port on host, found by binding port 0 and closing again. */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** The registry's config: filesystem storage, deletes on, no auth, listening on host:port only. */
export function registryConfig(opts: { dataDir: string; host: string; port: number }): string {
  // YAML written by hand (no dependency): every value is a plain scalar, quoted where it is a path.
  return [
    "version: 0.1",
    "log:",
    "  level: warn",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${JSON.stringify(opts.dataDir)}`,
    "  delete:",
    "    enabled: true",
    "  cache:",
    "    blobdescriptor: inmemory",
    "  maintenance:",
    "    uploadpurging:",
    "      enabled: true",
    "      age: 24h",
    "      interval: 1h",
    "      dryrun: false",
    "http:",
    `  addr: ${JSON.stringify(`${opts.host}:${opts.port}`)}`,
    "  headers:",
    "    X-Content-Type-Options: [nosniff]",
    "",
  ].join("\n");
}

export async function startRegistry(opts: RegistryOptions): Promise<Registry> {
  const binary = opts.binary ?? REGISTRY_BINARY;
  if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: install Debian's docker-registry (apt-get install docker-registry)`);
  const host = opts.host ?? "127.0.0.1";
  const root = path.resolve(opts.root);
  const dataDir = path.join(root, "data");
  fs.mkdirSync(dataDir, { recursive: true });
  const logFile = path.join(root, "registry.log");

  // A free port can be taken between the probe and the registry's bind: try a few times.
  // A given port that answers already belongs to someone else: our probe would mistake it for ours.
  if (opts.port && !(await portIsFree(host, opts.port))) throw new Error(`cannot start the registry on ${host}:${opts.port}: the port is in use`);
  for (let attempt = 0; ; attempt++) {
    const port = opts.port || (await freePort(host));
    // One config file per instance (named by its port): two starts on the same root at once
    // (setup's image build and the orchestrator) must not read each other's port.
    const configFile = path.join(root, `config-${port}.yml`);
    fs.writeFileSync(configFile, registryConfig({ dataDir, host, port }));
    const log = fs.openSync(logFile, "a");
    const child = spawn(binary, ["serve", configFile], { stdio: ["ignore", log, log] });
    fs.closeSync(log);
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.once("error", () => {}); // reported through `exited` (spawn failures exit too)
    const up = await waitUntilServing(host, port, exited, opts.startTimeoutMs ?? 15_000);
    if (up === true) return handle(child, exited, { host, port, root, configFile });
    child.kill("SIGKILL");
    await exited;
    fs.rmSync(configFile, { force: true });
    const tail = readTail(logFile);
    if (up === "exited" && !opts.port && attempt < 3 && /address already in use/.test(tail)) continue;
    throw new Error(`docker-registry did not start on ${host}:${port} (${up}): ${tail || "no output"} (log: ${logFile})`);
  }
}

function handle(child: ChildProcess, exited: Promise<number | null>, where: { host: string; port: number; root: string; configFile: string }): Registry {
  const hostForUrl = where.host.includes(":") ? `[${where.host}]` : where.host;
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${hostForUrl}:${where.port}`,
    address: `${hostForUrl}:${where.port}`,
    host: where.host,
    port: where.port,
    root: where.root,
    pid: child.pid!,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return void fs.rmSync(where.configFile, { force: true });
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
        fs.rmSync(where.configFile, { force: true });
      })();
      return stopping;
    },
  };
}

async function waitUntilServing(host: string, port: number, exited: Promise<number | null>, timeoutMs: number): Promise<true | "exited" | "timeout"> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gone) return "exited";
    try {
      const res = await fetch(`http://${host.includes(":") ? `[${host}]` : host}:${port}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return true;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return gone ? "exited" : "timeout";
}

function readTail(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").trim().split("\n").slice(-5).join(" | ");
  } catch {
    return "";
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const reg = await startRegistry({ root: arg("root") ?? "/var/lib/berth/registry", host: arg("host"), port: arg("port") ? Number(arg("port")) : undefined });
  console.log(`registry: ${reg.url} (storage ${reg.root}/data, pid ${reg.pid})`);
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => void reg.stop().then(() => process.exit(0)));
}
