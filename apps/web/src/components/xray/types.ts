// The X-ray feed as the browser receives it: the wire types live in @berth/protocol (xray.ts), where
// the orchestrator's schema checks them first. Every string here came from the learner's own
// sandbox: it is shown as text only, never as HTML. Only types come from there, so no schema
// library reaches the browser's bundle.
import type { XrayContainer, XrayLive, XrayLiveMsg, XrayRecipe, XraySourceLink, XraySourceRef, XrayStatusMsg, XrayView, XrayViewMsg } from "@berth/protocol";

export type SourceRef = XraySourceRef;
export type SourceLink = XraySourceLink;
export type Live = XrayLive;
export type Recipe = XrayRecipe;
export type XContainer = XrayContainer;
export type XView = XrayView;
export type ViewMsg = XrayViewMsg;
export type LiveMsg = XrayLiveMsg;
export type StatusMsg = XrayStatusMsg;

export interface ChapterLink {
  labId: string;
  step?: string;
  title: string;
}
export interface Excerpt {
  path: string;
  first: number;
  lines: string[];
  from: number;
  to: number;
}

/** The key a source link is filed under (the protocol's xraySourceKey: a value import would bundle zod). */
export const sourceKey = (ref: SourceRef) => `${ref.file}#${ref.line ?? ref.find ?? ""}`;
