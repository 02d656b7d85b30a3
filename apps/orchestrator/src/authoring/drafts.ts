// Labs authored in the browser: drafts (one per lab id, owned by the instructor who made or
// imported it), their files, "Prove it" (labkit's test of that exact content in a fresh sandbox,
// each step told as it happens), "Try it" (the draft in the real player, for its author), publishing
// (only content whose proof passed), and export/import of a lab's folder as a tar archive.
// Routes are in routes.ts; the rules of who may act are here: a draft is reached by its author or
// an administrator, never by another instructor.
import os from "node:os";
import path from "node:path";
import { rm } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { summarizeLab, testLab, type Lab, type LabTestReport, type TestLabEvent } from "@berth/labkit";
import { createSandboxRunner } from "@berth/labkit/runners";
import type { SandboxDriver } from "@berth/sandbox";
import type { DraftDetail, DraftSummary, ProofEvent } from "@berth/protocol";
import type { Logger } from "pino";
import type { Db } from "../db/index.js";
import type { SessionUser } from "../auth/sessions.js";
import type { LabCatalog } from "../labs/catalog.js";
import { HttpError } from "../http/router.js";
import { contentFiles, contentHash, folderFiles, frontMatterId, lintDraft, materialize, sha256, type DraftContent, type DraftLint } from "./folder.js";
import { AuthoredCatalog, PREVIEW_SUFFIX } from "./published.js";
import { ASSET_LIMITS, MAX_PROOFS } from "./limits.js";
import { readTar, TarError, writeTar } from "./tar.js";

/** A lab's id: what labkit accepts in front matter (lowercase, digits, single dashes). */
const LAB_ID = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
/** A file's path in a lab's folder (labkit's rule: relative, no `.`/`..` parts). */
const FILE_PATH = /^(?!\/)(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._@+/-]+$/;

export interface AuthoringDeps {
  db: Db;
  catalog: LabCatalog;
  authored: AuthoredCatalog;
  driver: SandboxDriver;
  /** This orchestrator's sandbox id prefix: a proof's sandbox carries it, so recovery ends one a crash left. */
  instance: string;
  log: Logger;
}

/** Bytes as Prisma stores them (a plain Uint8Array over its own ArrayBuffer). */
const stored = (b: Buffer): Uint8Array<ArrayBuffer> => new Uint8Array(b);

/** A draft's files without their bytes (what most requests need). */
const FILE_META = { select: { path: true, size: true, sha256: true } } as const;
type FileMeta = { path: string; size: number; sha256: string };
type DraftRow = { id: string; labId: string; authorId: string; markdown: string; provedHash: string | null; updatedAt: Date; assets: FileMeta[] };

function tail(text: string, max = 1500): string {
  const t = text.trim();
  return t.length > max ? `…${t.slice(-max)}` : t;
}

const STARTER = (id: string) => `---
id: ${id}
title: ${id.split("-").map((w) => w[0]!.toUpperCase() + w.slice(1)).join(" ")}
summary: One sentence on what the learner will have done.
duration: 10m
difficulty: beginner
tags: [draft]
---

What this lab is about, in a paragraph.

## Leave a greeting {#greeting}

Write the word \`hello\` into \`/root/hello.txt\`.

\`\`\`check id=greeting-file title="/root/hello.txt says hello" message="/root/hello.txt does not say hello yet."
grep -qx hello /root/hello.txt
\`\`\`

\`\`\`hint
\`echo\` and a redirection (\`>\`) write a file.
\`\`\`

\`\`\`solution
echo hello > /root/hello.txt
\`\`\`
`;

export class Authoring {
  private readonly proving = new Set<string>();

  constructor(private readonly deps: AuthoringDeps) {}

  /** An id free for a new authored lab (neither a file lab nor another draft). */
  private async requireFreeId(user: SessionUser, labId: string): Promise<void> {
    if (!LAB_ID.test(labId) || labId.length > 64) throw new HttpError(400, "a lab id is lowercase letters, digits and single dashes (at most 64), e.g. my-first-lab", "id");
    if (labId.endsWith(PREVIEW_SUFFIX)) throw new HttpError(400, `a lab id may not end in ${PREVIEW_SUFFIX}`, "id");
    if (this.deps.catalog.isFileLab(labId)) throw new HttpError(409, `"${labId}" is a lab of the workshop's folder (labs/): choose another id`, "id");
    if (await this.deps.db.labDraft.findUnique({ where: { labId } })) throw new HttpError(409, `a lab called "${labId}" is already being authored: choose another id`, "id");
    // A published lab whose draft was deleted keeps its id for its author (and administrators):
    // nobody else may publish over what learners are taking.
    const published = await this.deps.db.authoredLabVersion.findFirst({ where: { labId }, orderBy: { publishedAt: "desc" } });
    if (published && published.authorId !== user.id && user.role !== "admin") throw new HttpError(409, `"${labId}" is another instructor's published lab: choose another id`, "id");
  }

