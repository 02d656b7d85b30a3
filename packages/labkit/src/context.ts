// Per-learner values and sandbox facts. A variable's value is derived, not stored: an HMAC of the
// server's secret over (user, lab, variable name) picks it, so the same learner always gets the same
// name or port in a lab (across reloads, sandboxes and servers sharing the secret), two learners
// almost always get different ones, and nobody can predict another learner's values without the
// secret.
import { createHmac } from "node:crypto";
import type { Lab, LabContext, LabVariable, SandboxFacts } from "./lab.js";
import { REFERENCE } from "./syntax.js";

// 64 × 64 pairs: short, unambiguous words that read well in a command line (no shell meaning).
const ADJECTIVES = [
  "amber", "brave", "calm", "clever", "coral", "crisp", "dusty", "eager", "early", "fancy", "fast", "gentle",
  "golden", "green", "happy", "hazel", "humble", "icy", "ivory", "jolly", "keen", "kind", "lively", "lucky",
  "lunar", "mellow", "merry", "misty", "noble", "olive", "plain", "polar", "proud", "quick", "quiet", "rapid",
  "rosy", "royal", "rusty", "sandy", "sharp", "shiny", "silent", "silver", "sleek", "snowy", "solar", "spry",
  "steady", "stormy", "sunny", "swift", "tidy", "tiny", "topaz", "urban", "vivid", "warm", "wild", "windy",
  "witty", "young", "zesty", "bold",
] as const;
const NOUNS = [
  "anchor", "badger", "beacon", "birch", "bison", "canyon", "cedar", "comet", "crane", "delta", "dune", "eagle",
  "ember", "falcon", "fern", "fjord", "forest", "fox", "galaxy", "garnet", "glacier", "harbor", "hawk", "heron",
  "island", "jaguar", "kestrel", "lagoon", "lark", "lemur", "lynx", "maple", "meadow", "meteor", "moose", "nebula",
  "oasis", "orca", "otter", "owl", "panda", "pebble", "pine", "planet", "puffin", "quartz", "raven", "reef",
  "river", "robin", "salmon", "sequoia", "sparrow", "summit", "tiger", "trout", "tundra", "valley", "walrus",
  "willow", "wolf", "yak", "zebra", "koala",
] as const;

/** The learner `labkit test` and previews use, so tests see fixed values. */
export const TEST_LEARNER = { secret: "labkit-test-secret", userId: "test-learner" } as const;

/** Facts assumed when none were measured (previews, `labkit render`). */
export const DEFAULT_FACTS: SandboxFacts = { cgroup: "v2", arch: "x86_64", cpuset: "yes" };

/** Prints the facts of the sandbox it runs in; read its stdout with parseFacts. */
export const FACTS_SCRIPT = [
  "if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo cgroup=v2; else echo cgroup=v1; fi",
  "echo arch=$(uname -m)",
  // cpuset where the learner's cgroups are: on v2 the controllers their root offers, on v1 a
  // mounted cpuset tree. A kernel built without it (one-CPU User-mode Linux) has neither.
  "if [ -f /sys/fs/cgroup/cgroup.controllers ]; then grep -qw cpuset /sys/fs/cgroup/cgroup.controllers; else [ -f /sys/fs/cgroup/cpuset/cpuset.cpus ]; fi && echo cpuset=yes || echo cpuset=no",
  "",
].join("\n");

/** FACTS_SCRIPT's output → SandboxFacts; anything odd falls back to the defaults per field. */
export function parseFacts(stdout: string): SandboxFacts {
  const facts: SandboxFacts = { ...DEFAULT_FACTS };
  for (const line of stdout.split("\n")) {
    const m = /^(cgroup|arch|cpuset)=(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === "cgroup" && (m[2] === "v1" || m[2] === "v2")) facts.cgroup = m[2];
    if (m[1] === "cpuset" && (m[2] === "yes" || m[2] === "no")) facts.cpuset = m[2];
    // Only characters that are safe in text, attributes and shell words.
    if (m[1] === "arch" && /^[a-z0-9_]{1,32}$/.test(m[2]!)) facts.arch = m[2]!;
  }
  return facts;
}

function generate(v: LabVariable, digest: Buffer): string {
  const n = digest.readUInt32BE(0);
  switch (v.kind) {
    case "word":
      return `${v.prefix}${ADJECTIVES[digest[4]! % ADJECTIVES.length]}-${NOUNS[digest[5]! % NOUNS.length]}`;
    case "port":
    case "number":
      return String(v.min + (n % (v.max - v.min + 1)));
    case "hex":
      return digest.toString("hex").slice(0, v.length);
  }
}

/** Every variable of the lab for one learner: stable for (secret, user, lab, name). */
export function learnerVariables(lab: Pick<Lab, "id" | "variables">, learner: { secret: string | Buffer; userId: string }): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of lab.variables) {
    const digest = createHmac("sha256", learner.secret).update(["berth-lab-variable", learner.userId, lab.id, v.name].join("\0")).digest();
    out[v.name] = generate(v, digest);
  }
  return out;
}

/** The context one learner's view and scripts are made with. */
export function learnerContext(lab: Pick<Lab, "id" | "variables">, opts: { secret: string | Buffer; userId: string; facts?: SandboxFacts }): LabContext {
  return { vars: learnerVariables(lab, opts), facts: opts.facts ?? DEFAULT_FACTS };
}

/** The test learner with the default facts: what `labkit render` shows and tests expect. */
export function previewContext(lab: Pick<Lab, "id" | "variables">): LabContext {
  return learnerContext(lab, { ...TEST_LEARNER, facts: DEFAULT_FACTS });
}

/** Replaces {{var.x}} and {{sandbox.x}}; a name the context lacks stays as written. */
export function substitute(text: string, ctx: LabContext): string {
  return text.replace(new RegExp(REFERENCE.source, "g"), (whole, scope: string, name: string) => {
    const value = scope === "var" ? ctx.vars[name] : ({ ...DEFAULT_FACTS, ...ctx.facts } as unknown as Record<string, string>)[name];
    return typeof value === "string" ? value : whole;
  });
}

/** The environment a script gets: BERTH_VAR_<NAME> per variable, BERTH_SANDBOX_CGROUP/ARCH/CPUSET. */
export function scriptEnv(ctx: LabContext): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.vars)) env[`BERTH_VAR_${k.toUpperCase()}`] = v;
  env.BERTH_SANDBOX_CGROUP = ctx.facts.cgroup;
  env.BERTH_SANDBOX_ARCH = ctx.facts.arch;
  env.BERTH_SANDBOX_CPUSET = ctx.facts.cpuset ?? "yes";
  return env;
}
