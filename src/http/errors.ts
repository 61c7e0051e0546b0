// The one place errors become HTTP: TallyError → its catalogued status and `{ error: { code,
// message } }`; Fastify's own failures (bad JSON, body too large, schema) → our codes; anything
// else → 500 internal_error with no details (the log has them). No stack trace reaches a client.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TallyError, errorCatalogue, type ErrorCode } from '../core/errors.ts';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; [extra: string]: unknown };
}

export function errorBody(code: ErrorCode, message?: string, details?: Record<string, unknown>): ErrorBody {
  return { error: { code, message: message ?? errorCatalogue[code].description, ...details } };
}

export function sendError(reply: FastifyReply, error: TallyError): FastifyReply {
  if (error.code === 'rate_limited' && typeof error.details?.retryAfterSeconds === 'number') {
    void reply.header('retry-after', String(error.details.retryAfterSeconds));
  }
  const { retryAfterSeconds: _hidden, ...details } = error.details ?? {};
  return reply.code(error.status).send(errorBody(error.code, error.message, details));
}

const fastifyCodes: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_VALIDATION: 'invalid_request',
};

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | TallyError | Error, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof TallyError) {
      if (error.status >= 500) request.log.warn({ code: error.code, err: error.cause ?? error }, 'request failed');
      return sendError(reply, error);
    }
    const fastifyCode = 'code' in error && typeof error.code === 'string' ? fastifyCodes[error.code] : undefined;
    if (fastifyCode) return sendError(reply, new TallyError(fastifyCode, error.message));
    if (error instanceof SyntaxError) return sendError(reply, new TallyError('invalid_json'));
    const status = 'statusCode' in error && typeof error.statusCode === 'number' ? error.statusCode : 500;
    if (status >= 400 && status < 500) return sendError(reply, new TallyError('invalid_request', error.message));
    request.log.error({ err: error }, 'unexpected error');
    return sendError(reply, new TallyError('internal_error'));
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, new TallyError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`)));
}
