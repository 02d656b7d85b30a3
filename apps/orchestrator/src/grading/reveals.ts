// What a stuck learner can ask for: the next hint of a check (one at a time, in order, each
// possibly costing points) and a check's solution (the check then earns nothing). Both are
// recorded; the texts are rendered into the learner's progress (progress.ts), never sent before.
import { solutionsFor, type LabContext } from "@berth/labkit";
import { isUniqueViolation, type Db } from "../db/index.js";
import type { CatalogEntry } from "../labs/catalog.js";
import { LabRefusal } from "../labs/refusal.js";
import { CheckRunner } from "./check-runner.js";

export class Reveals {
  constructor(private readonly db: Db) {}

  /** Reveals the check's next hint. Refused when none is left. */
  async nextHint(userId: string, entry: CatalogEntry, checkId: string): Promise<void> {
    const check = CheckRunner.find(entry, checkId);
    const labId = entry.lab.id;
    if (check.hints.length === 0) throw new LabRefusal("conflict", `check "${check.title}" has no hints`);
    const taken = await this.db.hintReveal.count({ where: { userId, labId, checkId } });
    if (taken >= check.hints.length) {
      throw new LabRefusal("conflict", `all ${check.hints.length} hints of check "${check.title}" are revealed already`);
    }
    try {
      await this.db.hintReveal.create({ data: { userId, labId, checkId, index: taken, cost: check.hintCost } });
    } catch (err) {
      // Two requests at once (a double click) both asked for hint `taken`: one hint is revealed, as meant.
      if (!isUniqueViolation(err)) throw err;
    }
  }

  /** Records that the learner saw the check's solution ("shown") or had it run ("skipped"). */
  async solution(userId: string, entry: CatalogEntry, checkId: string, ctx: LabContext, how: "shown" | "skipped"): Promise<void> {
    const check = CheckRunner.find(entry, checkId);
    if (how === "shown" && solutionsFor(entry.lab, checkId, ctx).length === 0) {
      throw new LabRefusal("conflict", `check "${check.title}" has no solution to show`);
    }
    try {
      await this.db.solutionReveal.create({ data: { userId, labId: entry.lab.id, checkId, how } });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err; // revealed before: nothing changes
    }
  }
}
