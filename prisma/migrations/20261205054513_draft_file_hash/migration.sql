-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_LabDraftAsset" (
    "draftId" TEXT NOT NULL,
    "path" TEXT NOT NULL,
    "bytes" BLOB NOT NULL,
    "size" INTEGER NOT NULL,
    "sha256" TEXT NOT NULL DEFAULT '',
    "updatedAt" DATETIME NOT NULL,

    PRIMARY KEY ("draftId", "path"),
    CONSTRAINT "LabDraftAsset_draftId_fkey" FOREIGN KEY ("draftId") REFERENCES "LabDraft" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
INSERT INTO "new_LabDraftAsset" ("bytes", "draftId", "path", "size", "updatedAt") SELECT "bytes", "draftId", "path", "size", "updatedAt" FROM "LabDraftAsset";
DROP TABLE "LabDraftAsset";
ALTER TABLE "new_LabDraftAsset" RENAME TO "LabDraftAsset";
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
