// A small, valid lab that tests bend into each kind of mistake, and a helper to find lines in it.
export const GOOD = `---
id: demo-lab
title: Demo lab
summary: A lab that exists for labkit's tests.
duration: 10m
chapter: 3
difficulty: beginner
tags: [demo, test]
---

The intro, with **bold** text.

\`\`\`setup
echo SETUP-SECRET > /root/setup-was-here
\`\`\`

## Make a file {#make-file}

Create the file:

\`\`\`bash run
touch /root/made
\`\`\`

\`\`\`text
plain output, not runnable
\`\`\`

\`\`\`check id=file-made title="The file exists" points=2 timeout=5s message="No /root/made yet."
test -f /root/made # CHECK-SECRET-1
\`\`\`

\`\`\`hint
Use \`touch\`.
\`\`\`

\`\`\`solution
touch /root/made # SOLUTION-SECRET-1
\`\`\`

## Second step

Some text.

\`\`\`check id=second-check title="Second"
grep -q yes /root/second 2>/dev/null || { echo "Write yes into /root/second"; exit 1; } # CHECK-SECRET-2
\`\`\`

\`\`\`hint check=second-check
Write *yes*.
\`\`\`

\`\`\`solution check=second-check timeout=20s
echo yes > /root/second # SOLUTION-SECRET-2
\`\`\`

## Reading only

Nothing to check here.
`;

/** 1-based line of the first line containing `needle`. */
export function lineOf(source: string, needle: string): number {
  const i = source.split("\n").findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`fixture has no line with ${needle}`);
  return i + 1;
}

export const FILE = "labs/demo-lab/lab.md";
