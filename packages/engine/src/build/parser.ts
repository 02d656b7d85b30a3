/**
 * The Dockerfile parser, following the legacy builder's rules:
 *  - parser directives (`# escape=\``, `# syntax=...`) only at the very top, before any other line;
 *  - a line ending in the escape character continues on the next one (the character and trailing
 *    blanks go, the next line is appended as written); comment lines inside a continuation are
 *    dropped, as are blank continuation lines (with Docker's warning);
 *  - the first word is the instruction (any case), leading `--flag[=value]` words are its flags,
 *    the rest its arguments, in JSON (exec) form when they are a JSON array of strings.
 * Errors carry the line number in Docker's words: `dockerfile parse error line 3: unknown instruction: FOO`.
 * What only BuildKit understands (heredocs, RUN --mount, COPY --link/--chmod ...) is refused here,
 * before anything runs, with a message that names the feature.
 */

export interface Instruction {
  keyword: string; // upper case: "RUN"
  original: string; // as written, continuations joined and trimmed: what "Step n/m : ..." shows
  args: string; // after the keyword and its flags
  flags: Map<string, string | true>;
  json: string[] | null; // the exec form, when args is a JSON array of strings
  line: number; // where it starts, counted from 1
}

export interface ParsedDockerfile {
  instructions: Instruction[];
  escape: string;
  warnings: string[]; // lines for the build output
}

export class DockerfileParseError extends Error {
  constructor(
    readonly line: number,
    detail: string,
  ) {
    super(`dockerfile parse error line ${line}: ${detail}`);
  }
}

const BUILDKIT_HINT = "requires BuildKit, which this engine does not have (Berth speaks Docker's legacy builder, as `DOCKER_BUILDKIT=0 docker build` does with dockerd)";

const KNOWN = new Set(["ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"]);

/** Flags each instruction accepts, and the ones only BuildKit has (refused by name). */
const FLAGS: Record<string, { legacy: string[]; buildkit: string[] }> = {
  ADD: { legacy: ["chown"], buildkit: ["chmod", "link", "checksum", "keep-git-dir", "exclude", "unpack"] },
  COPY: { legacy: ["chown", "from"], buildkit: ["chmod", "link", "parents", "exclude"] },
  FROM: { legacy: ["platform"], buildkit: [] },
  RUN: { legacy: [], buildkit: ["mount", "network", "security", "device"] },
  HEALTHCHECK: { legacy: ["interval", "timeout", "start-period", "retries"], buildkit: ["start-interval"] },
};

