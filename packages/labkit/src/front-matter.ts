// The YAML front matter between the two --- lines at the top of lab.md: read with the yaml parser,
// its errors mapped to lines of the file, and every field checked against what the format allows.
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node } from "yaml";
import { DIFFICULTIES, LIMITS, type Difficulty, type Lab, type LabAsset, type LabError, type LabVariable, type VariableKind } from "./lab.js";

/** The fields of a lab that its front matter sets (`gate` is the steps' default, `nextLine` for lint). */
export type FrontMatter = Pick<Lab, "id" | "title" | "summary" | "duration" | "chapter" | "difficulty" | "tags" | "next" | "hintCost" | "variables" | "assets"> & {
  gate: boolean;
  nextLine?: number;
  /** Every variable name declared, valid or not (so one bad declaration is one error). */
  declaredVariables?: string[];
};

export const ID_PATTERN = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
export const VARIABLE_NAME = /^[a-z][a-z0-9_]*$/;
const DURATION = /^(?:(\d+)h)?(?:(\d+)m)?$/;
const FIELDS = ["id", "title", "summary", "duration", "chapter", "difficulty", "tags", "next", "hint-cost", "gate", "variables", "assets"] as const;
const VARIABLE_KINDS: readonly VariableKind[] = ["word", "port", "hex", "number"];
/** Bounds when a variable does not give its own. */
const VARIABLE_DEFAULTS = { port: { min: 20000, max: 29999 }, number: { min: 1, max: 9999 }, hexLength: 8 } as const;
/** A sandbox path an asset may be written to: absolute, no "..", no odd characters. */
export const SANDBOX_PATH = /^\/(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._@+\/-]*[A-Za-z0-9._@+-]$/;
/** A path inside the lab's folder: relative, never climbing out. */
export const LAB_RELATIVE_PATH = /^(?!\/)(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._@+\/-]+$/;

/**
 * @param yamlText the lines between the --- fences
 * @param firstLine the 1-based file line of yamlText's first line
 */
