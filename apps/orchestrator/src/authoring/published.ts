// Published versions of labs authored in the browser, as catalog entries. The lab catalog asks here
// for any id that is not a lab of labs/ (LabCatalog.attach). Each version is unpacked once into a
// folder of its own under the state directory (assets and pictures are read from there, as for a
// file lab), so a learner who started version 1 keeps being served version 1 after version 2 is
// published: the first time a signed-in learner's request names the lab, the version it got is
// recorded (AuthoredLabStart) and every later request of theirs gets that version.
//
// "Try it" previews are entries too: a draft under the id `<lab>--draft`, visible to its author
// alone, replaced on every "Try it" (its attempts are the author's own and never a learner's).
import path from "node:path";
import { rm } from "node:fs/promises";
import { summarizeLab } from "@berth/labkit";
import type { LabSummary } from "@berth/protocol";
import type { Logger } from "pino";
import type { Db } from "../db/index.js";
import type { CatalogEntry } from "../labs/catalog.js";
import { materialize, type DraftContent } from "./folder.js";
import { readTar } from "./tar.js";
import { ASSET_LIMITS } from "./limits.js";

export const PREVIEW_SUFFIX = "--draft";

export class AuthoredCatalog {
  /** The newest version of each published lab. */
  private readonly latest = new Map<string, CatalogEntry>();
  private readonly versions = new Map<string, CatalogEntry>();
  /** `${userId}\0${labId}` → the version that learner started. */
  private readonly starts = new Map<string, string>();
  private readonly previews = new Map<string, { entry: CatalogEntry; authorId: string }>();

  constructor(private readonly db: Db, private readonly root: string, private readonly log: Logger, private readonly isFileLab: (id: string) => boolean) {}

  /** Every published version from the database (unpacked again at each start: the folders are a cache). */
  async load(): Promise<void> {
    const rows = await this.db.authoredLabVersion.findMany({ orderBy: { publishedAt: "asc" } });
    for (const row of rows) {
      if (this.isFileLab(row.labId)) {
        this.log.warn({ labId: row.labId }, "a lab in labs/ has the id of a lab authored in the browser: the file lab is served");
        continue;
      }
      try {
        await this.add(row.versionId, row.labId, Buffer.from(row.bundle));
      } catch (err) {
        this.log.error({ labId: row.labId, versionId: row.versionId, err: String(err) }, "a published version of an authored lab could not be read");
      }
    }
    for (const s of await this.db.authoredLabStart.findMany()) this.starts.set(`${s.userId}\0${s.labId}`, s.versionId);
  }

  /** A newly published version (the newest from now on). */
  async add(versionId: string, labId: string, bundle: Buffer): Promise<CatalogEntry> {
    const content = bundleContent(labId, bundle);
    const { lab } = await materialize(path.join(this.root, "versions", versionId), content);
    const entry: CatalogEntry = { lab, summary: summarizeLab(lab), versionId };
    this.versions.set(versionId, entry);
    this.latest.set(labId, entry);
    return entry;
  }

  /** The "Try it" entry of a draft for its author, replacing the last one. */
  async setPreview(authorId: string, content: DraftContent, versionId: string): Promise<string> {
    const id = content.labId + PREVIEW_SUFFIX;
    const { lab } = await materialize(path.join(this.root, "previews", content.labId), content);
    const previewLab = { ...lab, id, title: `${lab.title} (draft)`, next: null };
    this.previews.set(id, { entry: { lab: previewLab, summary: summarizeLab(previewLab), versionId }, authorId });
    return id;
  }

  async dropPreview(labId: string): Promise<void> {
    this.previews.delete(labId + PREVIEW_SUFFIX);
    await rm(path.join(this.root, "previews", labId), { recursive: true, force: true });
  }

  isPreview(id: string): boolean {
    return id.endsWith(PREVIEW_SUFFIX);
  }

  /**
   * The entry a request gets: a preview only for its author; a published lab in the version this
   * user started (recorded now if this is their first), or the newest for a request without a user.
   */
  get(id: string, userId?: string, peek = false): CatalogEntry | undefined {
    const preview = this.previews.get(id);
    if (preview) return userId === preview.authorId ? preview.entry : undefined;
    const latest = this.latest.get(id);
    if (!latest || !userId) return latest;
    const key = `${userId}\0${id}`;
    const started = this.starts.get(key);
    if (started) return this.versions.get(started) ?? latest;
    if (peek) return latest;
    this.starts.set(key, latest.versionId);
    this.db.authoredLabStart
      .upsert({ where: { userId_labId: { userId, labId: id } }, create: { userId, labId: id, versionId: latest.versionId }, update: {} })
      .catch((err: unknown) => this.log.error({ err: String(err), userId, labId: id }, "could not record which version of a lab a learner started"));
    return latest;
  }

  /** Published labs for the catalog (previews never appear there). */
  list(): LabSummary[] {
    return [...this.latest.values()].map((e) => e.summary);
  }

  has(id: string): boolean {
    return this.latest.has(id);
  }
}

/** A published bundle (the tar an export makes) back into a lab's content. */
export function bundleContent(labId: string, bundle: Buffer): DraftContent {
  const files = readTar(bundle, { maxBytes: ASSET_LIMITS.totalBytes + ASSET_LIMITS.markdownBytes, maxFiles: ASSET_LIMITS.files + 1 });
  const prefix = `${labId}/`;
  const md = files.find((f) => f.path === `${prefix}lab.md`);
  if (!md) throw new Error(`bundle of ${labId} has no lab.md`);
  return {
    labId,
    markdown: md.bytes.toString("utf8"),
    assets: files.filter((f) => f !== md && f.path.startsWith(prefix)).map((f) => ({ path: f.path.slice(prefix.length), bytes: f.bytes })),
  };
}