/** Parse one instruction line (also used for ONBUILD triggers and `--change`). */
export function parseLine(text: string, line: number, escape = "\\"): Instruction {
  const trimmed = text.trim();
  const m = /^(\S+)\s*([\s\S]*)$/.exec(trimmed);
  if (!m) throw new DockerfileParseError(line, "empty instruction");
  const keyword = m[1]!.toUpperCase();
  if (!KNOWN.has(keyword)) throw new DockerfileParseError(line, `unknown instruction: ${keyword}`);
  let rest = m[2]!;
  const flags = new Map<string, string | true>();
  // Leading --words are flags (for every instruction, as in Docker: CMD --x is an unknown flag).
  for (;;) {
    const f = /^--([A-Za-z0-9-]*)(?:=(\S*))?(?:\s+|$)/.exec(rest);
    if (!f || rest.startsWith("--") === false) break;
    if (f[1] === "") {
      rest = rest.slice(f[0].length);
      break; // a bare "--" ends the flags
    }
    flags.set(f[1]!, f[2] ?? true);
    rest = rest.slice(f[0].length);
  }
  const allowed = FLAGS[keyword];
  for (const name of flags.keys()) {
    if (allowed?.buildkit.includes(name)) throw new DockerfileParseError(line, `the --${name} option of ${keyword} ${BUILDKIT_HINT}`);
    if (!allowed?.legacy.includes(name)) throw new DockerfileParseError(line, `Unknown flag: ${name}`);
  }
  const args = rest.trim();
  let json: string[] | null = null;
  if (args.startsWith("[")) {
    try {
      const v = JSON.parse(args) as unknown;
      if (Array.isArray(v) && v.every((x) => typeof x === "string")) json = v as string[];
    } catch {
      /* not JSON: the shell form, as Docker falls back to it */
    }
  }
  if (!json && ["RUN", "COPY", "ADD"].includes(keyword) && /<<-?\s*["']?[A-Za-z_][A-Za-z0-9_]*["']?/.test(args)) {
    throw new DockerfileParseError(line, `a heredoc (${/<<-?\s*["']?[A-Za-z_][A-Za-z0-9_]*["']?/.exec(args)![0]}) in ${keyword} ${BUILDKIT_HINT}; write the lines into a file and COPY it, or use printf in the RUN`);
  }
  checkArity(keyword, args, json, line);
  return { keyword, original: trimmed, args, flags, json, line };
}

function checkArity(keyword: string, args: string, json: string[] | null, line: number): void {
  const fail = (msg: string) => {
    throw new DockerfileParseError(line, msg);
  };
  const words = json ?? (args ? args.split(/\s+/) : []);
  switch (keyword) {
    case "FROM":
      if (!(words.length === 1 || (words.length === 3 && words[1]!.toLowerCase() === "as"))) fail("FROM requires either one or three arguments");
      break;
    case "COPY":
    case "ADD":
      if (words.length < 2) fail(`${keyword} requires at least two arguments, but only one was provided. Destination could not be determined.`);
      break;
    case "SHELL":
      if (!json) fail("SHELL requires the arguments to be in JSON form");
      if (json && json.length === 0) fail("SHELL requires at least one argument");
      break;
    case "ENV":
    case "LABEL":
    case "ARG":
    case "EXPOSE":
    case "VOLUME":
    case "USER":
    case "WORKDIR":
    case "STOPSIGNAL":
    case "MAINTAINER":
    case "ONBUILD":
      if (!args) fail(`${keyword} requires at least one argument`);
      break;
    case "HEALTHCHECK":
      if (!args) fail("HEALTHCHECK requires an argument");
      break;
    default:
  }
  if (keyword === "ONBUILD") {
    const inner = /^(\S+)/.exec(args)?.[1]?.toUpperCase();
    if (inner === "ONBUILD") fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    if (inner === "FROM" || inner === "MAINTAINER") fail(`${inner} isn't allowed as an ONBUILD trigger`);
  }
}

export function parseDockerfile(text: string): ParsedDockerfile {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  let escape = "\\";
  const warnings: string[] = [];
  let directivesDone = false;
  let i = 0;
  // Parser directives: "# key=value" lines at the very top; anything else ends them.
  for (; i < lines.length && !directivesDone; i++) {
    const d = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/.exec(lines[i]!);
    if (!d) {
      directivesDone = true;
      i--;
      continue;
    }
    const key = d[1]!.toLowerCase();
    if (key === "escape") {
      if (d[2] !== "\\" && d[2] !== "`") throw new DockerfileParseError(i + 1, `invalid ESCAPE '${d[2]}'. Must be \` or \\`);
      escape = d[2]!;
    } else if (key === "syntax") {
      // dockerd's legacy builder ignores it too; say so, since the author expected a frontend.
      warnings.push(`[Warning] the "# syntax=${d[2]}" directive selects a BuildKit frontend; this engine uses the legacy builder and ignores it`);
    }
  }
  const isComment = (l: string) => /^\s*#/.test(l);
  const isContinued = (l: string) => {
    const t = l.replace(/[ \t]+$/, "");
    return t.endsWith(escape) && !t.endsWith(escape + escape);
  };
  const stripContinuation = (l: string) => l.replace(/[ \t]+$/, "").slice(0, -1);
  const instructions: Instruction[] = [];
  let emptyContinuation = false;
  for (; i < lines.length; i++) {
    const first = lines[i]!.replace(/^\s+/, "");
    if (first === "" || isComment(first)) continue;
    const start = i + 1;
    let line = first;
    if (isContinued(line)) {
      line = stripContinuation(line);
      let ended = false;
      while (!ended && i + 1 < lines.length) {
        const next = lines[++i]!;
        if (isComment(next)) continue;
        if (next.trim() === "") {
          emptyContinuation = true;
          continue;
        }
        if (isContinued(next)) line += stripContinuation(next);
        else {
          line += next;
          ended = true;
        }
      }
    }
    if (line.trim() === "") continue;
    instructions.push(parseLine(line, start, escape));
  }
  if (emptyContinuation) warnings.push("[WARNING]: Empty continuation lines will become errors in a future release.");
  return { instructions, escape, warnings };
}
