// The list of host programs (scripts/host-programs.mjs) against the code: every program the code
// spawns on the host is on the list with its Debian package, and a machine that lacks one is
// told which package to install. Reads files only: no root, no sandbox, a second or so.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
// @ts-expect-error: plain JavaScript (setup reads it before npm ci), typed by its JSDoc
import { HOST_PROGRAMS, debianPackages, missingPrograms } from "../../scripts/host-programs.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

interface HostProgram {
  program: string;
  pkg: string;
  need: "runtime" | "test";
  why: string;
}
const LIST = HOST_PROGRAMS as HostProgram[];

/** Node's own toolchain: it runs Berth, so it is there by definition (node, npm, tsx from npm ci). */
const NODE_TOOLCHAIN = new Set(["node", "npm", "npx", "tsx"]);

/**
 * Programs spawned through a variable, which no pattern can read: each with the file that spawns it
 * and a piece of text that must still be in that file (so this table cannot go stale unseen).
 */
const INDIRECT: { file: string; evidence: string; programs: string[] }[] = [
  { file: "packages/engine/src/tar/reader.ts", evidence: '"zstd"', programs: ["gzip", "bzip2", "xz", "zstd"] },
  { file: "packages/engine/src/runtime/shim.ts", evidence: 'cc = "cc"', programs: ["cc"] },
  { file: "packages/sandbox/src/namespaces/runc.ts", evidence: 'binary = "runc"', programs: ["runc"] },
  { file: "packages/registry/src/registry.ts", evidence: "REGISTRY_BINARY", programs: ["docker-registry"] },
];

/**
 * Host-side source: everything but the agent, whose spawns (the learner's shell) run inside a
 * sandbox, and the web app, which runs in the browser (its Run buttons type into a terminal).
 */
function hostSources(): string[] {
  const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "apps", "packages", "infra", "scripts", "test"], { cwd: ROOT, encoding: "utf8" })
    .split("\n")
    .filter((f) => /\.(ts|tsx|mjs|js)$/.test(f) && !f.includes("/dist/") && !f.startsWith("packages/agent/src/") && !f.startsWith("apps/web/"));
  return files.filter((f) => {
    try {
      readFileSync(path.join(ROOT, f));
      return true;
    } catch {
      return false; // deleted in the working tree
    }
  });
}

// spawn("tar", …), execFileSync("ip", …), runHostCommand("mount", …), and the small run()
// wrappers in setup and the network code: a program name, then a comma (a lone string argument is a
// script for a sandbox, not a program).
const CALL = /\b(?:spawn|spawnSync|execFile|execFileSync|execFileAsync|runHostCommand|runLogged|run)\(\s*(["'`])([A-Za-z0-9_.+/-]+)\1\s*,/g;
// const CLI_28 = "/usr/local/bin/docker", binary = "…": absolute program paths kept in constants.
const CONSTANT = /\b(?:const|let)\s+\w*(?:CLI|BINARY|Binary|binary)\w*\s*(?::\s*\w+\s*)?=\s*(["'`])(\/[A-Za-z0-9_.+/-]+)\1/g;

function spawnedPrograms(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const add = (program: string, where: string) => found.set(program, [...(found.get(program) ?? []), where]);
  for (const file of hostSources()) {
    const text = readFileSync(path.join(ROOT, file), "utf8");
    for (const re of [CALL, CONSTANT]) {
      for (const m of text.matchAll(re)) {
        const program = m[2]!;
        if (NODE_TOOLCHAIN.has(program) || program.includes("node_modules")) continue;
        add(program, `${file}:${text.slice(0, m.index).split("\n").length}`);
      }
    }
  }
  for (const ind of INDIRECT) for (const p of ind.programs) add(p, ind.file);
  return found;
}

describe("host programs", () => {
  it("lists every program the host-side code spawns, with its Debian package", () => {
    const listed = new Set(LIST.map((p) => p.program));
    const missing = [...spawnedPrograms()]
      .filter(([program]) => !listed.has(program) && !listed.has(path.basename(program)))
      .map(([program, where]) => `${program} (spawned at ${where.slice(0, 3).join(", ")}): add it to scripts/host-programs.mjs with its Debian package`);
    expect(missing).toEqual([]);
  });

  it("keeps the table of indirect spawns true to the files", () => {
    for (const ind of INDIRECT) expect(readFileSync(path.join(ROOT, ind.file), "utf8"), `${ind.file} no longer contains ${ind.evidence}: update INDIRECT`).toContain(ind.evidence);
  });

  it("finds spawns in the code at all (the scanner is not blind)", () => {
    const found = spawnedPrograms();
    for (const p of ["tar", "mount", "iptables", "mmdebstrap", "ip"]) expect(found.has(p), p).toBe(true);
  });

  it("gives each entry a package and a reason, and setup installs every package", () => {
    for (const p of LIST) {
      expect(p.pkg, p.program).toMatch(/\S/);
      expect(p.why, p.program).toMatch(/\S/);
      if (!p.pkg.startsWith("(")) expect(debianPackages(p.need)).toContain(p.pkg);
    }
    // .ci/run and setup read the same list rather than a copy of it.
    expect(readFileSync(path.join(ROOT, ".ci/run"), "utf8")).toContain("node scripts/host-programs.mjs packages test");
    expect(readFileSync(path.join(ROOT, "scripts/setup.mjs"), "utf8")).toContain('debianPackages("runtime")');
  });

  it("names the package of a program the machine lacks", () => {
    // A stand-in machine: a bin dir with every listed program but one, and a root for absolute paths.
    const root = mkdtempSync(path.join(os.tmpdir(), "berth-hostprog-"));
    const bin = path.join(root, "bin");
    mkdirSync(bin);
    const absent = LIST.find((p) => p.program === "mkfs.ext4")!;
    for (const p of LIST) {
      if (p === absent) continue;
      const target = p.program.startsWith("/") ? path.join(root, p.program) : path.join(bin, p.program);
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, "#!/bin/sh\n");
      chmodSync(target, 0o755);
    }
    expect(missingPrograms("test", [bin], root)).toEqual([expect.stringMatching(/^mkfs\.ext4 is missing .*install Debian's e2fsprogs \(apt-get install e2fsprogs\)$/)]);
    expect(missingPrograms("runtime", [bin], root)).toHaveLength(1);
  });

  it("stops the command-line check with the package named", () => {
    // The check as setup runs it, on a PATH that has node and nothing else: it must fail, naming packages.
    const res = spawnSync(process.execPath, [path.join(ROOT, "scripts/host-programs.mjs"), "check", "runtime"], { encoding: "utf8" });
    // On this machine everything is installed: the check passes...
    expect(res.status, res.stderr).toBe(0);
    // ...and the same code over an empty stand-in machine reports every runtime program.
    const empty = mkdtempSync(path.join(os.tmpdir(), "berth-hostprog-empty-"));
    const all = missingPrograms("runtime", [empty], empty);
    expect(all.length).toBe(LIST.filter((p) => p.need === "runtime").length);
    expect(all.join("\n")).toContain("install Debian's runc");
  });
});
