// The REST client for /api/* (same origin as the pages, so the httpOnly session cookie rides along).
// Every call resolves to a tagged result instead of throwing on 4xx, because most callers branch on
// the status (401 → sign in, 409 → sandbox not ready, 400 → field error).
import type {
  ApiError,
  CheckResultView,
  LabSummary,
  LabView,
  ProgressView,
  SignUpResult,
  QuizAnswers,
  QuizResultView,
  UserView,
} from "@berth/protocol";

/** One entry of a folder in the learner's sandbox (GET /api/labs/:lab/files). */
export interface FileEntry {
  name: string;
  type: "file" | "dir";
  size: number;
  mtimeMs: number;
}

export type ApiResult<T> =
  | { ok: true; status: number; data: T }
  | { ok: false; status: number; error: ApiError };

export async function call<T>(method: string, path: string, body?: unknown): Promise<ApiResult<T>> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: "same-origin",
      cache: "no-store",
      headers: body === undefined ? { accept: "application/json" } : { "content-type": "application/json", accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    // status 0 = the request never got an answer (server down, network gone).
    return { ok: false, status: 0, error: { error: "Cannot reach the Berth server. Check your connection and try again." } };
  }
  const text = await res.text();
  let json: unknown = undefined;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  if (res.ok) return { ok: true, status: res.status, data: json as T };
  const err = json as Partial<ApiError> | undefined;
  return {
    ok: false,
    status: res.status,
    error: {
      error: typeof err?.error === "string" ? err.error : `The server answered ${res.status} ${res.statusText}`.trim(),
      field: typeof err?.field === "string" ? err.field : undefined,
    },
  };
}

const seg = encodeURIComponent;

export const api = {
  signUp: (body: { email: string; password: string; name?: string }) =>
    call<SignUpResult>("POST", "/api/auth/signup", body),
  signIn: (body: { email: string; password: string }) => call<{ user: UserView }>("POST", "/api/auth/signin", body),
  setupAdmin: (body: { token: string; email: string; password: string; name?: string }) =>
    call<{ user: UserView }>("POST", "/api/setup/admin", body),
  signOut: () => call<void>("POST", "/api/auth/signout"),
  me: () => call<{ user: UserView }>("GET", "/api/me"),
  labs: () => call<{ labs: LabSummary[] }>("GET", "/api/labs"),
  lab: (labId: string) => call<{ lab: LabView; progress: ProgressView }>("GET", `/api/labs/${seg(labId)}`),
  runCheck: (labId: string, checkId: string) =>
    call<{ result: CheckResultView; progress: ProgressView }>("POST", `/api/labs/${seg(labId)}/checks/${seg(checkId)}`),
  enterStep: (labId: string, stepId: string) =>
    call<{ progress: ProgressView }>("POST", `/api/labs/${seg(labId)}/steps/${seg(stepId)}/enter`),
  skipStep: (labId: string, stepId: string) =>
    call<{ progress: ProgressView }>("POST", `/api/labs/${seg(labId)}/steps/${seg(stepId)}/skip`),
  nextHint: (labId: string, checkId: string) =>
    call<{ progress: ProgressView }>("POST", `/api/labs/${seg(labId)}/checks/${seg(checkId)}/hints`),
  solution: (labId: string, checkId: string) =>
    call<{ progress: ProgressView }>("POST", `/api/labs/${seg(labId)}/checks/${seg(checkId)}/solution`),
  answerQuiz: (labId: string, quizId: string, answers: QuizAnswers) =>
    call<{ result: QuizResultView; progress: ProgressView }>("POST", `/api/labs/${seg(labId)}/quizzes/${seg(quizId)}`, { answers }),
  listFiles: (labId: string, dir?: string) =>
    call<{ path: string; workdir: string; entries: FileEntry[]; truncated: boolean }>(
      "GET",
      `/api/labs/${seg(labId)}/files${dir === undefined ? "" : `?path=${seg(dir)}`}`,
    ),
  readFile: (labId: string, file: string) =>
    call<{ path: string; content: string; mtimeMs: number; size: number }>("GET", `/api/labs/${seg(labId)}/file?path=${seg(file)}`),
  saveFile: (labId: string, file: string, content: string, baseMtimeMs: number | null) =>
    call<{ path: string; mtimeMs: number; size: number }>("PUT", `/api/labs/${seg(labId)}/file?path=${seg(file)}`, { content, baseMtimeMs }),
};

/** The page to return to after signing in: only same-site paths, never `//evil.example`. */
export function safeNext(next: string | null | undefined): string {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return "/";
  return next;
}

export function signInUrl(returnTo: string): string {
  return `/signin?next=${encodeURIComponent(returnTo)}`;
}
