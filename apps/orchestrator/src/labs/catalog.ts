// The lab catalog: labs/ read through labkit at start, each version recorded by its content hash so
// that attempts can say which text of a lab they were graded against. A lab's view depends on the
// learner (variables, sandbox facts): views are rendered on demand and kept in a small cache keyed
// by the version and the context, since most learners of one lab on one host differ only in their
// variables. Labs authored in the browser come from an attached source (authoring/published.ts),
// asked for ids that are not labs of labs/; given the user, it answers the version they started.
import { loadLabs, renderLab, summarizeLab, labContentHash, type Lab, type LabContext } from "@berth/labkit";
import type { LabSummary, LabView } from "@berth/protocol";
import type { Db } from "../db/index.js";
import type { Logger } from "pino";

export interface CatalogEntry {
  lab: Lab;
  summary: LabSummary;
  versionId: string;
}

/** Labs from elsewhere than labs/ (those authored in the browser). */
export interface ExtraLabs {
  /** `peek`: look without recording that this user started the lab (the catalog's own listing). */
  get(id: string, userId?: string, peek?: boolean): CatalogEntry | undefined;
  list(): LabSummary[];
}

/** Rendered views kept (a view of a 6-step lab is ~20 KB). */
const VIEW_CACHE_SIZE = 500;

export class LabCatalog {
  private entries = new Map<string, CatalogEntry>();
  private readonly views = new Map<string, LabView>();
  private extra: ExtraLabs | undefined;

  constructor(private readonly db: Db, private readonly log: Logger) {}

  async load(dir: string): Promise<void> {
    const { labs, errors } = await loadLabs(dir);
    for (const e of errors) {
      if (e.severity === "warning") this.log.warn({ file: e.file, line: e.line }, `lab warning: ${e.message} (fix: ${e.fix})`);
      else this.log.error({ file: e.file, line: e.line }, `lab error: ${e.message} (fix: ${e.fix})`);
    }
    const next = new Map<string, CatalogEntry>();
    for (const lab of labs) {
      const summary = summarizeLab(lab);
      const hash = labContentHash(lab);
      await this.db.lab.upsert({
        where: { id: lab.id },
        create: { id: lab.id, title: summary.title, summary: summary.summary, chapter: summary.chapter, duration: summary.duration },
        update: { title: summary.title, summary: summary.summary, chapter: summary.chapter, duration: summary.duration },
      });
      const version = await this.db.labVersion.upsert({
        where: { labId_contentHash: { labId: lab.id, contentHash: hash } },
        create: { labId: lab.id, contentHash: hash },
        update: {},
      });
      next.set(lab.id, { lab, summary, versionId: version.id });
    }
    this.entries = next;
    this.views.clear();
    this.log.info({ labs: [...next.keys()], errors: errors.filter((e) => e.severity !== "warning").length }, "lab catalog loaded");
  }

  attach(extra: ExtraLabs): void {
    this.extra = extra;
  }

  list(): LabSummary[] {
    return [...this.entries.values()]
      .map((e) => e.summary)
      .concat((this.extra?.list() ?? []).filter((s) => !this.entries.has(s.id)))
      .sort((a, b) => (a.chapter ?? 999) - (b.chapter ?? 999) || a.title.localeCompare(b.title));
  }

  /** A lab of labs/, else an attached one (in the version `userId` started, when given). */
  get(id: string, userId?: string, opts: { peek?: boolean } = {}): CatalogEntry | undefined {
    return this.entries.get(id) ?? this.extra?.get(id, userId, opts.peek);
  }

  isFileLab(id: string): boolean {
    return this.entries.has(id);
  }

  /** One learner's view of a lab (variables substituted, conditional blocks resolved). */
  view(entry: CatalogEntry, ctx: LabContext): LabView {
    const key = `${entry.lab.id}\0${entry.versionId}\0${JSON.stringify(ctx)}`;
    const cached = this.views.get(key);
    if (cached) {
      // Refresh its place: the cache drops the least recently used view.
      this.views.delete(key);
      this.views.set(key, cached);
      return cached;
    }
    const view = renderLab(entry.lab, ctx, { titleOf: (id) => this.get(id)?.summary.title });
    this.views.set(key, view);
    if (this.views.size > VIEW_CACHE_SIZE) this.views.delete(this.views.keys().next().value!);
    return view;
  }
}
