"use client";
// The account forms' errors (sign-up, sign-in, the first administrator): one message for the form
// and one per field, each linked to its input for screen readers. An API error naming a field goes
// under that field; any other goes at the top of the form.
import { useId, useState } from "react";

export type Field = "email" | "password" | "name";

export function useFormErrors() {
  const id = useId();
  const [formError, setFormError] = useState<string | null>(null);
  const [fieldErrors, setFieldErrors] = useState<Partial<Record<Field, string>>>({});
  return {
    formError,
    fieldErrors,
    setFormError,
    clear() {
      setFormError(null);
      setFieldErrors({});
    },
    show(error: { error: string; field?: string }) {
      const field = error.field;
      if (field === "email" || field === "password" || field === "name") setFieldErrors({ [field]: error.error });
      else setFormError(error.error);
    },
    /** The input's id, for its label's htmlFor. */
    inputId: (field: Field) => `${id}-${field}`,
    fieldProps: (field: Field) => ({
      id: `${id}-${field}`,
      name: field,
      "aria-invalid": fieldErrors[field] ? true : undefined,
      "aria-describedby": fieldErrors[field] ? `${id}-${field}-error` : undefined,
    }),
    fieldError: (field: Field) =>
      fieldErrors[field] ? (
        <p className="field-error" id={`${id}-${field}-error`} data-testid={`field-error-${field}`}>
          {fieldErrors[field]}
        </p>
      ) : null,
  };
}
