// What each request to a Qdrant server cost the server, as the server reports it: every REST answer carries
// `time` (seconds spent handling it, before its body is serialized and sent). Shared by the adapter's
// real-server test and the store benchmark, which set it beside the client's own time for the same calls.
//
//   const recorder = recordServerTimes(qdrantUrl);   // wraps globalThis.fetch
//   ...calls through @qdrant/js-client-rest (it calls the global fetch per request)...
//   recorder.restore(); await recorder.settled();
//   recorder.exchanges  // [{ method, path, acceptEncoding, contentEncoding, serverMs }] in request order
//
// The body is read from a clone in the background, so the caller's timing of its own calls does not include
// this parse; the clone still costs the client a little, so measure client times in a pass without a recorder.

/**
 * Records every fetch to the origin of `url` until restore().
 * @param {string} url
 */
export function recordServerTimes(url) {
  const origin = new URL(url).origin;
  const original = globalThis.fetch;
  const exchanges = [];
  const reads = [];
  let restored = false;
  globalThis.fetch = async (input, init) => {
    const response = await original(input, init);
    const target = new URL(input instanceof globalThis.Request ? input.url : String(input));
    if (restored || target.origin !== origin) return response;
    const exchange = {
      method: (init?.method ?? (input instanceof globalThis.Request ? input.method : 'GET')).toUpperCase(),
      path: target.pathname,
      acceptEncoding: new globalThis.Headers(init?.headers).get('accept-encoding'),
      contentEncoding: response.headers.get('content-encoding'),
      serverMs: Number.NaN,
    };
    exchanges.push(exchange);
    reads.push(
      response
        .clone()
        .json()
        .then(
          (body) => {
            const time = body?.time;
            exchange.serverMs = typeof time === 'number' ? time * 1000 : Number.NaN;
          },
          () => {},
        ),
    );
    return response;
  };
  return {
    exchanges,
    restore: () => {
      if (restored) return;
      restored = true;
      globalThis.fetch = original;
    },
    settled: async () => {
      await Promise.all(reads);
    },
  };
}
