export { startEngine, type Engine, type EngineOptions } from "./engine";
export { ContainerService, Container } from "./containers/service";
export { EngineError } from "./errors";
export type { ContainerRecord, Recipe } from "./containers/container";
export { ImageStore, normalizeReference } from "./images/store";
export { ensureBusyboxImage, makeBusyboxRootfs, makeBusyboxTarball } from "./images/busybox";
export { Cgroup, detectCgroupVersion, type Limits } from "./cgroups/cgroups";
export { API_VERSION, MIN_API_VERSION } from "./api/http";
export { importSharedImages, sharedReferences } from "./images/shared";
