// A learner's request the lab logic turns down, with the reason a person can act on. The HTTP layer
// maps the kind to a status (lab-routes.ts); nothing below it speaks HTTP.
export type RefusalKind =
  /** No such lab, step, check or quiz (in this lab). */
  | "missing"
  /** Not now: needs unmet, step locked, no hint left, sandbox not running. */
  | "conflict"
  /** The request itself is wrong (an answer to a question the quiz does not have). */
  | "invalid";

export class LabRefusal extends Error {
  constructor(readonly kind: RefusalKind, message: string) {
    super(message);
  }
}
