// The operator's endpoints on the control port (src/protocol/operator.ts has the bodies' schemas).
// Apart from the schemas so that `ringswarm status` and `inject` load zod only for an answer to check.
export const OPERATOR_PATHS = { status: '/v1/status', inject: '/v1/inject' } as const;

/** The largest request body the coordinator reads (an inject's fault). */
export const MAX_OPERATOR_BODY_BYTES = 16 * 1024;
