// The few runc commands the driver uses, with its state kept under the driver's own --root so that
// Berth's sandboxes never mix with a docker or podman on the same host.
import { spawn } from "node:child_process";

export interface RuncState {
  id: string;
  pid: number;
  status: "creating" | "created" | "running" | "paused" | "stopped";
  created: string;
}

export class Runc {
  constructor(readonly root: string, readonly binary = "runc") {}

  /** Runs runc; resolves with stdout, rejects with stderr in the message. */
  run(args: string[], opts: { stdio?: [number | "ignore", number | "pipe", number | "pipe"]; detached?: boolean } = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.binary, ["--root", this.root, ...args], {
        stdio: opts.stdio ?? ["ignore", "pipe", "pipe"],
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
