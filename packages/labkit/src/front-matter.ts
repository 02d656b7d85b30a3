// The YAML front matter between the two --- lines at the top of lab.md: read with the yaml parser,
// its errors mapped to lines of the file, and every field checked against what the format allows.
import { LineCounter, isMap, isScalar, parseDocument, type Node } from "yaml";
import { DIFFICULTIES, type Difficulty, type Lab, type LabError } from "./lab.js";

/** The fields of a lab that its front matter sets. */
export type FrontMatter = Pick<Lab, "id" | "title" | "summary" | "duration" | "chapter" | "difficulty" | "tags">;

export const ID_PATTERN = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const DURATION = /^(?:(\d+)h)?(?:(\d+)m)?$/;
const FIELDS = ["id", "title", "summary", "duration", "chapter", "difficulty", "tags"] as const;

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
  return fm;
}
