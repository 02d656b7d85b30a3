// A throw-away PostgreSQL server: initdb into a temporary directory, started on a free port,
// removed by stop(). Used by the tests (the same code runs against a real server, as in
// production) and by `scripts/db.ts new-migration`, whose PostgreSQL diff needs a server for its
// shadow database. Needs Debian's postgresql package (or `binDir`, which callers take from PG_BIN).
//
// initdb refuses to run as root, so when we are root the server runs as the `postgres` user.
import { execFile } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface TempPostgres {
  /** postgresql://berth@127.0.0.1:<port>/berth — a superuser, trust authentication. */
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function startTempPostgres(opts: { binDir?: string } = {}): Promise<TempPostgres> {
  const bin = opts.binDir || postgresBinDir();
  const owner = process.getuid?.() === 0 ? systemUser("postgres") : undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-pg-"));
  if (owner) fs.chownSync(dir, owner.uid, owner.gid);
  const data = path.join(dir, "data");
  const as = { ...(owner ?? {}), cwd: dir, env: { ...process.env, LC_ALL: "C" } };
  const port = await freePort();
  const stop = async () => {
    await run(path.join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"], as).catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await run(path.join(bin, "initdb"), ["-D", data, "-U", "berth", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"], as);
    // Durability settings off: a test database that is thrown away needs speed, not fsync.
    const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
    await run(path.join(bin, "pg_ctl"), ["-D", data, "-o", options, "-l", path.join(dir, "server.log"), "-w", "-t", "30", "start"], as);
    await run(path.join(bin, "createdb"), ["-h", "127.0.0.1", "-p", String(port), "-U", "berth", "berth"], as);
  } catch (err) {
    const logFile = path.join(dir, "server.log");
    const serverLog = fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8") : "";
    await stop();
    throw new Error(`Could not start a temporary PostgreSQL with ${bin}: ${(err as Error).message}\n${serverLog}`, { cause: err });
  }
  return { url: `postgresql://berth@127.0.0.1:${port}/berth`, port, stop };
}

/** The newest /usr/lib/postgresql/<version>/bin (Debian's layout). */
function postgresBinDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  const bin = versions.map((v) => path.join(root, v, "bin")).find((b) => fs.existsSync(path.join(b, "initdb")));
  if (!bin) throw new Error("PostgreSQL is not installed: run `apt-get install -y postgresql` (or set PG_BIN to the directory holding initdb and pg_ctl)");
  return bin;
}

function systemUser(name: string): { uid: number; gid: number } {
  const line = fs.readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`initdb cannot run as root and there is no "${name}" user to run it as (it comes with the postgresql package)`);
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
