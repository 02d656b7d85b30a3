// What one learner's view and scripts of a lab are made with (labkit's LabContext): their variables
// and the sandbox facts. Variables come from an HMAC of (learner, lab, name) under a server secret,
// so they are stable for a learner and lab without being stored, and a learner cannot predict
// another's. The secret is generated once and kept in the data directory; losing it changes every
// learner's values (names and ports in their text), nothing else.
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { learnerContext, type Lab, type LabContext, type SandboxFacts } from "@berth/labkit";
import { detectCgroupVersion } from "@berth/sandbox";

const SECRET_BYTES = 32;

/**
 * The secret in `file`, made on first use (0600, hex). Created with O_EXCL: two orchestrators
 * starting on one data directory at once end up with the same secret, whichever wrote it.
 */
export function loadOrCreateSecret(file: string): Buffer {
  try {
    return parseSecret(readFileSync(file, "utf8"), file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  mkdirSync(path.dirname(file), { recursive: true });
  try {
    writeFileSync(file, randomBytes(SECRET_BYTES).toString("hex") + "\n", { mode: 0o600, flag: "wx" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  return parseSecret(readFileSync(file, "utf8"), file);
}

function parseSecret(text: string, file: string): Buffer {
  const hex = text.trim();
  if (!/^[0-9a-f]{64,}$/.test(hex)) {
    throw new Error(`${file} does not hold a lab variables secret (64+ hex digits). Delete it to make a new one (learners' lab variables then change).`);
  }
  return Buffer.from(hex, "hex");
}

/**
 * The facts of the sandboxes this host makes. The namespaces driver shares the host's kernel, so
 * the host's cgroup version and machine are the sandbox's (what `uname -m` prints inside).
 */
export function hostSandboxFacts(): SandboxFacts {
  return { cgroup: detectCgroupVersion() === 2 ? "v2" : "v1", arch: os.machine() };
}

export class LearnerContexts {
  constructor(
    private readonly secret: Buffer,
    readonly facts: SandboxFacts,
  ) {}

  /** The learner's context for a lab: cheap (a few HMACs), so computed on every use. */
  for(userId: string, lab: Lab): LabContext {
    return learnerContext(lab, { secret: this.secret, userId, facts: this.facts });
  }
}
