import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { test, type TestContext } from 'node:test';
import { canBind, findPortInUse, hasIpv6Loopback, isListening, isPortFree, probeBind } from '../../src/ports/probe.js';

/** Addresses no host has (documentation ranges): what a family the host lacks looks like. */
const ABSENT_IPV6 = '2001:db8::1';
const ABSENT_IPV4 = '192.0.2.1';

function listen(t: TestContext, host: string, port = 0): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => resolve(server));
    t.after(() => new Promise<void>((done) => server.close(() => done())));
  });
}

const portOf = (server: Server): number => (server.address() as AddressInfo).port;

/** A port free on both loopback addresses right now. */
async function freePort(): Promise<number> {
  for (;;) {
    const server = createServer();
    const port = await new Promise<number>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve(portOf(server))));
    await new Promise<void>((done) => server.close(() => done()));
    if ((await probeBind(port, '::1')) !== 'taken') return port;
  }
}

/** A listener on `host` whose port is free on the other loopback address. */
async function listenAlone(t: TestContext, host: string, other: string): Promise<number> {
  for (;;) {
    const server = await listen(t, host);
    if ((await probeBind(portOf(server), other)) !== 'taken') return portOf(server);
    await new Promise<void>((done) => server.close(() => done()));
  }
}

test('a free port binds on both loopback addresses and holds nothing', async () => {
  const port = await freePort();
  assert.equal(await probeBind(port, '127.0.0.1'), 'free');
  assert.equal(await probeBind(port, '::1'), (await hasIpv6Loopback()) ? 'free' : 'absent');
  assert.equal(await isPortFree(port), true);
  assert.equal(await findPortInUse(port), undefined);
  assert.equal(await isListening(port), false);
});

test('a listener on 127.0.0.1 takes the port for every probe', async (t) => {
  const port = await listenAlone(t, '127.0.0.1', '::1');
  assert.equal(await probeBind(port, '127.0.0.1'), 'taken');
  assert.equal(await canBind(port, '127.0.0.1'), false);
  assert.equal(await isPortFree(port), false);
  assert.deepEqual(await findPortInUse(port), { host: '127.0.0.1', how: 'accepts connections' });
  assert.equal(await isListening(port), true);
});

test('a listener on ::1 only takes the port for every probe, the status too', async (t) => {
  if (!(await hasIpv6Loopback())) return t.skip('this host has no IPv6 loopback');
  const port = await listenAlone(t, '::1', '127.0.0.1');
  assert.equal(await probeBind(port, '127.0.0.1'), 'free');
  assert.equal(await probeBind(port, '::1'), 'taken');
  assert.equal(await isPortFree(port), false);
  assert.deepEqual(await findPortInUse(port), { host: '::1', how: 'accepts connections' });
  assert.equal(await isListening(port), true);
});

test('a family the host lacks holds nothing: the port is free, nothing listens, no probe fails', async () => {
  const port = await freePort();
  for (const absent of [ABSENT_IPV6, ABSENT_IPV4]) {
    assert.equal(await probeBind(port, absent), 'absent', absent);
    assert.equal(await canBind(port, absent), false, absent);
    const hosts = ['127.0.0.1', absent];
    assert.equal(await isPortFree(port, { hosts }), true, absent);
    assert.equal(await findPortInUse(port, { hosts, connectTimeoutMs: 200 }), undefined, absent);
    assert.equal(await isListening(port, { hosts, connectTimeoutMs: 200 }), false, absent);
  }
});

test('a listener next to a family the host lacks still takes the port', async (t) => {
  const port = await listenAlone(t, '127.0.0.1', '::1');
  const hosts = [ABSENT_IPV6, '127.0.0.1'];
  assert.equal(await isPortFree(port, { hosts }), false);
  assert.deepEqual(await findPortInUse(port, { hosts, connectTimeoutMs: 200 }), { host: '127.0.0.1', how: 'accepts connections' });
  assert.equal(await isListening(port, { hosts, connectTimeoutMs: 200 }), true);
});

test('the IPv6 loopback is detected once and agrees with a bind on ::1', async () => {
  const has = await hasIpv6Loopback();
  assert.equal(await hasIpv6Loopback(), has);
  assert.equal((await probeBind(0, '::1')) !== 'absent', has);
});
