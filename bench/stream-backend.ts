// Tool A of bench/fairness.ts: every request is answered with an endless body of 16 KiB chunks, written as
// fast as the socket takes them (the next chunk on 'drain'). It ends when the client goes. The body is
// chunked, or with FRAMING=length declared 2^50 bytes long (the proxy then parses no chunk framing).
import http from 'node:http';

const CHUNK = Buffer.alloc(16 * 1024, 'a');
const LENGTH = process.env.FRAMING === 'length';

function stream(req: http.IncomingMessage, res: http.ServerResponse): void {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/octet-stream', ...(LENGTH ? { 'content-length': String(2 ** 50) } : {}) });
  const pump = (): void => {
    while (!res.destroyed) {
      if (!res.write(CHUNK)) return void res.once('drain', pump);
    }
  };
  pump();
}

const server = http.createServer(stream);
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1');
