// A TLS connection is opened for one name (the SNI) and authenticated by the certificate chosen for
// it. A request on it whose Host would have been served another certificate gets 421 Misdirected
// Request (RFC 9110 15.5.20): the client never checked that this server speaks for that host.
import { HttpError } from '../http/errors.ts';
import { hostName, type VirtualHosts } from '../core/virtual-hosts.ts';

/**
 * The connection's router: the proxy's own, with the check in front. Made per TLS connection
 * (Object.create shares the tables); a plain connection, or a client that sent no SNI, is not checked.
 */
export function sniChecked(hosts: VirtualHosts, sni: string | false | null | undefined, certificates: VirtualHosts): VirtualHosts {
  if (!sni) return hosts;
  const opened = certificates.route(sni.toLowerCase());
  const checked: VirtualHosts = Object.create(hosts);
  checked.route = (host) => {
    const name = hostName(host);
    if (name !== undefined && certificates.route(name) !== opened) {
      throw new HttpError(421, `this connection was opened for ${sni}, whose certificate does not serve ${name}`);
    }
    return hosts.route(host);
  };
  return checked;
}