export function readFrontMatter(
  yamlText: string,
  firstLine: number,
  file: string,
  errors: LabError[],
): Partial<FrontMatter> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(yamlText, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const at = (offset: number) => lineCounter.linePos(offset);
  const err = (line: number, message: string, fix: string, column?: number) =>
    errors.push({ file, line, ...(column ? { column } : {}), message, fix });

  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = e.linePos?.[0] ?? at(e.pos[0]);
      // the parser's own "at line N, column M" counts from the front matter, not the file
      const first = e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
      err(firstLine + pos.line - 1, `front matter is not valid YAML: ${first}`, "fix the YAML syntax (key: value, one per line; quote values that contain ': ' or start with a special character)", pos.col);
    }
    return {};
  }
  const fm: Partial<FrontMatter> = {};
  const root = doc.contents;
  if (!isMap(root)) {
    err(firstLine, "front matter must be a YAML mapping of fields", "write fields as `key: value` lines: id, title, summary, duration, difficulty, tags");
    return fm;
  }
  const lineOf = (node: Node | null | undefined) =>
    node?.range ? firstLine + at(node.range[0]).line - 1 : firstLine;
  // Field name → its value node (or the key node when the value is empty, so lines still point).
  const seen = new Map<string, Node>();
  const emptyValue = new Set<Node>();
  for (const pair of root.items) {
    const keyNode = pair.key as Node;
    const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
    if (!(FIELDS as readonly string[]).includes(key)) {
      err(lineOf(keyNode), `unknown front matter field "${key}"`, `remove it or correct its spelling; the fields are ${FIELDS.join(", ")}`);
      continue;
    }
    if (pair.value) seen.set(key, pair.value as Node);
    else {
      seen.set(key, keyNode);
      emptyValue.add(keyNode);
    }
  }
  const endLine = firstLine + Math.max(0, yamlText.split("\n").length - 1);
  const missing = (key: string, example: string) =>
    err(endLine, `front matter has no "${key}"`, `add a line such as \`${key}: ${example}\``);

  const text = (key: "id" | "title" | "summary" | "duration" | "difficulty", example: string) => {
    const node = seen.get(key);
    if (!node) {
      missing(key, example);
      return undefined;
    }
    const v = isScalar(node) && !emptyValue.has(node) ? node.value : undefined;
    if (typeof v !== "string" || v.trim() === "") {
      err(lineOf(node), `"${key}" must be a non-empty text`, `write e.g. \`${key}: ${example}\``);
      return undefined;
    }
    return v.trim();
  };

  const id = text("id", "namespaces-by-hand");
  if (id !== undefined) {
    if (ID_PATTERN.test(id)) fm.id = id;
    else err(lineOf(seen.get("id")), `id "${id}" is not a valid lab id`, "use lowercase letters, digits and single dashes, e.g. cgroups-by-hand");
  }
  const title = text("title", "Namespaces by hand");
  if (title !== undefined) fm.title = title;
  const summary = text("summary", "One sentence on what the learner will do");
  if (summary !== undefined) fm.summary = summary;
  const duration = text("duration", "25m");
  if (duration !== undefined) {
    const m = DURATION.exec(duration);
    if (m && (m[1] || m[2])) fm.duration = duration;
    else err(lineOf(seen.get("duration")), `duration "${duration}" is not understood`, "write minutes and/or hours, e.g. 25m, 1h or 1h30m");
  }
  const difficulty = text("difficulty", "beginner");
  if (difficulty !== undefined) {
    if ((DIFFICULTIES as readonly string[]).includes(difficulty)) fm.difficulty = difficulty as Difficulty;
    else err(lineOf(seen.get("difficulty")), `difficulty "${difficulty}" is not one of ${DIFFICULTIES.join(", ")}`, `write one of ${DIFFICULTIES.join(", ")}`);
  }

  const chapterNode = seen.get("chapter");
  fm.chapter = null;
  if (chapterNode) {
    const v = isScalar(chapterNode) && !emptyValue.has(chapterNode) ? chapterNode.value : null;
    if (v === null) fm.chapter = null;
    else if (typeof v === "number" && Number.isInteger(v) && v > 0) fm.chapter = v;
    else err(lineOf(chapterNode), `chapter must be a positive whole number, not ${JSON.stringify(v ?? String(chapterNode))}`, "write e.g. `chapter: 15`, or remove the line");
  }

  const tagsNode = seen.get("tags");
  fm.tags = [];
  if (tagsNode) {
    const v = emptyValue.has(tagsNode) ? [] : (tagsNode.toJSON() as unknown);
    if (Array.isArray(v) && v.every((t) => typeof t === "string" && t.trim() !== "")) fm.tags = v.map((t: string) => t.trim());
    else err(lineOf(tagsNode), "tags must be a list of words", "write e.g. `tags: [namespaces, unshare]`");
  }

  fm.next = null;
  const nextNode = seen.get("next");
  if (nextNode) {
    const v = isScalar(nextNode) && !emptyValue.has(nextNode) ? nextNode.value : undefined;
    fm.nextLine = lineOf(nextNode);
    if (typeof v === "string" && ID_PATTERN.test(v.trim())) fm.next = v.trim();
    else err(lineOf(nextNode), "next must be the id of another lab", "write e.g. `next: cgroups-by-hand`, or remove the line");
  }

  fm.hintCost = 0;
  const costNode = seen.get("hint-cost");
  if (costNode) {
    const v = isScalar(costNode) && !emptyValue.has(costNode) ? costNode.value : undefined;
    if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= LIMITS.maxHintCost) fm.hintCost = v;
    else err(lineOf(costNode), `hint-cost must be a whole number from 0 to ${LIMITS.maxHintCost}`, "write e.g. `hint-cost: 1` (points each hint costs), or remove the line");
  }

  fm.gate = false;
  const gateNode = seen.get("gate");
  if (gateNode) {
    const v = isScalar(gateNode) && !emptyValue.has(gateNode) ? gateNode.value : undefined;
    if (typeof v === "boolean") fm.gate = v;
    else err(lineOf(gateNode), "gate must be true or false", "write `gate: true` to open each step only after the previous one is complete");
  }

  fm.variables = [];
  const varsNode = seen.get("variables");
  if (varsNode && !emptyValue.has(varsNode)) {
    if (!isMap(varsNode)) {
      err(lineOf(varsNode), "variables must be a mapping of names to generators", "write e.g. `variables:` then lines such as `  netns: word` or `  port: { kind: port, min: 8000, max: 8999 }`");
    } else {
      fm.declaredVariables = varsNode.items.map((pair) => (isScalar(pair.key) ? String(pair.key.value) : String(pair.key)));
      for (const pair of varsNode.items) {
        const v = readVariable(pair.key as Node, pair.value as Node | null, lineOf, err);
        if (v) fm.variables.push(v);
      }
    }
  }

  fm.assets = [];
  const assetsNode = seen.get("assets");
  if (assetsNode && !emptyValue.has(assetsNode)) {
    if (!isSeq(assetsNode)) {
      err(lineOf(assetsNode), "assets must be a list", "write e.g. `assets:` then `  - { from: files/Dockerfile, to: /root/app/Dockerfile }`");
    } else {
      const targets = new Map<string, number>();
      for (const item of assetsNode.items) {
        const a = readAsset(item as Node, lineOf, err);
        if (!a) continue;
        if (targets.has(a.to)) err(a.line, `asset path ${a.to} is already written by the asset on line ${targets.get(a.to)}`, "give each asset its own `to:` path");
        else targets.set(a.to, a.line);
        fm.assets.push(a);
      }
    }
  }
  return fm;
}

type LineOf = (node: Node | null | undefined) => number;