  /** The draft, when this user may work on it: its author or an administrator. 404 otherwise (no hint it exists). */
  private async own(user: SessionUser, labId: string) {
    const draft: DraftRow | null = await this.deps.db.labDraft.findUnique({ where: { labId }, include: { assets: FILE_META } });
    if (!draft || (draft.authorId !== user.id && user.role !== "admin")) {
      if (draft) throw new HttpError(403, `"${labId}" is another instructor's draft`);
      throw new HttpError(404, `no draft called "${labId}"`);
    }
    return draft;
  }

  /** The draft with its files' bytes (read only to prove, try, publish or export). */
  private async content(draft: Pick<DraftRow, "id" | "labId" | "markdown">): Promise<DraftContent> {
    const files = await this.deps.db.labDraftAsset.findMany({ where: { draftId: draft.id }, select: { path: true, bytes: true } });
    return { labId: draft.labId, markdown: draft.markdown, assets: files.map((a) => ({ path: a.path, bytes: Buffer.from(a.bytes) })) };
  }

  lint(content: { labId: string; markdown: string; assets: { path: string }[] }) {
    return lintDraft(content, (id) => !!this.deps.catalog.get(id));
  }

  async list(user: SessionUser): Promise<DraftSummary[]> {
    const drafts = await this.deps.db.labDraft.findMany({ where: user.role === "admin" ? {} : { authorId: user.id }, include: { assets: FILE_META }, orderBy: { updatedAt: "desc" } });
    return Promise.all(drafts.map((d) => this.summary(d)));
  }

  private async summary(d: DraftRow): Promise<DraftSummary> {
    const versions = await this.deps.db.authoredLabVersion.findMany({ where: { labId: d.labId }, orderBy: { publishedAt: "desc" }, select: { versionId: true, publishedAt: true } });
    const title = /^title\s*:\s*(.+)$/m.exec(d.markdown)?.[1]?.trim() ?? d.labId;
    return {
      labId: d.labId, title, authorId: d.authorId, updatedAt: d.updatedAt.toISOString(),
      proved: d.provedHash === contentHash(d),
      versions: versions.map((v) => ({ versionId: v.versionId, publishedAt: v.publishedAt.toISOString() })),
    };
  }

  async create(user: SessionUser, labId: string, markdown?: string, assets: DraftContent["assets"] = []): Promise<DraftDetail> {
    await this.requireFreeId(user, labId);
    const md = markdown ?? STARTER(labId);
    this.checkSizes(md, assets.map((a) => ({ path: a.path, size: a.bytes.length })));
    try {
      await this.deps.db.labDraft.create({
        data: { labId, authorId: user.id, markdown: md, assets: { create: assets.map((a) => ({ path: a.path, bytes: stored(a.bytes), size: a.bytes.length, sha256: sha256(a.bytes) })) } },
      });
    } catch (err) {
      if (await this.deps.db.labDraft.findUnique({ where: { labId } })) throw new HttpError(409, `a lab called "${labId}" is already being authored: choose another id`, "id");
      throw err;
    }
    return this.detail(user, labId);
  }

  async detail(user: SessionUser, labId: string): Promise<DraftDetail> {
    const draft = await this.own(user, labId);
    const { errors, warnings, view } = this.lint(draft);
    return {
      ...(await this.summary(draft)),
      markdown: draft.markdown, errors, warnings, ...(view ? { view } : {}),
      files: draft.assets.map((a) => ({ path: a.path, size: a.size })).sort((a, b) => (a.path < b.path ? -1 : 1)),
      limits: ASSET_LIMITS,
    };
  }

