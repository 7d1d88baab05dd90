// A proxy that ignores backpressure, kept only to be measured against the real one.
// Do not copy it: write() returning false is ignored, so a slow reader fills our memory.
import net from 'node:net';
import { parseFlags } from '../src/cli.ts';
import { formatAddress } from '../src/address.ts';

const { listen, backend } = parseFlags(process.argv.slice(2));

const server = net.createServer((client) => {
  const upstream = net.connect(backend.port, backend.host);
  client.on('data', (chunk) => upstream.write(chunk)); // no pause, whatever write() says
  upstream.on('data', (chunk) => client.write(chunk));
  client.on('end', () => upstream.end());
  upstream.on('end', () => client.end());
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.listen(listen.port, listen.host, () => {
  const { port } = server.address() as net.AddressInfo;
  console.log(`listening on ${formatAddress({ host: listen.host, port })}`);
});