function readVariable(keyNode: Node, valueNode: Node | null, lineOf: LineOf, err: Err): LabVariable | undefined {
  const name = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
  const line = lineOf(keyNode);
  let ok = true;
  if (!VARIABLE_NAME.test(name)) {
    err(line, `variable name "${name}" is not valid`, "start with a lowercase letter, then lowercase letters, digits or _ (it becomes {{var.name}} and $BERTH_VAR_NAME)");
    ok = false;
  }
  const raw = valueNode ? (valueNode.toJSON() as unknown) : null;
  const spec: Record<string, unknown> = typeof raw === "string" ? { kind: raw } : raw && typeof raw === "object" && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  const kind = spec.kind;
  if (typeof kind !== "string" || !(VARIABLE_KINDS as readonly string[]).includes(kind)) {
    err(line, `variable "${name}" needs a kind: ${VARIABLE_KINDS.join(", ")}`, `write e.g. \`${name}: word\` or \`${name}: { kind: port, min: 8000, max: 8999 }\``);
    return undefined;
  }
  const allowed: Record<VariableKind, string[]> = { word: ["kind", "prefix"], port: ["kind", "min", "max"], number: ["kind", "min", "max"], hex: ["kind", "length"] };
  for (const k of Object.keys(spec)) {
    if (!allowed[kind as VariableKind].includes(k)) {
      err(line, `variable "${name}" (${kind}) does not take "${k}"`, `a ${kind} variable takes ${allowed[kind as VariableKind].filter((x) => x !== "kind").join(", ") || "nothing but its kind"}`);
      ok = false;
    }
  }
  const v: LabVariable = { name, kind: kind as VariableKind, prefix: "", min: 0, max: 0, length: 0, line };
  if (kind === "word") {
    const p = spec.prefix ?? "";
    if (typeof p !== "string" || !/^[a-z0-9-]{0,20}$/.test(p)) {
      err(line, `the prefix of variable "${name}" must be up to 20 lowercase letters, digits or dashes`, 'write e.g. prefix: "berth-"');
      ok = false;
    } else v.prefix = p;
  } else if (kind === "port" || kind === "number") {
    const d = VARIABLE_DEFAULTS[kind];
    const min = spec.min ?? d.min;
    const max = spec.max ?? d.max;
    const top = kind === "port" ? 65535 : 1_000_000_000;
    const bottom = kind === "port" ? 1024 : 0;
    if (!Number.isInteger(min) || !Number.isInteger(max) || (min as number) < bottom || (max as number) > top || (min as number) > (max as number)) {
      err(line, `variable "${name}" needs whole-number bounds with ${bottom} <= min <= max <= ${top}`, `write e.g. { kind: ${kind}, min: ${d.min}, max: ${d.max} }`);
      ok = false;
    } else {
      v.min = min as number;
      v.max = max as number;
    }
  } else {
    const len = spec.length ?? VARIABLE_DEFAULTS.hexLength;
    if (!Number.isInteger(len) || (len as number) < 1 || (len as number) > 32) {
      err(line, `the length of variable "${name}" must be a whole number from 1 to 32`, "write e.g. { kind: hex, length: 8 }");
      ok = false;
    } else v.length = len as number;
  }
  return ok ? v : undefined;
}

function readAsset(node: Node, lineOf: LineOf, err: Err): LabAsset | undefined {
  const line = lineOf(node);
  const raw = node.toJSON() as unknown;
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    err(line, "an asset must be a mapping with from and to", "write e.g. `  - { from: files/Dockerfile, to: /root/app/Dockerfile, mode: \"0644\" }`");
    return undefined;
  }
  const spec = raw as Record<string, unknown>;
  let ok = true;
  for (const k of Object.keys(spec)) {
    if (!["from", "to", "mode"].includes(k)) {
      err(line, `an asset does not take "${k}"`, "an asset takes from, to and mode");
      ok = false;
    }
  }
  const from = spec.from;
  if (typeof from !== "string" || !LAB_RELATIVE_PATH.test(from)) {
    err(line, `asset from=${JSON.stringify(from ?? null)} is not a path inside the lab's folder`, "give a relative path such as files/Dockerfile (no leading /, no ..)");
    ok = false;
  } else if (from === "lab.md") {
    err(line, "lab.md cannot be an asset: it holds the checks and solutions", "deliver another file");
    ok = false;
  }
  const to = spec.to;
  if (typeof to !== "string" || !SANDBOX_PATH.test(to)) {
    err(line, `asset to=${JSON.stringify(to ?? null)} is not an absolute path in the sandbox`, "give an absolute file path such as /root/app/Dockerfile (no .., letters, digits and ._@+-/ only)");
    ok = false;
  }
  let mode = 0o644;
  if (spec.mode !== undefined) {
    // Only a quoted string: YAML reads 0755 as the number 755 and 0o755 as 493, easy to get wrong.
    const text = typeof spec.mode === "string" ? spec.mode : "";
    if (/^0?[0-7]{3}$/.test(text)) mode = parseInt(text, 8);
    else {
      err(line, `asset mode ${JSON.stringify(spec.mode)} is not an octal file mode`, 'write e.g. mode: "0755" (quoted, so YAML keeps the leading 0)');
      ok = false;
    }
  }
  return ok ? { from: from as string, to: to as string, mode, line } : undefined;
}

type Err = (line: number, message: string, fix: string, column?: number) => void;
