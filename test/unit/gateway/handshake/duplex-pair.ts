// Two in-memory duplex streams wired to each other: a client and a gateway side without TCP.
import { Duplex } from 'node:stream';

export function duplexPair(): [client: Duplex, server: Duplex] {
  const make = (peer: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        peer().push(chunk);
        cb();
      },
      final(cb) {
        peer().push(null);
        cb();
      },
      destroy(err, cb) {
        const p = peer();
        if (!p.destroyed) p.push(null);
        cb(err);
      },
    });
  const client: Duplex = make(() => server);
  const server: Duplex = make(() => client);
  return [client, server];
}

/** Resolves with the next `n` bytes the stream yields (or what it yielded before it ended). */
export function readBytes(stream: Duplex, n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const done = () => {
      stream.off('data', onData);
      stream.off('end', done);
      stream.pause();
      resolve(buf);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= n) done();
    };
    stream.on('data', onData);
    stream.on('end', done);
    stream.resume(); // a stream paused by an earlier read does not flow again by itself
  });
}
