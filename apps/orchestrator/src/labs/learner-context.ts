// What one learner's view and scripts of a lab are made with (labkit's LabContext): their variables
// and the sandbox facts. Variables come from an HMAC of (learner, lab, name) under a server secret,
// so they are stable for a learner and lab without being stored, and a learner cannot predict
// another's. The secret is generated once and kept in the data directory; losing it changes every
// learner's values (names and ports in their text), nothing else.
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEFAULT_FACTS, FACTS_SCRIPT, learnerContext, parseFacts, type Lab, type LabContext, type SandboxFacts } from "@berth/labkit";
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
 * The facts of the sandboxes this host makes, as far as they can be known without one. The
 * namespaces driver shares the host's kernel, so the host's cgroup version and machine are the
 * sandbox's (what `uname -m` prints inside); a VM driver's guests run a kernel of their own, known
 * only once one runs (LearnerContexts.measureIn), and meanwhile assumed to be labkit's defaults.
 */
export function hostSandboxFacts(driver = "namespaces"): SandboxFacts {
  if (driver !== "namespaces") return { ...DEFAULT_FACTS };
  return { cgroup: detectCgroupVersion() === 2 ? "v2" : "v1", arch: os.machine() };
}

/** Runs a script as a check runs (trusted, out of the learner's reach) in a sandbox. */
export type TrustedRun = (script: string) => Promise<{ exitCode: number | null; stdout: Buffer | string }>;

export class LearnerContexts {
  private current: SandboxFacts;
  private measuring: Promise<void> | undefined;

  constructor(
    private readonly secret: Buffer,
    facts: SandboxFacts,
  ) {
    this.current = facts;
  }

  /** The sandbox facts learners' text and scripts are made with. */
  get facts(): SandboxFacts {
    return this.current;
  }

  /**
   * Measures the facts (labkit's FACTS_SCRIPT) in a real sandbox, once: every sandbox of one
   * orchestrator comes from one driver on one host, so one guest's kernel (cgroup version, cpuset,
   * machine) is every guest's. Called before a new sandbox's setups run; a failed measurement is
   * tried again with the next sandbox, the facts meanwhile staying as they were.
   */
  measureIn(run: TrustedRun): Promise<void> {
    this.measuring ??= run(FACTS_SCRIPT)
      .then((res) => {
        if (res.exitCode !== 0) throw new Error(`the facts script exited with ${res.exitCode}`);
        this.current = parseFacts(res.stdout.toString());
      })
      .catch(() => {
        this.measuring = undefined;
      });
    return this.measuring;
  }

  /** The learner's context for a lab: cheap (a few HMACs), so computed on every use. */
  for(userId: string, lab: Lab): LabContext {
    return learnerContext(lab, { secret: this.secret, userId, facts: this.current });
  }
}
