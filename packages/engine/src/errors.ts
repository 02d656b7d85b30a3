/** An error with the HTTP status Docker would answer and Docker's wording. */
export class EngineError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
