// The info string of a fence (the text after ``` on the opening line): a first word that says what
// the block is, then words. Hidden blocks take key=value attributes, values quoted when they hold
// spaces: ```check id=hostname title="Hostname is set" points=2 timeout=10s

export interface Attribute {
  key: string;
  /** undefined for a bare word (a flag such as `run`). */
  value?: string;
  /** 0-based offset of the key inside the info string. */
  offset: number;
}

export interface InfoString {
  /** The first word, e.g. "bash", "check"; "" when the fence has no info string. */
  kind: string;
  attributes: Attribute[];
  /** Problems found while reading the words, with the offset they start at. */
  problems: { offset: number; message: string; fix: string }[];
}

const KEY = /^[A-Za-z][A-Za-z0-9_-]*$/;

export function parseInfoString(info: string): InfoString {
  const out: InfoString = { kind: "", attributes: [], problems: [] };
  let i = 0;
  const skipSpace = () => {
    while (i < info.length && /\s/.test(info[i]!)) i++;
  };
  skipSpace();
  const kindStart = i;
  while (i < info.length && !/\s/.test(info[i]!)) i++;
  out.kind = info.slice(kindStart, i);

  for (;;) {
    skipSpace();
    if (i >= info.length) break;
    const start = i;
    while (i < info.length && !/[\s=]/.test(info[i]!)) i++;
    const key = info.slice(start, i);
    if (!KEY.test(key)) {
      out.problems.push({
        offset: start,
        message: `"${key || info[start]}" is not a valid attribute name`,
        fix: "write attributes as name=value, names made of letters, digits, - and _",
      });
      while (i < info.length && !/\s/.test(info[i]!)) i++;
      continue;
    }
    if (info[i] !== "=") {
      out.attributes.push({ key, offset: start });
      continue;
    }
    i++; // past "="
    const quote = info[i];
    if (quote === '"' || quote === "'") {
      i++;
      let value = "";
      let closed = false;
      while (i < info.length) {
        const c = info[i]!;
        if (c === "\\" && i + 1 < info.length) {
          value += info[i + 1];
          i += 2;
          continue;
        }
        if (c === quote) {
          closed = true;
          i++;
          break;
        }
        value += c;
        i++;
      }
      if (!closed) {
        out.problems.push({
          offset: start,
          message: `the value of "${key}" opens a ${quote} quote that is never closed`,
          fix: `close it with ${quote} before the end of the line (write \\${quote} for a quote inside the value)`,
        });
        break;
      }
      out.attributes.push({ key, value, offset: start });
    } else {
      const vStart = i;
      while (i < info.length && !/\s/.test(info[i]!)) i++;
      const value = info.slice(vStart, i);
      if (value === "") {
        out.problems.push({
          offset: start,
          message: `"${key}=" has no value`,
          fix: `give it a value, e.g. ${key}="..."`,
        });
        continue;
      }
      out.attributes.push({ key, value, offset: start });
    }
  }
  return out;
}

/** "500ms", "10s", "2m" → milliseconds; undefined when it is not one of those. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)(ms|s|m)$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : n * 60_000;
}
