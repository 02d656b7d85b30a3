// Loads the Monaco editor once, from this server (app/monaco/...), never from a CDN: its AMD loader
// and editor.main, the way Monaco's own AMD samples do. Monaco sets up its web workers itself, from
// URLs next to editor.main. Only the editor tab calls this, so the player's first paint never waits.
import type * as Monaco from "monaco-editor";

export type MonacoApi = typeof Monaco;

const BASE = `/monaco/${process.env.NEXT_PUBLIC_MONACO_VERSION}/vs`;

interface AmdRequire {
  (deps: string[], onLoad: () => void, onError: (err: unknown) => void): void;
  config(options: { paths: Record<string, string> }): void;
}

let loading: Promise<MonacoApi> | undefined;

export function loadMonaco(): Promise<MonacoApi> {
  loading ??= new Promise<MonacoApi>((resolve, reject) => {
    const w = window as unknown as { monaco?: MonacoApi; require?: AmdRequire };
    if (w.monaco) return resolve(w.monaco);
    const css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = `${BASE}/editor/editor.main.css`;
    document.head.append(css);
    const script = document.createElement("script");
    script.src = `${BASE}/loader.js`;
    script.async = true;
    script.onerror = () => reject(new Error(`could not load ${script.src}`));
    script.onload = () => {
      const amd = w.require;
      if (!amd) return reject(new Error("Monaco's loader did not define require()"));
      amd.config({ paths: { vs: BASE } });
      amd(["vs/editor/editor.main"], () => (w.monaco ? resolve(w.monaco) : reject(new Error("Monaco loaded without its API"))), (err) =>
        reject(err instanceof Error ? err : new Error(String(err))),
      );
    };
    document.head.append(script);
  }).catch((err: unknown) => {
    loading = undefined; // a later attempt may succeed (network back)
    throw err;
  });
  return loading;
}

/** Monaco's language id for a file, by name: the lab's usual suspects, plain text otherwise. */
export function languageFor(name: string): string {
  const base = name.split("/").pop() ?? name;
  if (/^(Docker|Container)file(\..*)?$/i.test(base) || /\.dockerfile$/i.test(base)) return "dockerfile";
  const ext = base.includes(".") ? base.slice(base.lastIndexOf(".") + 1).toLowerCase() : "";
  switch (ext) {
    case "yml":
    case "yaml":
      return "yaml";
    case "sh":
    case "bash":
    case "bashrc":
    case "profile":
      return "shell";
    case "c":
    case "h":
      return "c";
    case "cc":
    case "cpp":
    case "hpp":
      return "cpp";
    case "py":
      return "python";
    case "json":
      return "json";
    case "js":
    case "mjs":
      return "javascript";
    case "ts":
      return "typescript";
    case "md":
      return "markdown";
    case "ini":
    case "conf":
    case "cfg":
      return "ini";
    case "html":
      return "html";
    case "css":
      return "css";
    case "go":
      return "go";
    default:
      return base === ".bashrc" || base === ".profile" ? "shell" : "plaintext";
  }
}
