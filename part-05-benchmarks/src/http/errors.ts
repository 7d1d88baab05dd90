// Protocol errors carry the status the client should get; the connection is closed after them.

export const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Content Too Large',
  421: 'Misdirected Request',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

export class HttpError extends Error {
  /** The request line, when it was valid and the fault came after it (for the access log). */
  requestLine: string | undefined;

  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The body of a response the proxy writes itself. */
export function errorBody(status: number, detail: string): string {
  return `${status} ${STATUS_TEXT[status] ?? 'Error'}: ${detail}\n`;
}

/** A complete, small response the proxy writes itself (errors only); to HEAD, without its body (RFC 9110 9.3.2). */
export function errorResponse(status: number, detail: string, keepAlive: boolean, toHead = false): Buffer {
  const body = errorBody(status, detail);
  return Buffer.from(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
      'content-type: text/plain; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      (keepAlive ? '' : 'connection: close\r\n') +
      `\r\n${toHead ? '' : body}`,
  );
}
