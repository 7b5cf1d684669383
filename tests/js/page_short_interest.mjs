// Pages short interest (protocol 3249) through the official JavaScript SDK, futu-api, unmodified.
//
//   node --experimental-websocket page_short_interest.mjs [--parallel] HOST PORT KEY NUM CODE...
//
// KEY is the WebSocket key ("" for none); CODE is like US.AAPL or HK.00700. --parallel pages
// the codes at the same time, so replies to different requests interleave. Every row goes to
// stdout as one JSON line {"code", "page", "row"}, int64 values as decimal strings so none loses
// precision; then one {"code", "pages", "rows"} line per code. A failed login prints
// {"login": false, "error": ...} and exits 2, a failed request {"code", "failed": ...} and exits 3.
// The SDK's own logging goes to stderr so stdout stays JSON lines.

import ftWebsocket from "futu-api";

const MARKETS = { HK: 1, US: 11 };
const SHORT_INTEREST = 3249;

for (const name of ["log", "debug", "info", "warn"]) {
  console[name] = (...args) => console.error(...args);
}

function emit(object) {
  process.stdout.write(JSON.stringify(object) + "\n");
}

// protobufjs hands int64/uint64 fields over as Long objects; keep them exact as strings.
function plain(value) {
  if (value !== null && typeof value === "object" && typeof value.toString === "function" &&
      "low" in value && "high" in value) {
    return value.toString();
  }
  return value;
}

function row(item) {
  const out = {};
  for (const key of Object.keys(item)) {
    out[key] = plain(item[key]);
  }
  return out;
}

async function page(ws, code, num) {
  const [market, symbol] = [code.slice(0, code.indexOf(".")), code.slice(code.indexOf(".") + 1)];
  if (!(market in MARKETS)) {
    throw new Error(`unsupported market in ${code}`);
  }
  let nextKey = null;
  let pages = 0;
  let rows = 0;
  while (nextKey !== "-1") {
    if (pages >= 1000) {
      throw new Error(`nextKey of ${code} never reached "-1"`);
    }
    const c2s = { security: { market: MARKETS[market], code: symbol }, num };
    if (nextKey !== null) {
      c2s.nextKey = nextKey;
    }
    let response;
    try {
      response = await ws._sendCmd(SHORT_INTEREST, { c2s }, "Qot_GetShortInterest");
    } catch (failure) {
      emit({ code, failed: typeof failure === "object" ? row(failure) : String(failure) });
      process.exit(3);
    }
    pages += 1;
    const s2c = response.s2c;
    const items = market === "US" ? s2c.usItemList : s2c.hkItemList;
    for (const item of items) {
      emit({ code, page: pages, row: row(item) });
      rows += 1;
    }
    nextKey = s2c.nextKey;
  }
  emit({ code, pages, rows });
}

function login(ws, host, port, key) {
  return new Promise((resolve) => {
    ws.onlogin = (ok, detail) => resolve({ ok, detail });
    ws.start(host, port, false, key);
  });
}

async function main() {
  const args = process.argv.slice(2);
  const parallel = args[0] === "--parallel";
  const [host, port, key, num, ...codes] = parallel ? args.slice(1) : args;
  if (!host || !port || key === undefined || !num || codes.length === 0) {
    console.error("usage: page_short_interest.mjs HOST PORT KEY NUM CODE...");
    process.exit(64);
  }
  const ws = new ftWebsocket();
  const { ok, detail } = await login(ws, host, Number(port), key);
  if (!ok) {
    emit({ login: false, error: typeof detail === "object" ? String(detail.error) : detail });
    process.exit(2);
  }
  emit({ login: true, connID: plain(ws.getConnID()) });
  if (parallel) {
    await Promise.all(codes.map((code) => page(ws, code, Number(num))));
  } else {
    for (const code of codes) {
      await page(ws, code, Number(num));
    }
  }
  ws.websock.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
