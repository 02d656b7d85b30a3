-- CreateTable
CREATE TABLE "LabDraft" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "labId" TEXT NOT NULL,
    "authorId" TEXT NOT NULL,
    "markdown" TEXT NOT NULL,
    "provedHash" TEXT,
    "provedAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "LabDraftAsset" (
    "draftId" TEXT NOT NULL,
    "path" TEXT NOT NULL,
    "bytes" BLOB NOT NULL,
    "size" INTEGER NOT NULL,
    "updatedAt" DATETIME NOT NULL,

    PRIMARY KEY ("draftId", "path"),
    CONSTRAINT "LabDraftAsset_draftId_fkey" FOREIGN KEY ("draftId") REFERENCES "LabDraft" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "AuthoredLabVersion" (
    "versionId" TEXT NOT NULL PRIMARY KEY,
    "labId" TEXT NOT NULL,
    "authorId" TEXT NOT NULL,
    "bundle" BLOB NOT NULL,
    "publishedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "AuthoredLabStart" (
    "userId" TEXT NOT NULL,
    "labId" TEXT NOT NULL,
    "versionId" TEXT NOT NULL,
    "startedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,

    PRIMARY KEY ("userId", "labId")
);

-- CreateIndex
CREATE UNIQUE INDEX "LabDraft_labId_key" ON "LabDraft"("labId");

-- CreateIndex
CREATE INDEX "LabDraft_authorId_idx" ON "LabDraft"("authorId");

-- CreateIndex
CREATE INDEX "AuthoredLabVersion_labId_publishedAt_idx" ON "AuthoredLabVersion"("labId", "publishedAt");
