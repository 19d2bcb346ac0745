/** Statuses whose responses cannot have a body (Fetch standard "null body status"). */
export const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
