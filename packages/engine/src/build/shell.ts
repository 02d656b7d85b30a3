/**
 * Variable expansion and word splitting as Docker's Dockerfile lexer does them (for every
 * instruction except RUN, CMD and ENTRYPOINT, whose text goes to the shell untouched):
 *   $VAR  ${VAR}  ${VAR:-default}  ${VAR:+alternative}  ${VAR-default}  ${VAR+alternative}
 * 'single quotes' keep everything literal, "double quotes" still expand, the escape character
 * (\ or ` with `# escape=`) makes the next character literal. Quotes are removed in the result.
 */

export class ExpansionError extends Error {}

/** Look a name up in a list of K=V strings (first match wins, as in Docker). */
function lookup(env: string[], name: string): string | undefined {
  for (const e of env) {
    const i = e.indexOf("=");
    if (i >= 0 && e.slice(0, i) === name) return e.slice(i + 1);
  }
  return undefined;
}

class Lexer {
  pos = 0;
  constructor(
    readonly s: string,
    readonly env: string[],
    readonly escape: string,
  ) {}

  peek(): string {
    return this.s[this.pos] ?? "";
  }
  next(): string {
    return this.s[this.pos++] ?? "";
  }
  done(): boolean {
    return this.pos >= this.s.length;
  }

  /** One word: quotes removed, variables expanded; stops at `stop` (a closing brace) if given. */
  word(stop?: string): string {
    let out = "";
    while (!this.done()) {
      const ch = this.peek();
      if (stop && ch === stop) break;
      if (ch === this.escape) {
        this.next();
        out += this.done() ? ch : this.next();
      } else if (ch === "'") {
        this.next();
        out += this.single();
      } else if (ch === '"') {
        this.next();
        out += this.double();
      } else if (ch === "$") {
        this.next();
        out += this.dollar();
      } else out += this.next();
    }
    return out;
  }

  single(): string {
    let out = "";
    for (;;) {
      if (this.done()) throw new ExpansionError("unexpected end of statement while looking for matching single-quote");
      const ch = this.next();
      if (ch === "'") return out;
      out += ch;
    }
  }

  double(): string {
    let out = "";
    for (;;) {
      if (this.done()) throw new ExpansionError("unexpected end of statement while looking for matching double-quote");
      const ch = this.peek();
      if (ch === '"') {
        this.next();
        return out;
      }
      if (ch === "$") {
        this.next();
        out += this.dollar();
      } else if (ch === this.escape) {
        this.next();
        const n = this.peek();
        // Inside double quotes the escape only protects a quote, a dollar or itself.
        if (n === '"' || n === "$" || n === this.escape) out += this.next();
        else out += ch;
      } else out += this.next();
    }
  }

  dollar(): string {
    const ch = this.peek();
    if (ch === "{") {
      this.next();
      const name = this.name();
      const after = this.peek();
      if (after === "}") {
        this.next();
        return lookup(this.env, name) ?? "";
      }
      let op = this.next();
      let colon = false;
      if (op === ":") {
        colon = true;
        op = this.next();
      }
      if (!name || (op !== "-" && op !== "+" && op !== "?")) throw new ExpansionError(`bad substitution: unsupported modifier (${op}) in substitution`);
      const word = this.word("}");
      if (this.next() !== "}") throw new ExpansionError("missing '}' in variable substitution");
      const value = lookup(this.env, name);
      const unset = value === undefined || (colon && value === "");
      if (op === "-") return unset ? word : value!;
      if (op === "+") return unset ? "" : word;
      if (unset) throw new ExpansionError(`${name}: ${word || "is not allowed to be unset"}`);
      return value!;
    }
    const name = this.name();
    if (!name) return "$";
    return lookup(this.env, name) ?? "";
  }

  name(): string {
    let out = "";
    while (/[A-Za-z0-9_]/.test(this.peek())) out += this.next();
    return out;
  }
}

/** Expand one word (quotes removed). */
export function expandWord(word: string, env: string[], escape = "\\"): string {
  return new Lexer(word, env, escape).word();
}

/**
 * Split on whitespace outside quotes, keeping quotes and escapes in each word (the parser's first
 * pass; expansion comes later, word by word).
 */
export function splitWords(s: string, escape = "\\"): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  let quote = "";
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quote) {
      cur += ch;
      if (ch === escape && quote === '"' && i + 1 < s.length) cur += s[++i];
      else if (ch === quote) quote = "";
      continue;
    }
    if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
      continue;
    }
    inWord = true;
    cur += ch;
    if (ch === escape && i + 1 < s.length) cur += s[++i];
    else if (ch === "'" || ch === '"') quote = ch;
  }
  if (inWord) words.push(cur);
  return words;
}

/** Expand and split: what COPY, EXPOSE, VOLUME (shell form) see. Empty unquoted results vanish. */
export function expandWords(s: string, env: string[], escape = "\\"): string[] {
  return splitWords(s, escape)
    .map((w) => ({ w, v: expandWord(w, env, escape) }))
    .filter(({ w, v }) => v !== "" || /["']/.test(w))
    .map(({ v }) => v);
}
