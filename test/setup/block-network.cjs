// Tests may only reach loopback. Any other destination fails loudly, so a test can never
// depend on (or leak to) the outside network.
const net = require('node:net');
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost|::ffff:127\.\d+\.\d+\.\d+)$/i;
const original = net.Socket.prototype.connect;
net.Socket.prototype.connect = function connect(...args) {
  const opts = typeof args[0] === 'object' && args[0] !== null && !Array.isArray(args[0]) ? args[0] : { port: args[0], host: typeof args[1] === 'string' ? args[1] : undefined };
  const host = opts.host ?? 'localhost';
  if (opts.path === undefined && !LOOPBACK.test(String(host))) {
    throw new Error(`network access to ${host} is blocked in tests`);
  }
  return original.apply(this, args);
};
