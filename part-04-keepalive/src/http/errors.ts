// Protocol errors carry the status the client should get; the connection is closed after them.

export const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A complete, small response the proxy writes itself (errors only); to HEAD, without its body (RFC 9110 9.3.2). */
export function errorResponse(status: number, detail: string, keepAlive: boolean, toHead = false): Buffer {
  const body = `${status} ${STATUS_TEXT[status] ?? 'Error'}: ${detail}\n`;
  return Buffer.from(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
      'content-type: text/plain; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      (keepAlive ? '' : 'connection: close\r\n') +
      `\r\n${toHead ? '' : body}`,
  );
}
