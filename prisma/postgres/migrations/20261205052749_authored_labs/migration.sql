-- CreateTable
CREATE TABLE "LabDraft" (
    "id" TEXT NOT NULL,
    "labId" TEXT NOT NULL,
    "authorId" TEXT NOT NULL,
    "markdown" TEXT NOT NULL,
    "provedHash" TEXT,
    "provedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "LabDraft_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LabDraftAsset" (
    "draftId" TEXT NOT NULL,
    "path" TEXT NOT NULL,
    "bytes" BYTEA NOT NULL,
    "size" INTEGER NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "LabDraftAsset_pkey" PRIMARY KEY ("draftId","path")
);

-- CreateTable
CREATE TABLE "AuthoredLabVersion" (
    "versionId" TEXT NOT NULL,
    "labId" TEXT NOT NULL,
    "authorId" TEXT NOT NULL,
    "bundle" BYTEA NOT NULL,
    "publishedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AuthoredLabVersion_pkey" PRIMARY KEY ("versionId")
);

-- CreateTable
CREATE TABLE "AuthoredLabStart" (
    "userId" TEXT NOT NULL,
    "labId" TEXT NOT NULL,
    "versionId" TEXT NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AuthoredLabStart_pkey" PRIMARY KEY ("userId","labId")
);

-- CreateIndex
CREATE UNIQUE INDEX "LabDraft_labId_key" ON "LabDraft"("labId");

-- CreateIndex
CREATE INDEX "LabDraft_authorId_idx" ON "LabDraft"("authorId");

-- CreateIndex
CREATE INDEX "AuthoredLabVersion_labId_publishedAt_idx" ON "AuthoredLabVersion"("labId", "publishedAt");

-- AddForeignKey
ALTER TABLE "LabDraftAsset" ADD CONSTRAINT "LabDraftAsset_draftId_fkey" FOREIGN KEY ("draftId") REFERENCES "LabDraft"("id") ON DELETE CASCADE ON UPDATE CASCADE;