  /** Saves lab.md and answers with its lint and the learner's view (the editor calls this as the author types). */
  async save(user: SessionUser, labId: string, markdown: string): Promise<DraftLint & { proved: boolean }> {
    const draft = await this.own(user, labId);
    this.checkSizes(markdown, []);
    await this.deps.db.labDraft.update({ where: { id: draft.id }, data: { markdown } });
    const content = { ...draft, markdown };
    const { errors, warnings, view } = this.lint(content);
    return { errors, warnings, ...(view ? { view } : {}), proved: draft.provedHash === contentHash(content) };
  }

  private checkSizes(markdown: string, assets: { path: string; size: number }[]): void {
    const md = Buffer.byteLength(markdown, "utf8");
    if (md > ASSET_LIMITS.markdownBytes) throw new HttpError(413, `lab.md is ${md} bytes; a lab may have at most ${ASSET_LIMITS.markdownBytes} (${ASSET_LIMITS.markdownBytes / 1024} KiB): split it into two labs`);
    if (assets.length > ASSET_LIMITS.files) throw new HttpError(413, `a lab may have at most ${ASSET_LIMITS.files} files besides lab.md`);
    let total = 0;
    for (const a of assets) {
      if (!FILE_PATH.test(a.path) || a.path === "lab.md" || a.path.length > 200) throw new HttpError(400, `"${a.path}" is not a file path inside the lab's folder (letters, digits, ._@+-/; no leading /, no ..)`, "path");
      if (a.size > ASSET_LIMITS.fileBytes) throw new HttpError(413, `${a.path} is ${a.size} bytes; a file may have at most ${ASSET_LIMITS.fileBytes} (${ASSET_LIMITS.fileBytes / 1024 / 1024} MiB)`);
      total += a.size;
    }
    if (total > ASSET_LIMITS.totalBytes) throw new HttpError(413, `the lab's files add up to ${total} bytes; at most ${ASSET_LIMITS.totalBytes} (${ASSET_LIMITS.totalBytes / 1024 / 1024} MiB) in all`);
  }

  async putFile(user: SessionUser, labId: string, filePath: string, bytes: Buffer): Promise<DraftDetail> {
    const draft = await this.own(user, labId);
    const others = draft.assets.filter((a) => a.path !== filePath);
    this.checkSizes(draft.markdown, [...others, { path: filePath, size: bytes.length }]);
    await this.deps.db.labDraftAsset.upsert({
      where: { draftId_path: { draftId: draft.id, path: filePath } },
      create: { draftId: draft.id, path: filePath, bytes: stored(bytes), size: bytes.length, sha256: sha256(bytes) },
      update: { bytes: stored(bytes), size: bytes.length, sha256: sha256(bytes) },
    });
    await this.deps.db.labDraft.update({ where: { id: draft.id }, data: { updatedAt: new Date() } });
    return this.detail(user, labId);
  }

  /** One file of the draft, for its author (pictures in the editor's preview, downloads). */
  async file(user: SessionUser, labId: string, filePath: string): Promise<Buffer> {
    const draft = await this.own(user, labId);
    const row = await this.deps.db.labDraftAsset.findUnique({ where: { draftId_path: { draftId: draft.id, path: filePath } }, select: { bytes: true } });
    if (!row) throw new HttpError(404, `the draft has no file "${filePath}"`);
    return Buffer.from(row.bytes);
  }

  async deleteFile(user: SessionUser, labId: string, filePath: string): Promise<DraftDetail> {
    const draft = await this.own(user, labId);
    const found = await this.deps.db.labDraftAsset.deleteMany({ where: { draftId: draft.id, path: filePath } });
    if (found.count === 0) throw new HttpError(404, `the draft has no file "${filePath}"`);
    return this.detail(user, labId);
  }

  /** Deletes the draft (its published versions stay: learners may be working on them). */
  async remove(user: SessionUser, labId: string): Promise<void> {
    const draft = await this.own(user, labId);
    await this.deps.db.labDraft.delete({ where: { id: draft.id } });
    await this.deps.authored.dropPreview(labId);
  }

  /** A parsing draft, or 400 with every error by line (a draft that does not parse cannot be proved or published). */
  private parsed(content: { labId: string; markdown: string; assets: { path: string }[] }) {
    const lint = this.lint(content);
    if (lint.errors.length > 0 || !lint.lab) {
      const lines = lint.errors.map((e) => `line ${e.line}: ${e.message}`).join("; ");
      throw Object.assign(new HttpError(400, `the draft has ${lint.errors.length} error(s): ${lines}`), { errors: lint.errors });
    }
    return lint.lab;
  }

