// The lab catalog: labs/ read through labkit at start, each version recorded by its content hash so
// that attempts can say which text of a lab they were graded against.
import { loadLabs, renderLab, summarizeLab, labContentHash, type Lab } from "@berth/labkit";
import type { LabSummary, LabView } from "@berth/protocol";
import type { Db } from "../db/index.js";
import type { Logger } from "pino";

interface Entry {
  lab: Lab;
  view: LabView;
  summary: LabSummary;
  versionId: string;
}

export class LabCatalog {
  private entries = new Map<string, Entry>();

  constructor(private readonly db: Db, private readonly log: Logger) {}

  async load(dir: string): Promise<void> {
    const { labs, errors } = await loadLabs(dir);
    for (const e of errors) this.log.error({ file: e.file, line: e.line }, `lab error: ${e.message} (fix: ${e.fix})`);
    const next = new Map<string, Entry>();
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
      next.set(lab.id, { lab, summary, view: renderLab(lab), versionId: version.id });
    }
    this.entries = next;
    this.log.info({ labs: [...next.keys()], errors: errors.length }, "lab catalog loaded");
  }

  list(): LabSummary[] {
    return [...this.entries.values()]
      .map((e) => e.summary)
      .sort((a, b) => (a.chapter ?? 999) - (b.chapter ?? 999) || a.title.localeCompare(b.title));
  }

  get(id: string): Entry | undefined {
    return this.entries.get(id);
  }
}
