import tls from 'node:tls';

// A raw HTTP/2 client over TLS (ALPN h2) that writes whatever frames a test builds, valid or not: the frames
// Node's http2 client will not produce (CONTINUATION floods, empty DATA, invalid headers, PRIORITY churn) and
// floods sent without reading. RFC 9113 4.1: a frame is a 9-byte header (length 24 bits, type, flags, stream
// 31 bits) and its payload.

export const FRAME = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** One frame: its 9-byte header and `payload`. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK integer with an `n`-bit prefix whose high bits are `mask` (RFC 7541 5.1). */
function hpackInt(value: number, n: number, mask: number): Buffer {
  const max = (1 << n) - 1;
  if (value < max) return Buffer.from([mask | value]);
  const out = [mask | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1');
  return Buffer.concat([hpackInt(bytes.length, 7, 0), bytes]);
}

/** HPACK header fields: indexed from the static or dynamic table, or literal (`index`: added to the dynamic table). */
export const hpack = {
  indexed: (i: number): Buffer => hpackInt(i, 7, 0x80),
  literal: (name: string, value: string, index = false): Buffer =>
    Buffer.concat([index ? Buffer.from([0x40]) : Buffer.from([0x00]), hpackString(name), hpackString(value)]),
};

/** GET `path` on https with `authority`: the block of a HEADERS frame. */
export function requestBlock(path: string, authority: string, extra: Buffer[] = []): Buffer {
  // Static table: 2 `:method GET`, 7 `:scheme https`.
  return Buffer.concat([hpack.indexed(2), hpack.indexed(7), hpack.literal(':path', path), hpack.literal(':authority', authority), ...extra]);
}

export interface ReceivedFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** A raw HTTP/2 connection: frames written as given, frames received parsed, the GOAWAY and the close noted. */
export class RawH2 {
  readonly frames: ReceivedFrame[] = [];
  /** The error code of the server's GOAWAY, once it came. */
  goawayCode: number | null = null;
  closed = false;
  private buffered = Buffer.alloc(0);

  private constructor(readonly socket: tls.TLSSocket) {
    socket.on('data', (d: Buffer) => this.read(d));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  /** Connects with ALPN h2 and sends the preface and an empty SETTINGS frame. */
  static connect(port: number, opts: { servername: string; ca: string | string[] }): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername: opts.servername, ca: opts.ca, ALPNProtocols: ['h2'] }, () => {
        if (socket.alpnProtocol !== 'h2') return reject(new Error(`ALPN chose ${String(socket.alpnProtocol)}`));
        socket.off('error', reject);
        const c = new RawH2(socket);
        c.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
        resolve(c);
      });
      socket.once('error', reject);
    });
  }

  /** Writes frames; false once the socket is gone (the server closed it). */
  write(data: Buffer): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    this.socket.write(data);
    return true;
  }

  /** The frames of `type` received so far. */
  received(type: number): ReceivedFrame[] {
    return this.frames.filter((f) => f.type === type);
  }

  /** Stops reading (a client whose receive window and socket buffers fill up). */
  stopReading(): void {
    this.socket.pause();
  }

  /** Reads again: what the server sent meanwhile, its GOAWAY and close included. */
  readAgain(): void {
    this.socket.resume();
  }

  close(): void {
    this.socket.destroy();
  }

  private read(d: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, d]);
    while (this.buffered.length >= 9) {
      const length = this.buffered.readUIntBE(0, 3);
      if (this.buffered.length < 9 + length) return;
      const f: ReceivedFrame = { type: this.buffered[3], flags: this.buffered[4], streamId: this.buffered.readUInt32BE(5) & 0x7fffffff, payload: this.buffered.subarray(9, 9 + length) };
      this.buffered = this.buffered.subarray(9 + length);
      this.frames.push(f);
      if (f.type === FRAME.GOAWAY) this.goawayCode = f.payload.readUInt32BE(4);
      // The server's SETTINGS are acknowledged, as a client must.
      if (f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK)) this.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
    }
  }
}
