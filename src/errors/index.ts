export { UnderstudyError, isUnderstudyError } from './understudy-error.js';
export { ErrorCode, isErrorCode } from './codes.js';
export type { ErrorCodeValue } from './codes.js';
export { HTTP_STATUS, httpStatusOf } from './http-status.js';
