// The browser's side of /api/authoring (apps/orchestrator/src/authoring/routes.ts). JSON calls
// resolve to tagged results like lib/api.ts; "Prove it" reads the server-sent events of its answer
// as they come.
import type { DraftDetail, DraftSaveResult, DraftSummary, LintProblem, ProofEvent } from "@berth/protocol";

export type { DraftSummary, LintProblem, ProofEvent };
export type Draft = DraftDetail;
export type SaveResult = DraftSaveResult;

export type Result<T> = { ok: true; data: T } | { ok: false; status: number; error: string };

async function call<T>(method: string, url: string, body?: BodyInit, type?: string): Promise<Result<T>> {
  let res: Response;
  try {
    res = await fetch(url, { method, credentials: "same-origin", cache: "no-store", headers: type ? { "content-type": type } : {}, body });
  } catch {
    return { ok: false, status: 0, error: "Cannot reach the Berth server. Check your connection and try again." };
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (res.ok) return { ok: true, data: json as T };
  const error = (json as { error?: unknown } | undefined)?.error;
  return { ok: false, status: res.status, error: typeof error === "string" ? error : `The server answered ${res.status}` };
}

const seg = encodeURIComponent;
const json = (v: unknown) => JSON.stringify(v);

export const authoring = {
  list: () => call<{ drafts: DraftSummary[] }>("GET", "/api/authoring/labs"),
  create: (id: string) => call<{ draft: Draft }>("POST", "/api/authoring/labs", json({ id }), "application/json"),
  get: (labId: string) => call<{ draft: Draft }>("GET", `/api/authoring/labs/${seg(labId)}`),
  save: (labId: string, markdown: string) => call<SaveResult>("PUT", `/api/authoring/labs/${seg(labId)}`, json({ markdown }), "application/json"),
  putFile: (labId: string, path: string, bytes: ArrayBuffer) =>
    call<{ draft: Draft }>("PUT", `/api/authoring/labs/${seg(labId)}/files/${path.split("/").map(seg).join("/")}`, bytes, "application/octet-stream"),
  deleteFile: (labId: string, path: string) => call<{ draft: Draft }>("DELETE", `/api/authoring/labs/${seg(labId)}/files/${path.split("/").map(seg).join("/")}`),
  publish: (labId: string) => call<{ version: { versionId: string; publishedAt: string } }>("POST", `/api/authoring/labs/${seg(labId)}/publish`),
  tryIt: (labId: string) => call<{ previewId: string; url: string }>("POST", `/api/authoring/labs/${seg(labId)}/try`),
  importArchive: (bytes: ArrayBuffer, asId?: string) =>
    call<{ draft: Draft }>("POST", `/api/authoring/import${asId ? `?id=${seg(asId)}` : ""}`, bytes, "application/octet-stream"),
  exportUrl: (labId: string) => `/api/authoring/export/${seg(labId)}`,

  /** Runs "Prove it", calling `onEvent` for each run as the server reports it. */
  async prove(labId: string, onEvent: (e: ProofEvent) => void, signal?: AbortSignal): Promise<Result<void>> {
    let res: Response;
    try {
      res = await fetch(`/api/authoring/labs/${seg(labId)}/prove`, { method: "POST", credentials: "same-origin", cache: "no-store", signal });
    } catch {
      return { ok: false, status: 0, error: "Cannot reach the Berth server. Check your connection and try again." };
    }
    if (!res.ok || !res.body) {
      const body = (await res.json().catch(() => ({}))) as { error?: string };
      return { ok: false, status: res.status, error: body.error ?? `The server answered ${res.status}` };
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const chunk = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = chunk.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
        if (data) onEvent(JSON.parse(data) as ProofEvent);
      }
    }
    return { ok: true, data: undefined };
  },
};
