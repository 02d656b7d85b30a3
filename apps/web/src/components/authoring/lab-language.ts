// Monaco's language for lab.md: markdown with the lab format's parts told apart, so an author sees
// at a glance what the learner reads and what stays on the server. Front matter, headings with
// their {#id}, the hidden blocks (check, solution, setup: scripts; hint: text shown on request;
// quiz), runnable blocks (`bash run`) and plain code each get their own colours. A Monarch
// tokenizer written for this format (no copy of Monaco's markdown one): it only needs line shapes.
import type { MonacoApi } from "@/lib/monaco";

export const LAB_LANGUAGE = "berth-lab";

let registered = false;

export function registerLabLanguage(m: MonacoApi): void {
  if (registered) return;
  registered = true;
  m.languages.register({ id: LAB_LANGUAGE, extensions: [".lab.md"], aliases: ["Berth lab"] });
  // A fence opens a state by its kind and closes on a line of ``` or ~~~ alone.
  const fence = (kind: string, token: string) => [
    new RegExp(`^\\s*(\`{3,}|~{3,})\\s*${kind}\\b.*$`),
    { token: `fence.${token}`, next: `@${token}` },
  ];
  const body = (token: string, inner: string) => [
    [/^\s*(`{3,}|~{3,})\s*$/, { token: `fence.${token}`, next: "@pop" }],
    [/\{\{[^}]*\}\}/, "variable"],
    [/#.*$/, token === "hint" ? inner : "comment"],
    [/.+/, inner],
  ];
  m.languages.setMonarchTokensProvider(LAB_LANGUAGE, {
    defaultToken: "",
    tokenizer: {
      root: [
        [/^---\s*$/, { token: "frontmatter.fence", next: "@frontmatter" }],
        [/^#{1,6}\s.*?(\{#[^}]*\})?\s*$/, "heading"],
        fence("check", "check"),
        fence("solution", "solution"),
        fence("(?:setup|step-setup)", "setup"),
        fence("hint", "hint"),
        fence("quiz", "quiz"),
        [/^\s*(`{3,}|~{3,})\s*\w+.*\brun\b.*$/, { token: "fence.run", next: "@run" }],
        [/^\s*(`{3,}|~{3,}).*$/, { token: "fence.code", next: "@code" }],
        [/\{\{[^}]*\}\}/, "variable"],
        [/`[^`]+`/, "code.inline"],
        [/\*\*[^*]+\*\*/, "strong"],
        [/!?\[[^\]]*\]\([^)]*\)/, "link"],
        [/^>\s*\[!\w+\].*$/, "callout"],
        [/<\/?[A-Za-z][^>]*>/, "html"],
      ],
      frontmatter: [
        [/^---\s*$/, { token: "frontmatter.fence", next: "@pop" }],
        [/^([\w-]+)(\s*:)/, ["frontmatter.key", "delimiter"]],
        [/#.*$/, "comment"],
        [/.+/, "frontmatter.value"],
      ],
      check: body("check", "script.check"),
      solution: body("solution", "script.solution"),
      setup: body("setup", "script.setup"),
      hint: body("hint", "hint"),
      quiz: body("quiz", "quiz"),
      run: body("run", "script.run"),
      code: body("code", "code"),
    },
  } as Parameters<MonacoApi["languages"]["setMonarchTokensProvider"]>[1]);
  const rules = (dark: boolean) => [
    { token: "frontmatter.fence", foreground: dark ? "c586c0" : "8a3b9c" },
    { token: "frontmatter.key", foreground: dark ? "9cdcfe" : "0451a5", fontStyle: "bold" },
    { token: "frontmatter.value", foreground: dark ? "ce9178" : "a31515" },
    { token: "heading", foreground: dark ? "569cd6" : "0000c0", fontStyle: "bold" },
    { token: "fence.check", foreground: dark ? "f48771" : "b4332e", fontStyle: "bold" },
    { token: "script.check", foreground: dark ? "f0a59a" : "8c2a25" },
    { token: "fence.solution", foreground: dark ? "89d185" : "207a46", fontStyle: "bold" },
    { token: "script.solution", foreground: dark ? "b5e0b1" : "1b5e37" },
    { token: "fence.setup", foreground: dark ? "dcdcaa" : "795e26", fontStyle: "bold" },
    { token: "script.setup", foreground: dark ? "e8e8c0" : "5c4a1f" },
    { token: "fence.hint", foreground: dark ? "4ec9b0" : "267f99", fontStyle: "bold" },
    { token: "hint", foreground: dark ? "9fe3d3" : "1e6a80", fontStyle: "italic" },
    { token: "fence.quiz", foreground: dark ? "d7ba7d" : "a66a00", fontStyle: "bold" },
    { token: "quiz", foreground: dark ? "e6d2a6" : "7a4f00" },
    { token: "fence.run", foreground: dark ? "569cd6" : "2b6cb0", fontStyle: "bold" },
    { token: "script.run", foreground: dark ? "b4d3f2" : "1f4f80" },
    { token: "fence.code", foreground: dark ? "808080" : "6a737d", fontStyle: "bold" },
    { token: "code", foreground: dark ? "bbbbbb" : "444d56" },
    { token: "code.inline", foreground: dark ? "d7ba7d" : "953800" },
    { token: "variable", foreground: dark ? "c586c0" : "af00db", fontStyle: "bold" },
    { token: "comment", foreground: dark ? "6a9955" : "008000" },
    { token: "strong", fontStyle: "bold" },
    { token: "link", foreground: dark ? "3794ff" : "0366d6", fontStyle: "underline" },
    { token: "callout", foreground: dark ? "d7ba7d" : "a66a00" },
    { token: "html", foreground: dark ? "808080" : "800000" },
  ];
  m.editor.defineTheme("berth-lab-light", { base: "vs", inherit: true, rules: rules(false), colors: {} });
  m.editor.defineTheme("berth-lab-dark", { base: "vs-dark", inherit: true, rules: rules(true), colors: {} });
}