  /**
   * "Prove it": labkit's test of the draft as it is now, in a fresh sandbox of the driver (as a
   * learner's), each run told through `send` as it finishes. A pass records the content's hash:
   * that exact content may be published.
   */
  async prove(user: SessionUser, labId: string, send: (e: ProofEvent) => void): Promise<LabTestReport> {
    const draft = await this.own(user, labId);
    this.parsed(draft);
    if (this.proving.has(labId)) throw new HttpError(409, "a proof of this draft is running already");
    if (this.proving.size >= MAX_PROOFS) throw new HttpError(429, `${MAX_PROOFS} proofs are running on this server: try again in a minute`, undefined, { "retry-after": "30" });
    this.proving.add(labId);
    const hash = contentHash(draft);
    const work = path.join(os.tmpdir(), `berth-proof-${labId}-${randomBytes(4).toString("hex")}`);
    try {
      const { lab } = await materialize(work, await this.content(draft));
      send({ kind: "start", labId, checks: lab.steps.reduce((n, s) => n + s.checks.length, 0) });
      const runner = await createSandboxRunner(this.deps.driver, `proof-${labId}`, { idPrefix: this.deps.instance });
      let report: LabTestReport;
      try {
        report = await testLab(lab, runner, { onEvent: (e) => send(proofStep(e)) });
      } finally {
        await runner.dispose().catch((err: unknown) => this.deps.log.warn({ err: String(err), labId }, "a proof's sandbox did not go away"));
      }
      const problems = [
        ...(report.assets?.problems ?? []),
        ...report.checks.flatMap((c) => c.problems.map((p) => `${c.checkId}: ${p}`)),
        ...report.quizzes.flatMap((q) => q.problems.map((p) => `quiz ${q.quizId}: ${p}`)),
      ];
      if (report.setup && (report.setup.exitCode !== 0 || report.setup.timedOut)) problems.unshift(`the lab's setup failed (exit ${report.setup.exitCode}): ${tail(report.setup.stderr, 300)}`);
      // Only the content that was proved is publishable, and only if it has not changed since.
      if (report.ok) await this.deps.db.labDraft.updateMany({ where: { id: draft.id }, data: { provedHash: hash, provedAt: new Date() } });
      const now = await this.deps.db.labDraft.findUnique({ where: { id: draft.id }, include: { assets: FILE_META } });
      send({ kind: "done", ok: report.ok, problems, ms: report.durationMs, publishable: report.ok && !!now && contentHash(now) === hash });
      return report;
    } finally {
      this.proving.delete(labId);
      await rm(work, { recursive: true, force: true });
    }
  }

  /** A new version for learners: the draft as it is now, which must be the content its last proof passed. */
  async publish(user: SessionUser, labId: string): Promise<{ versionId: string; publishedAt: string }> {
    const draft = await this.own(user, labId);
    const lab = this.parsed(draft);
    const hash = contentHash(draft);
    if (draft.provedHash !== hash) {
      throw new HttpError(409, draft.provedHash ? "the draft changed since its last passing proof: prove it again, then publish" : "prove the draft first: publishing needs a passing proof of this exact content");
    }
    const version = await this.recordVersion(lab, hash);
    const bundle = writeTar(contentFiles(await this.content(draft)));
    const row = await this.deps.db.authoredLabVersion.upsert({
      where: { versionId: version },
      create: { versionId: version, labId, authorId: user.id, bundle: stored(bundle) },
      update: {},
    });
    await this.deps.authored.add(version, labId, bundle);
    this.deps.log.info({ labId, versionId: version, by: user.email }, "authored lab published");
    return { versionId: version, publishedAt: row.publishedAt.toISOString() };
  }

  /** The Lab row (the catalog's mirror) and a LabVersion for this content; attempts name it. */
  private async recordVersion(lab: Lab, hash: string): Promise<string> {
    const labId = lab.id;
    const title = lab.title;
    const s = summarizeLab(lab);
    await this.deps.db.lab.upsert({
      where: { id: labId },
      create: { id: labId, title, summary: s.summary, chapter: s.chapter, duration: s.duration },
      update: { title, summary: s.summary, chapter: s.chapter, duration: s.duration },
    });
    const v = await this.deps.db.labVersion.upsert({
      where: { labId_contentHash: { labId, contentHash: hash } },
      create: { labId, contentHash: hash },
      update: {},
    });
    return v.id;
  }

