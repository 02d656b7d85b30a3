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

/** A lab using every construct of format v2; its files are written by writeV2Lab. */
export const V2 = `---
id: v2-lab
title: Format v2
summary: Every construct of the v2 format in one lab.
duration: 15m
difficulty: intermediate
tags: [v2]
next: demo-lab
hint-cost: 1
gate: true
variables:
  netns: { kind: word, prefix: "ns-" }
  port: { kind: port, min: 8000, max: 8099 }
  token: { kind: hex, length: 6 }
assets:
  - { from: files/hello.txt, to: /root/app/hello.txt }
  - { from: files/run.sh, to: /root/app/run.sh, mode: "0755" }
---

Welcome: your namespace is {{var.netns}}. ![the diagram](images/diagram.png)

\`\`\`setup
echo "{{var.token}}" > /root/token # SETUP-SECRET
\`\`\`

::: if=cgroup-v2
FACT-V2: this sandbox uses cgroup v2.
:::

::: if=!cgroup-v2
FACT-V1: this sandbox uses cgroup v1.
:::

## Name the namespace {#make}

::: note
Files live in /root.
:::

::: warning Careful now
Do not delete /root.
:::

::: details What is a namespace?
A *view* of a resource.
:::

Open [the greeting](open:/root/app/hello.txt) or [your preview](preview:{{var.port}}).

\`\`\`bash run term=2 interrupt
echo hello
\`\`\`

\`\`\`bash if=cgroup-v2
cat /sys/fs/cgroup/cgroup.controllers # ONLY-V2
\`\`\`

Write your namespace's name into /root/ns-name.

\`\`\`check id=ns-named title="/root/ns-name holds {{var.netns}}" points=3 hint-cost=2
[ "$(cat /root/ns-name 2>/dev/null)" = "{{var.netns}}" ] && [ "$BERTH_VAR_NETNS" = "{{var.netns}}" ] || { echo "No /root/ns-name with your name yet."; exit 1; } # CHECK-SECRET-V2
\`\`\`

\`\`\`hint
Use echo. HINT-ONE
\`\`\`

\`\`\`hint
\`echo {{var.netns}} > /root/ns-name\` HINT-TWO
\`\`\`

\`\`\`solution
echo "$BERTH_VAR_NETNS" > /root/ns-name # SOLUTION-SECRET-V2
\`\`\`

\`\`\`check id=token-copied title="The token is copied" auto needs=ns-named timeout=3s
cmp -s /root/token /root/token-copy || { echo "Copy /root/token to /root/token-copy."; exit 1; }
\`\`\`

\`\`\`solution check=token-copied
cp /root/token /root/token-copy
\`\`\`

## Run the asset {#asset}

\`\`\`setup
echo "step two reached" > /root/step-two # STEP-SETUP-SECRET
\`\`\`

Run the script you were given.

\`\`\`check id=asset-run title="The asset ran after the step's setup" poll=3s timeout=2s
test -f /root/step-two && grep -q hello /root/app/hello.txt && test -f /root/asset-done || { echo "Run /root/app/run.sh"; exit 1; }
\`\`\`

\`\`\`solution
/root/app/run.sh
\`\`\`

\`\`\`quiz id=v2-quiz title="Check yourself" points=2
? Which file holds **your** name?
( ) /etc/hostname
(x) /root/ns-name

? Which of these are namespaces?
[x] uts
[x] pid
[ ] cgroupfs

? Which command copies a file?
= cp
~ cp( -[a-z]+)?
\`\`\`

## Free reading {#read no-gate}

Facts: {{sandbox.cgroup}} on {{sandbox.arch}}.

## Recap {#recap}

You named **{{var.netns}}**.
`;

export const V2_FILES: Record<string, string | Buffer> = {
  "files/hello.txt": "hello from the lab folder\n",
  "files/run.sh": "#!/bin/sh\necho done > /root/asset-done\n",
  // a 1x1 PNG
  "images/diagram.png": Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==", "base64"),
};

/** Writes the v2 lab and its files into a fresh folder <tmp>/v2-lab; returns the lab.md path. */
export async function writeV2Lab(source = V2): Promise<string> {
  const { mkdtemp, mkdir, writeFile } = await import("node:fs/promises");
  const os = await import("node:os");
  const path = await import("node:path");
  const root = await mkdtemp(path.join(os.tmpdir(), "labkit-v2-"));
  const dir = path.join(root, "v2-lab");
  for (const [rel, content] of Object.entries(V2_FILES)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), content);
  }
  await writeFile(path.join(dir, "lab.md"), source);
  return path.join(dir, "lab.md");
}
