/**
 * debian:bookworm, built from Debian's archive with mmdebstrap (minbase variant: apt, bash,
 * coreutils, nothing else) instead of pulled from a registry. Takes about 15-30 s once; the
 * engine starts it in the background at first start, and a `docker pull`/`run` of the image
 * waits for it, streaming the build's progress as pull progress.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { ImageStore } from "./store";

export const DEBIAN_REFERENCES = ["debian:bookworm", "debian:12"];

const running = new Set<ChildProcess>();

/** Stop builds in flight (engine shutdown): mmdebstrap must not outlive the engine. */
export function cancelDebianBuilds(): void {
  for (const c of running) c.kill("SIGTERM");
}

/** Build (once) and tag debian:bookworm; `progress` gets human-readable lines. */
export function buildDebianImage(store: ImageStore, progress: (line: string) => void = () => {}): Promise<string> {
  const existing = store.resolve("debian:bookworm");
  if (existing) return Promise.resolve(existing.id);
  const dir = path.join(store.root, "tmp", `debian-${process.pid}-${Date.now()}`);
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  return new Promise((resolve, reject) => {
    const child = spawn("mmdebstrap", ["--variant=minbase", "--mode=root", "--format=directory", "bookworm", dir], { stdio: ["ignore", "pipe", "pipe"] });
    running.add(child);
    let tail = "";
    const onLine = (chunk: Buffer) => {
      tail = (tail + chunk.toString("utf8")).slice(-4000);
      for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) progress(line.trim());
    };
    child.stdout.on("data", onLine);
    child.stderr.on("data", onLine);
    child.on("error", (e) => reject(new Error(`mmdebstrap could not start (apt-get install mmdebstrap): ${e.message}`)));
    child.on("close", (code) => {
      running.delete(child);
      if (code !== 0) {
        fs.rmSync(dir, { recursive: true, force: true });
        return reject(new Error(`mmdebstrap failed (exit ${code}); is Debian's archive reachable? ${tail.split("\n").slice(-3).join(" ")}`));
      }
      // An image has an empty /dev: the engine gives each container its own.
      for (const e of fs.readdirSync(path.join(dir, "dev"))) fs.rmSync(path.join(dir, "dev", e), { recursive: true, force: true });
      progress("Computing the layer digest");
      store
        .addBaseImage(dir, {
          cmd: ["bash"],
          createdBy: "berth: mmdebstrap --variant=minbase bookworm",
          references: DEBIAN_REFERENCES,
        })
        .then(resolve, reject);
    });
  });
}