  /** "Try it": the draft as it is now in the real player, under `<lab>--draft`, for this author only. */
  async tryIt(user: SessionUser, labId: string): Promise<{ previewId: string; url: string }> {
    const draft = await this.own(user, labId);
    const lab = this.parsed(draft);
    const version = await this.recordVersion(lab, contentHash(draft));
    const previewId = await this.deps.authored.setPreview(user.id, await this.content(draft), version);
    return { previewId, url: `/labs/${previewId}` };
  }

  /** A lab's folder as a tar: a lab of labs/ (any author may read those) or a draft this user owns. */
  async exportLab(user: SessionUser, labId: string): Promise<Buffer> {
    if (this.deps.catalog.isFileLab(labId)) {
      const entry = this.deps.catalog.get(labId)!;
      return writeTar(await folderFiles(path.dirname(entry.lab.file), labId));
    }
    const draft = await this.own(user, labId);
    return writeTar(contentFiles(await this.content(draft)));
  }

  /**
   * A lab's folder (tar or tar.gz: lab.md at the top or in one folder) as a new draft of this user.
   * `asId` renames it (the front matter's id line is rewritten), e.g. to import a lab of labs/.
   */
  async importLab(user: SessionUser, archive: Buffer, asId?: string): Promise<DraftDetail> {
    let files;
    try {
      files = readTar(archive, { maxBytes: ASSET_LIMITS.totalBytes + ASSET_LIMITS.markdownBytes, maxFiles: ASSET_LIMITS.files + 1 });
    } catch (err) {
      if (err instanceof TarError) throw new HttpError(400, err.message);
      throw err;
    }
    const mds = files.filter((f) => /^(?:[^/]+\/)?lab\.md$/.test(f.path));
    if (mds.length !== 1) throw new HttpError(400, mds.length === 0 ? "the archive has no lab.md (at its top or in one folder)" : "the archive holds more than one lab.md: import one lab at a time");
    const prefix = mds[0]!.path.slice(0, -"lab.md".length);
    let markdown = mds[0]!.bytes.toString("utf8");
    const assets = files.filter((f) => f !== mds[0] && f.path.startsWith(prefix) && f.path.length > prefix.length).map((f) => ({ path: f.path.slice(prefix.length), bytes: f.bytes }));
    const written = frontMatterId(markdown);
    const labId = asId ?? written;
    if (!labId) throw new HttpError(400, "lab.md has no `id:` in its front matter: add one, or give the id to import it as");
    if (asId && written && written !== asId) markdown = markdown.replace(/^id\s*:.*$/m, `id: ${asId}`);
    return this.create(user, labId, markdown, assets);
  }
}

function proofStep(e: TestLabEvent): ProofEvent {
  if (e.kind === "quiz") {
    return { kind: "step", what: `quiz ${e.report.quizId}`, stepId: e.report.stepId, ok: e.report.ok, detail: e.report.problems.join("; ") || `right answers pass, ${e.report.wrongFailed} wrong ones fail`, ms: 0 };
  }
  const out = tail(`${e.run.stdout}\n${e.run.stderr}`);
  switch (e.kind) {
    case "assets":
    case "setup":
      return { kind: "step", what: e.kind === "assets" ? "the lab's files" : "the lab's setup", ok: e.ok, detail: e.ok ? "" : out, ms: e.run.durationMs };
    case "step-setup":
      return { kind: "step", what: `setup of step ${e.stepId}`, stepId: e.stepId, ok: e.ok, detail: e.ok ? "" : out, ms: e.run.durationMs };
    case "solution":
      return { kind: "step", what: `solution of ${e.checkId ? `check ${e.checkId}` : `step ${e.stepId}`}`, stepId: e.stepId, ...(e.checkId ? { checkId: e.checkId } : {}), ok: e.ok, detail: e.ok ? "" : out, ms: e.run.durationMs };
    case "check":
      return {
        kind: "step", what: `${e.checkId} ${e.phase === "before" ? "before its solution (must fail)" : "after its solution (must pass)"}`,
        stepId: e.stepId, checkId: e.checkId, phase: e.phase, ok: e.ok, detail: e.run.message, ms: e.run.durationMs,
      };
  }
}
