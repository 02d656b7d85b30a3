// The "Run passes the check" lint: when the commands of a check's solution are all shown in Run
// blocks above the check, a learner passes it by pressing Run in order without reading. The
// comparison works on normalized lines: whitespace collapsed, comments, `set -...` and `sleep`
// lines dropped, redirections to /dev/null dropped, and loops that only wait (a for/while/until
// loop with a sleep in it) dropped, since solutions wait for state that a learner's Run does not.

/** Lines of a shell script that do something, normalized for comparison. */
export function commandLines(script: string): string[] {
  const out: string[] = [];
  const lines = script.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = normalize(lines[i]!);
    if (line === "") continue;
    if (/^(for|while|until)\b/.test(line)) {
      // Collect the loop up to its matching `done`.
      let depth = 0;
      const body: string[] = [];
      let j = i;
      for (; j < lines.length; j++) {
        const l = normalize(lines[j]!);
        body.push(l);
        depth += (l.match(/(^|[;\s])(for|while|until)\s/g) ?? []).length;
        depth -= (l.match(/(^|[;\s])done\b/g) ?? []).length;
        if (depth <= 0) break;
      }
      if (body.some((l) => /(^|[;\s&|])sleep\s/.test(l))) {
        i = j;
        continue;
      }
    }
    if (/^(sleep\s+[\d.]+|set\s+-[a-z]+(\s+\w+)*|exit(\s+\d+)?|true|:)$/.test(line)) continue;
    out.push(line);
  }
  return out;
}

function normalize(line: string): string {
  let l = line.trim();
  if (l.startsWith("#")) return "";
  l = l.replace(/\s+/g, " ");
  // Redirections that only silence output or detach stdin do not change what a command does.
  l = l.replace(/\s*(?:[012]?>>?\s*\/dev\/null|<\s*\/dev\/null|2>&1|>&\s*\/dev\/null|&>\s*\/dev\/null)/g, "");
  // Neither does ignoring a failure (`|| true`), which solutions add so that a rerun does not stop.
  l = l.replace(/\s*(?:\|\|\s*(?:true|:)|;\s*true)\s*$/, "");
  return l.trim();
}

/**
 * When every command line of `solution` appears in the given Run blocks (shown before the check),
 * the index of the last block needed; undefined when the solution has something the page does not
 * show (or nothing at all).
 */
export function solutionShownInRunBlocks(solution: string, runBlocks: string[]): number | undefined {
  const needed = commandLines(solution);
  if (needed.length === 0 || runBlocks.length === 0) return undefined;
  const blocks = runBlocks.map((b) => new Set(commandLines(b)));
  let last = -1;
  for (const line of needed) {
    let found = -1;
    for (let b = 0; b < blocks.length; b++) if (blocks[b]!.has(line)) found = b;
    if (found < 0) return undefined;
    last = Math.max(last, found);
  }
  return last;
}
