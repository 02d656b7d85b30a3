// The few runc commands the driver uses, with its state kept under the driver's own --root so that
// Berth's sandboxes never mix with a docker or podman on the same host.
import { spawn } from "node:child_process";
import { chmod, rename } from "node:fs/promises";
import { createServer } from "node:net";

export interface RuncState {
  id: string;
  pid: number;
  status: "creating" | "created" | "running" | "paused" | "stopped";
  created: string;
}

export class Runc {
  constructor(readonly root: string, readonly binary = "runc") {}

  /**
   * Runs runc; resolves with stdout, rejects with stderr in the message. extraFds become fds 3, 4,
   * ... of runc (pass `--preserve-fds <n>` to hand them on to the container's process).
   */
  run(args: string[], opts: { stdio?: [number | "ignore", number | "pipe", number | "pipe"]; detached?: boolean; extraFds?: number[] } = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.binary, ["--root", this.root, ...args], {
        stdio: [...(opts.stdio ?? ["ignore", "pipe", "pipe"]), ...(opts.extraFds ?? [])],
        detached: opts.detached ?? false,
      });
      let out = "";
      let err = "";
      child.stdout?.on("data", (b: Buffer) => (out += b.toString()));
      child.stderr?.on("data", (b: Buffer) => (err += b.toString()));
      child.on("error", (e) => reject(new Error(`could not run ${this.binary} (${e.message}); install it with: apt-get install runc`)));
      child.on("close", (code) => {
        if (code === 0) resolve(out);
        else reject(new Error(`runc ${args.join(" ")} failed (exit ${code}): ${err.trim() || out.trim()}`));
      });
    });
  }

  async state(id: string): Promise<RuncState | undefined> {
    try {
      return JSON.parse(await this.run(["state", id])) as RuncState;
    } catch (err) {
      if (/does not exist|not found|no such/i.test((err as Error).message)) return undefined;
      throw err;
    }
  }
}

/**
 * A listening UNIX socket made by the host for a sandbox's agent, to be inherited by it (runc
 * --preserve-fds). The host binds it where the sandbox has no view (so nothing inside can replace,
 * symlink or squat the path the host dials), and the agent accepts on the fd it inherits; the
 * socket lives as long as the agent, so it survives a restart of the orchestrator.
 *
 * Node has no socket()/bind() of its own, so a net.Server binds it, under a temporary name: closing
 * the server closes our copy of the fd, and libuv then unlinks the name it bound, so publish()
 * first renames the socket to its real path.
 */
export class AgentListener {
  private constructor(
    private readonly server: import("node:net").Server,
    private readonly tmpPath: string,
    readonly path: string,
    /** Our copy of the listening fd (hand it to runc as an extra fd). */
    readonly fd: number,
  ) {}

  static async bind(path: string): Promise<AgentListener> {
    const tmpPath = `${path}.new`;
    // Nothing is ever accepted here: the orchestrator's copy is closed before anyone dials.
    const server = createServer((conn) => conn.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(tmpPath, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (!(typeof fd === "number" && fd > 2)) {
      server.close();
      throw new Error(`could not get the file descriptor of the agent's socket ${tmpPath} (node ${process.version}); Berth needs node 20 or later on Linux`);
    }
    await chmod(tmpPath, 0o600);
    return new AgentListener(server, tmpPath, path, fd);
  }

  /** The agent holds the socket now: give it its real name (what connect() dials). */
  async publish(): Promise<void> {
    await rename(this.tmpPath, this.path);
  }

  /** Closes our copy (the agent's stays open). Before publish(): the socket is gone. */
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
