// Host binaries a sandbox borrows read-only: the docker CLI (the learner's `docker`) and busybox
// (the engine builds its busybox image from it). Only statically linked ones qualify: the sandbox's
// root filesystem is Debian's, not the host's, so a dynamically linked host binary could find other
// (or no) libraries there. Missing or dynamic: the sandbox goes without, and the driver says why.
import { closeSync, existsSync, openSync, readSync } from "node:fs";

export interface HostTools {
  /** Host path of a static docker CLI, bound at /usr/local/bin/docker. */
  dockerCli?: string;
  /** Host path of a static busybox, bound at /bin/busybox. */
  busybox?: string;
}

export const DOCKER_CLI_CANDIDATES = ["/usr/local/bin/docker"];
export const BUSYBOX_CANDIDATES = ["/bin/busybox", "/usr/bin/busybox"];

export function findHostTools(log?: (line: string) => void): HostTools {
  const pick = (what: string, candidates: string[]) => {
    for (const c of candidates) if (existsSync(c) && isStaticElf(c)) return c;
    log?.(`sandbox: no static ${what} among ${candidates.join(", ")}; sandboxes go without it`);
    return undefined;
  };
  return { dockerCli: pick("docker CLI", DOCKER_CLI_CANDIDATES), busybox: pick("busybox", BUSYBOX_CANDIDATES) };
}

/** True for a 64-bit little-endian ELF executable with no PT_INTERP (no dynamic loader). */
export function isStaticElf(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(64);
    if (readSync(fd, head, 0, 64, 0) < 64) return false;
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) return false;
    const phoff = Number(head.readBigUInt64LE(0x20));
    const phentsize = head.readUInt16LE(0x36);
    const phnum = head.readUInt16LE(0x38);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) if (table.readUInt32LE(i * phentsize) === 3 /* PT_INTERP */) return false;
    return true;
  } finally {
    closeSync(fd);
  }
}
