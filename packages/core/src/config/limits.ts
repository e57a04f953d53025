/**
 * The largest value (as JSON) a record in Redis keeps: a task's output, an approval's message.
 * Larger outputs are not kept in a sync call's record; an async task whose agent returns more fails
 * with `PAYLOAD_TOO_LARGE`; a message that needs an approval and is larger is refused.
 */
export const MAX_STORED_OUTPUT_BYTES = 256 * 1024;
